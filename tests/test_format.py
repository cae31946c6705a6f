"""hive_core.format: the figures every report and command prints, pinned to the forms they had."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hive_core.format import MISSING, ms, pct, usd

#: amounts across the thresholds (0, below a cent, below and above $1, thousands, negative refunds)
AMOUNTS = (0.0, 0.000616, 0.001, 0.00001, 0.0042, 0.05, 0.5, 0.99995, 1.0, 2.5, 1234.5678, -0.25, -3.5)


@pytest.mark.parametrize("value", AMOUNTS)
def test_usd_spend(value: float) -> None:
    """Cents from a cent up; below, two significant digits: never "$0.0000", never an exponent."""
    text = usd(value)
    assert "e" not in text and text.startswith("$")
    if abs(value) >= 0.01 or value == 0:
        assert text == f"${value:,.2f}"
    else:
        shown = float(text[1:])
        assert shown != 0 and abs(shown - value) <= abs(value) * 0.05


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "$0.00"), (2.415e-05, "$0.000024"), (0.000616, "$0.00062"), (0.0042, "$0.0042"), (0.002, "$0.002"),
    (0.0099, "$0.0099"), (0.00996, "$0.01"), (0.5, "$0.50"), (0.351, "$0.35"), (1.0, "$1.00"),
    (1234.5678, "$1,234.57"), (-0.0042, "$-0.0042"), (Decimal("0.0000241"), "$0.000024"), (1e-12, "$0.000000000001"),
])
def test_usd_spend_examples(value: float, text: str) -> None:
    assert usd(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "$0.00"), (0.001, "$0.001"), (0.00001, "$0.00001"), (0.000616, "$0.000616"), (0.5, "$0.50"),
    (0.05, "$0.05"), (0.1234567, "$0.123457"), (2.5, "$2.50"), (1234.5, "$1,234.50"), (-0.5, "$-0.50"),
])
def test_usd_typed(value: float, text: str) -> None:
    """A limit shows the digits the user typed (the budget's refusal line and ``hive budget``)."""
    assert usd(value, typed=True) == text


def test_usd_fixed_places() -> None:
    assert usd(0.000616, places=6) == "$0.000616"
    assert usd(Decimal("0.0001234"), places=6) == "$0.000123"
    assert usd(8.5, places=2) == "$8.50"
    assert usd(1234.5, places=2) == "$1,234.50"  # grouped, like every other amount


@pytest.mark.parametrize("value", [0.0, 1.0, 250.4, 999.4, 999.6, 1000.0, 1234.5, 61_000.0])
def test_ms(value: float) -> None:
    assert ms(value) == f"{value:,.0f} ms"  # the HTML report's form
    assert ms(value, unit=False) == f"{value:,.0f}"  # the summary's table, unit in the header
    # the performance table's narrow columns
    assert ms(value, compact=True) == (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


def test_ms_examples() -> None:
    assert ms(1234.4) == "1,234 ms" and ms(1234.4, unit=False) == "1,234"
    assert ms(250.0, compact=True) == "250ms" and ms(1234.0, compact=True) == "1.23s"


@pytest.mark.parametrize("value", [0.0, 0.0005, 0.12345, 0.5, 0.97315, 1.0, 1.5])
def test_pct(value: float) -> None:
    assert pct(value) == f"{100 * value:.1f}%"  # the copies in the HTML and A/B reports
    assert pct(value, places=0) == f"{value:.0%}"


def test_missing_figures_are_a_dash() -> None:
    assert MISSING == "-"
    assert usd(None) == usd(None, typed=True) == usd(None, places=6) == MISSING
    assert ms(None) == ms(None, unit=False) == ms(None, compact=True) == MISSING
    assert pct(None) == MISSING
