"""OpenRouter's ``usage`` object, whole: tokens by kind, what the account was charged, and what the
provider charged (PROTOCOL.md, "``usage`` object").

Two costs, never to be mixed:

* ``cost`` is what OpenRouter charged the account (USD credits). For a BYOK call (``is_byok``:
  the request ran on the user's own provider key) it is only OpenRouter's fee, often 0.
* ``upstream_cost`` (``cost_details.upstream_inference_cost``) is what the provider charged for
  the inference. For a BYOK call that bill goes to the user's own provider account, outside
  OpenRouter; for other calls it is already part of ``cost`` (null before 2026, then usually equal
  to ``cost``, lower when OpenRouter-side server tools add charges).

Every count a response leaves out (older eras, streams cut before their usage chunk) is 0; costs
left out are ``None`` (unknown, never a silent 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from math import isfinite
from typing import Any

__all__ = ["UsageInfo"]


# The exact types a JSON decoder makes are checked first (``type(...) is``): the general checks
# below them give the same answer, at several times the cost (``Mapping`` is an ABC), and a usage
# object is parsed on every answer.

def _int(value: object) -> int:
    if type(value) is int:
        return value if value > 0 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usd(value: object) -> Decimal | None:
    """A JSON number as a Decimal of its shortest repr (via ``str``: not the binary float's expansion)."""
    if type(value) is float:
        return Decimal(repr(value)) if isfinite(value) else None
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _object(value: object) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    return value if value is not None and isinstance(value, Mapping) else {}  # an absent detail: no ABC check


@dataclass(frozen=True, slots=True)
class UsageInfo:
    """A ``usage`` object (either era), every field OpenRouter reports.

    Token details are parts of their totals (``reasoning_tokens`` of ``completion_tokens``,
    ``cached_tokens`` of ``prompt_tokens`` ...), as reported: real objects are not always
    consistent (reasoning above completion), so whoever needs a sound split clamps.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    #: prompt tokens read from the provider's prompt cache (billed at ``input_cache_read``)
    cached_tokens: int = 0
    #: prompt tokens written to the cache (explicit-cache models; billed at ``input_cache_write``)
    cache_write_tokens: int = 0
    prompt_audio_tokens: int = 0
    prompt_image_tokens: int = 0
    prompt_video_tokens: int = 0
    completion_audio_tokens: int = 0
    completion_image_tokens: int = 0
    #: web searches OpenRouter ran for the request (``server_tool_use_details``)
    web_search_requests: int = 0
    #: USD OpenRouter charged the account; ``None`` when absent (old non-streaming answers, or
    #: counts we made ourselves from a cut stream). A BYOK call's is only OpenRouter's fee.
    cost: Decimal | None = None
    #: USD the provider charged for the inference (a BYOK call's real price); ``None`` when absent
    upstream_cost: Decimal | None = None
    upstream_prompt_cost: Decimal | None = None
    upstream_completion_cost: Decimal | None = None
    #: the call ran on the user's own provider key
    is_byok: bool = False
    #: False when the counts are ours (chunks counted) rather than the server's ``usage``
    reported: bool = True

    @classmethod
    def from_openrouter(cls, usage: Mapping[str, Any] | None) -> UsageInfo:
        """Parse a ``usage`` object; missing or null detail objects count as zero."""
        if not usage:
            return cls(reported=False)
        prompt = _object(usage.get("prompt_tokens_details"))
        completion = _object(usage.get("completion_tokens_details"))
        costs = _object(usage.get("cost_details"))
        # newer responses say server_tool_use_details; the docs also call it server_tool_use
        tools = _object(usage.get("server_tool_use_details") or usage.get("server_tool_use"))
        return cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            reasoning_tokens=_int(completion.get("reasoning_tokens")),
            cached_tokens=_int(prompt.get("cached_tokens")),
            cache_write_tokens=_int(prompt.get("cache_write_tokens")),
            prompt_audio_tokens=_int(prompt.get("audio_tokens")),
            prompt_image_tokens=_int(prompt.get("image_tokens")),
            prompt_video_tokens=_int(prompt.get("video_tokens")),
            completion_audio_tokens=_int(completion.get("audio_tokens")),
            completion_image_tokens=_int(completion.get("image_tokens")),
            web_search_requests=_int(tools.get("web_search_requests")),
            cost=_usd(usage.get("cost")),
            upstream_cost=_usd(costs.get("upstream_inference_cost")),
            upstream_prompt_cost=_usd(costs.get("upstream_inference_prompt_cost")),
            upstream_completion_cost=_usd(costs.get("upstream_inference_completions_cost")),
            is_byok=usage.get("is_byok") is True,
        )
