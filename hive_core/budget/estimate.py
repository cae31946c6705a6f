"""The most a request can cost, computed before it is sent, from the catalog's prices.

    max cost = prompt tokens x prompt price                     (estimated from the messages and tools)
             + completion cap x max(completion, reasoning price) (``max_tokens``, else a default cap)
             + request fee + images x image price

Prompt tokens are estimated at :data:`CHARS_PER_TOKEN` characters per token, rounded up, plus
:data:`TOKENS_PER_MESSAGE` per message for the role and separators (the ~4 chars/token rule of
thumb for English; a real tokenizer would be a heavy dependency for a reservation that is settled
to the billed cost anyway). Agent traffic is billed for more than its text, so the estimate counts
it too: an assistant message's tool calls (name and arguments), :data:`IMAGE_TOKENS` per
``image_url`` part (OpenAI's flat low-detail figure; on top of any per-image price), and the
offered ``tools`` (their compact JSON at the same 4 characters per token: providers bill the
definitions as prompt). The emulator bills exactly these figures. A request without
``max_tokens`` reserves the config's ``default_max_tokens`` (4096), or the model's own completion
cap when that is lower.

A model with no known price (no catalog, not in it, or a variable-priced router such as
``openrouter/auto``) raises :class:`~hive_core.errors.BudgetExceeded` when a limit applies:
refusing is the only way a budget can hold. The message says what to do (``hive models sync``, a
priced model, or ``--over-budget``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hive_core.catalog.pricing import PriceBook, Pricing
from hive_core.errors import BudgetExceeded, CatalogMissing, UnknownModel

__all__ = [
    "CHARS_PER_TOKEN",
    "IMAGE_TOKENS",
    "TOKENS_PER_MESSAGE",
    "CostBound",
    "estimate_prompt_tokens",
    "max_cost",
    "unknown_price",
]

CHARS_PER_TOKEN = 4
#: role, separators and the reply priming: what chat templates add around each message
TOKENS_PER_MESSAGE = 4
#: prompt tokens of one image part, whatever its size
IMAGE_TOKENS = 85


@dataclass(frozen=True, slots=True)
class CostBound:
    """A request's maximum cost, and the part of it that the prompt alone costs (USD)."""

    max_usd: float
    prompt_usd: float
    prompt_tokens: int
    completion_tokens: int


def _text_and_images(message: Mapping[str, Any]) -> tuple[int, int]:
    """Characters (text parts, tool calls' names and arguments) and image parts of one message."""
    content = message.get("content")
    chars = images = 0
    if isinstance(content, str):
        chars = len(content)
    elif isinstance(content, Sequence):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "image_url":
                images += 1
            text = part.get("text")
            if isinstance(text, str):
                chars += len(text)
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, Sequence) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            chars += sum(len(v) for v in (function.get("name"), function.get("arguments")) if isinstance(v, str))
    return chars, images


def _tool_tokens(tools: Sequence[Mapping[str, Any]] | None) -> int:
    """Prompt tokens the offered tool definitions are billed as (their compact JSON)."""
    if not tools:
        return 0
    return math.ceil(len(json.dumps(list(tools), separators=(",", ":"), ensure_ascii=False, default=str))
                     / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: str | Sequence[Mapping[str, Any]],
                           tools: Sequence[Mapping[str, Any]] | None = None) -> tuple[int, int]:
    """(estimated prompt tokens, number of images) of a prompt string or message list and the
    offered ``tools``; image parts are counted in the tokens too (:data:`IMAGE_TOKENS` each)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    tokens, images = _tool_tokens(tools), 0
    for message in messages:
        chars, pictures = _text_and_images(message)
        tokens += math.ceil(chars / CHARS_PER_TOKEN) + pictures * IMAGE_TOKENS + TOKENS_PER_MESSAGE
        images += pictures
    return tokens, images


def unknown_price(model: str, why: str) -> BudgetExceeded:
    """The refusal for a model whose price is unknown while a limit applies."""
    return BudgetExceeded(
        f"cannot reserve budget for {model}: {why}; run `hive models sync`, "
        "pick a model with a listed price, or pass --over-budget"
    )


def _pricing(prices: PriceBook | None, model: str) -> tuple[Pricing, int | None]:
    if prices is None:
        raise unknown_price(model, "no model catalog to price it")
    try:
        entry = prices.get(model)
    except (UnknownModel, CatalogMissing):
        raise unknown_price(model, "it is not in the model catalog") from None
    pricing = entry.pricing
    if pricing.variable:
        raise unknown_price(model, "its price is variable (a router)")
    cap = getattr(entry, "max_completion_tokens", None)
    return pricing, cap if isinstance(cap, int) and cap > 0 else None


def max_cost(
    prices: PriceBook | None,
    model: str,
    messages: str | Sequence[Mapping[str, Any]],
    *,
    max_tokens: int | None,
    default_max_tokens: int,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> CostBound:
    """The most ``model`` can bill for this request (``tools``: the definitions offered); raises
    ``BudgetExceeded`` when unpriced."""
    pricing, model_cap = _pricing(prices, model)
    prompt_tokens, images = estimate_prompt_tokens(messages, tools)
    if max_tokens is not None:
        completion = max_tokens
    else:
        completion = min(default_max_tokens, model_cap) if model_cap else default_max_tokens
    # Reasoning tokens are part of the completion and may carry their own (higher) price.
    completion_price = max(pricing.completion, pricing.internal_reasoning)
    prompt_cost = prompt_tokens * pricing.prompt + pricing.request + images * pricing.image
    total: Decimal = prompt_cost + completion * completion_price
    return CostBound(float(total), float(prompt_cost), prompt_tokens, completion)
