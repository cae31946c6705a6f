"""What the client hands back: token usage as OpenRouter reported it, a chat result, stream progress.

Plain frozen dataclasses, no I/O: the sync and async clients, the tracker and the CLI share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["ChatResult", "CostSource", "Outcome", "Progress", "UsageInfo"]

CostSource = Literal["billed", "estimated", "unknown"]
Outcome = Literal["completed", "cancelled", "errored", "timeout", "truncated"]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class UsageInfo:
    """A ``usage`` object (either era). ``cost`` is OpenRouter's billed USD, ``None`` when absent
    (old non-streaming answers, or counts we made ourselves from a cut stream)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal | None = None
    is_byok: bool = False
    #: False when the counts are ours (chunks counted) rather than the server's ``usage``
    reported: bool = True

    @classmethod
    def from_openrouter(cls, usage: Mapping[str, Any] | None) -> UsageInfo:
        """Parse a ``usage`` object; missing or null detail objects count as zero."""
        if not usage:
            return cls(reported=False)
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        cost: Decimal | None = None
        raw_cost = usage.get("cost")
        if isinstance(raw_cost, int | float | str) and not isinstance(raw_cost, bool):
            try:
                # via str: the JSON number's shortest repr, not the binary float's expansion
                cost = Decimal(str(raw_cost))
            except InvalidOperation:
                cost = None
        return cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
            cached_tokens=_int(prompt_details.get("cached_tokens")),
            cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
            cost=cost,
            is_byok=usage.get("is_byok") is True,
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a stream is: passed to ``on_progress`` after every text piece."""

    tokens: int
    tokens_per_s: float | None
    elapsed_s: float
    #: estimated percent of ``max_tokens`` generated so far; None without ``max_tokens``
    percent: float | None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One answered request (the attempt that succeeded, or the partial answer of a stream)."""

    text: str
    model: str
    finish_reason: str | None = None
    usage: UsageInfo = field(default_factory=UsageInfo)
    served_model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    reasoning: str = ""
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    attempts: int = 1
    fallback_index: int = 0
    cost_usd: float | None = None
    cost_source: CostSource = "unknown"
    #: how a stream ended; "completed" for non-streamed answers
    outcome: Outcome = "completed"
    request_id: str = ""
    streamed: bool = False
