"""The cost of one request, and where that number came from.

* ``billed``: OpenRouter's ``usage.cost`` (USD) was in the answer: that is the truth (of what
  OpenRouter charged: a BYOK call's is only its fee, the provider's bill being
  ``UsageInfo.upstream_cost``, recorded beside it and never added to it here).
* ``estimated``: no billed cost (old deployments, cancelled or cut streams), but the catalog knows
  the model's prices: every component is estimated with :func:`hive_core.catalog.pricing.estimate_cost`
  (prompt, completion, reasoning, cache read/write, web searches, per request).
* ``unknown``: no catalog, a model the catalog does not know, or a variable ("-1") price. The cost
  is ``None`` - never a silent 0, which would read as "free" in every report.
"""

from __future__ import annotations

from dataclasses import dataclass

from hive_core.catalog.pricing import PriceBook, estimate_cost
from hive_core.errors import CatalogMissing, UnknownModel
from hive_core.openrouter.results import CostSource
from hive_core.openrouter.usage import UsageInfo

__all__ = ["CostEstimate", "PriceBook", "resolve_cost"]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """A cost in USD (``None`` when unknown), its source, and why it is not billed (for messages)."""

    cost_usd: float | None
    source: CostSource
    note: str = ""


def resolve_cost(usage: UsageInfo, model: str, prices: PriceBook | None, *, requested: str | None = None) -> CostEstimate:
    """Billed cost when the answer carried one, else the catalog estimate, else unknown.

    ``model`` is the id that served the request; when the catalog does not know it (OpenRouter
    often answers with a dated variant, e.g. ``...-20250929``) the ``requested`` id's prices are used.
    """
    if usage.cost is not None:
        return CostEstimate(float(usage.cost), "billed")
    if prices is None:
        return CostEstimate(None, "unknown", "no model catalog: run `hive models sync` for estimates")
    pricing = None
    for candidate in dict.fromkeys(m for m in (model, requested) if m):
        try:
            pricing = prices.get(candidate).pricing
            break
        except (UnknownModel, CatalogMissing):
            continue
    if pricing is None:
        return CostEstimate(None, "unknown", f"{model} is not in the model catalog")
    # Clamp parts to their wholes: real usage objects report reasoning > completion at times
    # (the stream_error recording: 11 reasoning of 10 completion tokens).
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cache_write = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    cost = estimate_cost(
        pricing,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        web_searches=usage.web_search_requests,
    )
    if cost is None:
        return CostEstimate(None, "unknown", f"{model} has a variable price")
    return CostEstimate(float(cost), "estimated")
