"""Price tiers (Economy < Standard < Premium < Flagship) from the current catalog's price distribution.

A model's tier is where its *blended price* falls among the priced models of the same catalog, so
tiers follow the market instead of hard-coded dollar thresholds (the design this replaces had fixed
thresholds in the wrong unit and the tier order inverted).

* Blended price: ``(3 * prompt + completion) / 4`` USD per token - the usual 3:1 input:output mix
  of chat traffic (the blend Artificial Analysis publishes).
* Quantile base: every model with a known, non-zero price. Routers (``"-1"``) and free models are
  left out: they would drag every boundary down without being a price anyone pays.
* Boundaries (nearest-rank quantiles of that base): Flagship is the top 15 % (>= p85), Premium
  p60..p85, Standard p30..p60, Economy below p30. Free models are Economy; routers are Standard
  (their price is unknown and they are never chosen implicitly anyway).

Tiers are ordered: ``TIER_RANK["economy"] == 0 < ... < TIER_RANK["flagship"] == 3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from hive_core.catalog.pricing import Pricing

__all__ = ["TIERS", "TIER_QUANTILES", "TIER_RANK", "TierThresholds", "blended_price", "parse_tier"]

#: lowest to highest; the index is the rank
TIERS: tuple[str, ...] = ("economy", "standard", "premium", "flagship")
TIER_RANK: dict[str, int] = {name: rank for rank, name in enumerate(TIERS)}
#: lower quantile boundary of standard, premium, flagship
TIER_QUANTILES: tuple[float, float, float] = (0.30, 0.60, 0.85)


def blended_price(pricing: Pricing) -> Decimal:
    """USD per token at a 3:1 prompt:completion mix."""
    return (3 * pricing.prompt + pricing.completion) / 4


def parse_tier(value: str) -> str:
    """A tier name in any case (``Flagship``) as its canonical lower-case form; ``ValueError`` if none."""
    name = value.strip().lower()
    if name not in TIER_RANK:
        raise ValueError(f"unknown tier {value!r}: one of {', '.join(TIERS)}")
    return name


def _quantile(sorted_values: Sequence[Decimal], q: float) -> Decimal:
    # Nearest rank: always an observed price, deterministic, no interpolation noise.
    index = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values))))
    return sorted_values[index]


@dataclass(frozen=True, slots=True)
class TierThresholds:
    """Lower blended-price boundaries of standard, premium and flagship (USD per token)."""

    standard: Decimal
    premium: Decimal
    flagship: Decimal

    @classmethod
    def from_prices(cls, prices: Iterable[Pricing]) -> TierThresholds:
        """Boundaries over the priced, non-router, non-free models among ``prices``."""
        base = sorted(blended_price(p) for p in prices if not p.variable and not p.is_zero)
        if not base:
            # A catalog of only free models: everything non-free would be flagship; harmless.
            return cls(Decimal(0), Decimal(0), Decimal(0))
        q_std, q_prem, q_flag = TIER_QUANTILES
        return cls(_quantile(base, q_std), _quantile(base, q_prem), _quantile(base, q_flag))

    def tier_of(self, pricing: Pricing) -> str:
        """The tier of one price (free -> economy, variable -> standard)."""
        if pricing.variable:
            return "standard"
        if pricing.is_zero:
            return "economy"
        price = blended_price(pricing)
        if price >= self.flagship:
            return "flagship"
        if price >= self.premium:
            return "premium"
        if price >= self.standard:
            return "standard"
        return "economy"
