"""Prices from the real snapshot, routers, float noise, missing keys, and the billing rules."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive_core.catalog.pricing import Pricing, estimate_cost, per_million, per_thousand
from hive_core.errors import CatalogError


@pytest.fixture(scope="module")
def snapshot_pricing(catalog_path: Path) -> dict[str, dict[str, object]]:
    data = json.loads(catalog_path.read_text())
    return {m["id"]: m["pricing"] for m in data["data"]}


def test_real_snapshot_prices_are_exact(snapshot_pricing: dict[str, dict[str, object]]) -> None:
    gpt4o = Pricing.from_openrouter(snapshot_pricing["openai/gpt-4o"])
    assert gpt4o.prompt == Decimal("0.0000025")
    assert gpt4o.completion == Decimal("0.00001")
    assert gpt4o.request == 0 and not gpt4o.variable
    assert per_million(gpt4o.prompt) == Decimal("2.5")
    assert per_thousand(gpt4o.completion) == Decimal("0.01")
    assert gpt4o.per_1k == Decimal("0.0125")


def test_every_snapshot_model_parses(snapshot_pricing: dict[str, dict[str, object]]) -> None:
    parsed = {mid: Pricing.from_openrouter(p) for mid, p in snapshot_pricing.items()}
    routers = {mid for mid, p in parsed.items() if p.variable}
    assert {"openrouter/auto", "openrouter/fusion", "openrouter/pareto-code", "openrouter/bodybuilder"} <= routers
    assert all(mid.startswith("openrouter/") for mid in routers)
    free = [p for mid, p in parsed.items() if mid.endswith(":free")]
    assert free and all(p.is_zero for p in free)
    assert all(p.prompt >= 0 and p.completion >= 0 for p in parsed.values())


def test_router_minus_one_is_variable_not_negative() -> None:
    router = Pricing.from_openrouter({"prompt": "-1", "completion": "-1"})
    assert router.variable and router.prompt == 0 and router.completion == 0
    assert not router.is_zero
    assert estimate_cost(router, prompt_tokens=100, completion_tokens=100) is None


def test_float_noise_kept_exactly_and_rounded_for_display() -> None:
    noisy = Pricing.from_openrouter({"prompt": "0.00000018000000000000002", "completion": "0.0000006"})
    assert noisy.prompt == Decimal("0.00000018000000000000002")
    assert per_million(noisy.prompt) == Decimal("0.18")
    assert str(per_million(Decimal("0.00001"))) == "10"
    assert str(per_million(Decimal(0))) == "0"


def test_missing_keys_are_zero_and_2025_zeros_equal_2026_omissions() -> None:
    old = Pricing.from_openrouter({"prompt": "0.000001", "completion": "0.000002", "request": "0",
                                   "image": "0", "web_search": "0", "internal_reasoning": "0"})
    new = Pricing.from_openrouter({"prompt": "0.000001", "completion": "0.000002"})
    assert old == new
    assert new.web_search == new.input_cache_read == 0


def test_numbers_tolerated_and_garbage_rejected() -> None:
    assert Pricing.from_openrouter({"prompt": 0.000001, "completion": 2}).prompt == Decimal("0.000001")
    for bad in ("abc", "-2", "NaN", [1], True):
        with pytest.raises(CatalogError):
            Pricing.from_openrouter({"prompt": bad, "completion": "0"})


def test_estimate_cost_billing_rules() -> None:
    p = Pricing.from_openrouter({
        "prompt": "0.000003", "completion": "0.000015", "internal_reasoning": "0.00002",
        "input_cache_read": "0.0000003", "input_cache_write": "0.00000375",
        "request": "0.001", "image": "0.005", "web_search": "0.01",
    })
    cost = estimate_cost(p, prompt_tokens=1000, completion_tokens=500, reasoning_tokens=200,
                         cached_tokens=400, cache_write_tokens=100, images=2, web_searches=1)
    expected = (500 * Decimal("0.000003") + 400 * Decimal("0.0000003") + 100 * Decimal("0.00000375")
                + 300 * Decimal("0.000015") + 200 * Decimal("0.00002")
                + Decimal("0.001") + 2 * Decimal("0.005") + Decimal("0.01"))
    assert cost == expected


def test_estimate_cost_falls_back_to_base_prices() -> None:
    p = Pricing.from_openrouter({"prompt": "0.000001", "completion": "0.000004"})
    cost = estimate_cost(p, prompt_tokens=100, completion_tokens=50, reasoning_tokens=20, cached_tokens=30)
    assert cost == 100 * Decimal("0.000001") + 50 * Decimal("0.000004")


def test_estimate_cost_rejects_inconsistent_counts() -> None:
    p = Pricing.from_openrouter({"prompt": "0.000001", "completion": "0.000004"})
    with pytest.raises(ValueError):
        estimate_cost(p, prompt_tokens=10, completion_tokens=5, reasoning_tokens=6)
    with pytest.raises(ValueError):
        estimate_cost(p, prompt_tokens=10, completion_tokens=5, cached_tokens=11)
    with pytest.raises(ValueError):
        estimate_cost(p, prompt_tokens=-1, completion_tokens=5)


prices = st.decimals(min_value=0, max_value=Decimal("0.001"), places=12)


@given(prompt=prices, completion=prices, cache=prices, n_prompt=st.integers(0, 10**6),
       n_completion=st.integers(0, 10**5), cached=st.integers(0, 10**6))
def test_caching_never_costs_more_than_cheaper_cache(
    prompt: Decimal, completion: Decimal, cache: Decimal, n_prompt: int, n_completion: int, cached: int
) -> None:
    cached = min(cached, n_prompt)
    p = Pricing(prompt=prompt, completion=completion, input_cache_read=min(cache, prompt))
    with_cache = estimate_cost(p, prompt_tokens=n_prompt, completion_tokens=n_completion, cached_tokens=cached)
    without = estimate_cost(p, prompt_tokens=n_prompt, completion_tokens=n_completion)
    assert with_cache is not None and without is not None
    assert 0 <= with_cache <= without
