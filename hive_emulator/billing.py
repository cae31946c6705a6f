"""What each request cost, per key: generation records for ``/generation`` and usage for ``/key``.

Costs come from the catalog's prices through :mod:`hive_core.catalog.pricing`, so the emulator bills
exactly what the cost estimator predicts from the same catalog. Only tokens actually produced
(or, for a cancelled stream, actually sent) are billed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hive_core.catalog.pricing import ZERO, estimate_cost
from hive_emulator.catalog import ModelInfo

__all__ = ["Generation", "Ledger", "cost_of"]

MAX_RECORDS = 200_000

AFFORD_MESSAGE = (
    "This request requires more credits, or fewer max_tokens. You requested up to {requested} tokens, "
    "but can only afford {affordable}. To increase, visit https://openrouter.ai/settings/keys and create "
    "a key with a higher total limit"
)


def cost_of(model: ModelInfo, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> Decimal:
    """USD billed for the tokens (0 for free models; routers are resolved before billing).
    ``reasoning_tokens`` are part of ``completion_tokens``, billed at ``internal_reasoning`` if set."""
    cost = estimate_cost(model.pricing, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         reasoning_tokens=reasoning_tokens)
    return ZERO if cost is None else cost


@dataclass(slots=True)
class Generation:
    """One served (or cut) generation, as ``GET /generation`` reports it."""

    id: str
    model: ModelInfo
    router: str | None
    streamed: bool
    key: str
    started: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.time)
    first_token: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cancelled: bool = False
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    cost: Decimal = ZERO
    latency_ms: int = 0
    generation_time_ms: int = 0
    user: str | None = None
    referer: str | None = None
    user_agent: str | None = None

    def finish(self, completion_tokens: int, finish_reason: str | None, native: str | None,
               reasoning_tokens: int = 0) -> None:
        """Close the record: tokens billed (reasoning included), why it ended, how long it took."""
        now = time.monotonic()
        self.completion_tokens = completion_tokens
        self.reasoning_tokens = reasoning_tokens
        self.finish_reason = finish_reason
        self.native_finish_reason = native
        self.cost = cost_of(self.model, self.prompt_tokens, completion_tokens, reasoning_tokens)
        self.latency_ms = round((now - self.started) * 1000)
        self.generation_time_ms = round((now - (self.first_token or now)) * 1000)

    def as_json(self) -> dict[str, Any]:
        """The ``data`` object of ``GET /generation`` (PROTOCOL.md section 5 fields)."""
        cost = float(self.cost)
        return {
            "id": self.id,
            "request_id": f"req-{self.id[4:]}",
            "upstream_id": f"chatcmpl-{self.id[-20:]}",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created))
            + f".{int(self.created % 1 * 1000):03d}Z",
            "model": self.model.id,
            "provider_name": self.model.provider,
            "router": self.router,
            "api_type": "completions",
            "streamed": self.streamed,
            "cancelled": self.cancelled,
            "finish_reason": self.finish_reason,
            "native_finish_reason": self.native_finish_reason,
            "total_cost": cost,
            "usage": cost,
            "cache_discount": None,
            "upstream_inference_cost": cost,
            "is_byok": False,
            "latency": self.latency_ms,
            "generation_time": self.generation_time_ms,
            "moderation_latency": None,
            "tokens_prompt": self.prompt_tokens,
            "tokens_completion": self.completion_tokens,
            "native_tokens_prompt": self.prompt_tokens,
            "native_tokens_completion": self.completion_tokens,
            "native_tokens_reasoning": self.reasoning_tokens,
            "native_tokens_cached": 0,
            "native_tokens_completion_images": 0,
            "num_media_prompt": None,
            "num_media_completion": None,
            "num_input_audio_prompt": None,
            "num_search_results": None,
            "num_fetches": None,
            "web_search_engine": None,
            "origin": self.referer or "",
            "http_referer": self.referer,
            "user_agent": self.user_agent,
            "app_id": None,
            "external_user": self.user,
            "session_id": None,
            "preset_id": None,
            "workspace_id": None,
            "service_tier": None,
            "data_region": "global",
            "response_cache_source_id": None,
            "provider_responses": None,
        }


class Ledger:
    """Generation records, billed usage per key, the optional credit limit, and request counts."""

    def __init__(self, credit_limit: Decimal | None = None) -> None:
        self.credit_limit = credit_limit
        self.generations: dict[str, Generation] = {}
        self.usage: dict[str, Decimal] = {}
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def record(self, generation: Generation) -> None:
        """Keep a finished generation and bill its cost to its key."""
        if len(self.generations) >= MAX_RECORDS:  # bound memory of a long-running emulator
            self.generations.pop(next(iter(self.generations)))
        self.generations[generation.id] = generation
        self.usage[generation.key] = self.usage.get(generation.key, ZERO) + generation.cost

    def count(self, model: str, outcome: str) -> None:
        """Count one request to ``model`` that ended as ``outcome`` (for ``/_emulator/stats``)."""
        self.outcomes[(model, outcome)] += 1

    def usage_of(self, key: str) -> Decimal:
        """USD billed to ``key`` so far."""
        return self.usage.get(key, ZERO)

    def refuse(self, key: str, model: ModelInfo, prompt_tokens: int, requested: int) -> str | None:
        """The 402 message when the key's remaining credit cannot pay for ``requested`` tokens."""
        if self.credit_limit is None:
            return None
        remaining = self.credit_limit - self.usage_of(key)
        prompt_cost = cost_of(model, prompt_tokens, 0)
        if model.is_free and remaining > 0:
            return None
        if remaining <= prompt_cost:
            affordable = 0
        elif model.pricing.completion > 0:
            affordable = int((remaining - prompt_cost) / model.pricing.completion)
        else:
            affordable = requested
        if requested > affordable or affordable == 0:
            return AFFORD_MESSAGE.format(requested=requested, affordable=affordable)
        return None

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "requests": {model: {outcome: n}}}``."""
        nested: dict[str, dict[str, int]] = {}
        for (model, outcome), n in sorted(self.outcomes.items()):
            nested.setdefault(model, {})[outcome] = n
        return {"total": sum(self.outcomes.values()), "requests": nested}
