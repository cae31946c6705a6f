"""Cost: billed when OpenRouter says, else estimated from every catalog price, else unknown (never 0)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hive_core.catalog.catalog import parse_catalog
from hive_core.openrouter.cost import resolve_cost
from hive_core.openrouter.results import UsageInfo

CATALOG = parse_catalog({"data": [
    {"id": "a/model", "name": "A", "context_length": 1000,
     "pricing": {"prompt": "0.000001", "completion": "0.000002", "internal_reasoning": "0.000004",
                 "input_cache_read": "0.0000001", "request": "0.001", "web_search": "0.01"}},
    {"id": "openrouter/auto", "name": "Auto", "context_length": None, "pricing": {"prompt": "-1", "completion": "-1"}},
]})


def test_billed_cost_wins_even_without_a_catalog() -> None:
    usage = UsageInfo(prompt_tokens=10, completion_tokens=5, cost=Decimal("0.00085"))
    assert resolve_cost(usage, "x/unknown", None) == resolve_cost(usage, "a/model", CATALOG)
    estimate = resolve_cost(usage, "x/unknown", None)
    assert (estimate.cost_usd, estimate.source) == (0.00085, "billed")


def test_zero_billed_cost_is_billed_zero() -> None:
    assert resolve_cost(UsageInfo(cost=Decimal(0)), "a/model", None).cost_usd == 0.0


def test_estimate_uses_every_component() -> None:
    usage = UsageInfo(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=100, cached_tokens=200)
    estimate = resolve_cost(usage, "a/model", CATALOG)
    expected = 800 * 1e-6 + 200 * 1e-7 + 400 * 2e-6 + 100 * 4e-6 + 0.001
    assert estimate.source == "estimated" and estimate.cost_usd == pytest.approx(expected)


def test_estimate_bills_the_web_searches_the_usage_reports() -> None:
    usage = UsageInfo.from_openrouter({"prompt_tokens": 10, "completion_tokens": 0,
                                       "server_tool_use_details": {"web_search_requests": 3}})
    estimate = resolve_cost(usage, "a/model", CATALOG)
    assert estimate.source == "estimated" and estimate.cost_usd == pytest.approx(10 * 1e-6 + 0.001 + 3 * 0.01)


def test_a_byok_calls_billed_cost_is_openrouters_fee_alone() -> None:
    """The real BYOK recording's usage: cost 0 is what OpenRouter charged; the provider's price is
    kept beside it, never swapped in or added."""
    usage = UsageInfo.from_openrouter({"prompt_tokens": 326, "completion_tokens": 91, "cost": 0, "is_byok": True,
                                       "cost_details": {"upstream_inference_cost": 0.0003253}})
    assert usage.is_byok and usage.upstream_cost == Decimal("0.0003253")
    estimate = resolve_cost(usage, "a/model", CATALOG)
    assert (estimate.cost_usd, estimate.source) == (0.0, "billed")


def test_reasoning_beyond_completion_is_clamped() -> None:
    # the stream_error recording reports 11 reasoning of 10 completion tokens
    estimate = resolve_cost(UsageInfo(prompt_tokens=43, completion_tokens=10, reasoning_tokens=11), "a/model", CATALOG)
    assert estimate.source == "estimated" and estimate.cost_usd is not None


@pytest.mark.parametrize(("model", "catalog", "why"), [
    ("a/model", None, "no model catalog"),
    ("x/unknown", CATALOG, "not in the model catalog"),
    ("openrouter/auto", CATALOG, "variable price"),
])
def test_unknown_is_none_never_zero(model: str, catalog: object, why: str) -> None:
    estimate = resolve_cost(UsageInfo(prompt_tokens=5, completion_tokens=5), model, catalog)  # type: ignore[arg-type]
    assert (estimate.cost_usd, estimate.source) == (None, "unknown") and why in estimate.note
