"""An A/B experiment's verdict: its goal, its guardrails, and whether there is enough data to say.

* **Enough data.** With fewer than :data:`MIN_PER_VARIANT` requests in a variant no test is run on
  it (a z-test on 1 vs 3 requests gives degenerate intervals such as ``[0, 0]``). When the goal's
  test is not significant, the verdict is "not enough data" until each variant has the sample a
  two-sided test at ``alpha`` needs to detect the *smallest difference worth acting on* with 80 %
  power (:func:`needed_per_variant`):

  ===========  =====================================  ============================================
  goal         smallest difference worth acting on    n per variant
  ===========  =====================================  ============================================
  success      2 points of success rate               z^2 * 2 p(1-p) / d^2, p the pooled rate (p(1-p)
                                                      at least 0.01: a model that never failed yet
                                                      still needs a sample)
  cost         10 % of the mean                        z^2 * 2 CV^2 / 0.1^2, CV the pooled coefficient
  latency      10 % of the mean                        of variation (at least 0.1)
  quality      0.05 of mean rating                     z^2 * 2 var / 0.05^2 (var at least 0.01)
  ===========  =====================================  ============================================

  with ``z = z(1 - alpha/2) + z(0.8)``. A significant result needs no such check: it was seen.
* **Winner.** The goal's test (the one primary hypothesis, at ``alpha``) must be significant; it
  names the better variant. Then every guardrail (default: success) is tested at ``alpha`` too,
  *uncorrected*: a guardrail exists to stop a bad switch, so it errs on the side of flagging. If
  the better variant is significantly worse on a guardrail, there is no winner: "B is cheaper but
  rejected by the success guardrail". Otherwise the better variant wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from hive_core import stats

__all__ = ["BETTER", "MIN_EFFECT", "MIN_PER_VARIANT", "Verdict", "needed_per_variant", "verdict", "verdict_json"]

#: requests a variant needs before any test is run on it
MIN_PER_VARIANT = 20
#: smallest difference worth acting on, per goal (absolute for success and quality; relative for cost, latency)
MIN_EFFECT = {"success": 0.02, "cost": 0.10, "latency": 0.10, "quality": 0.05}
#: which direction is better for each metric (+1: higher is better)
BETTER = {"success": 1, "quality": 1, "latency": -1, "cost": -1}


@dataclass(frozen=True)
class Verdict:
    """``state``: ``winner``, ``rejected`` (better on the goal, worse on a guardrail), ``no-difference``
    or ``not-enough-data``; ``winner`` the variant key; ``needed`` the n per variant asked for."""

    state: str
    message: str
    winner: str | None = None
    needed: int | None = None


def _z(alpha: float, power: float = 0.8) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)


def needed_per_variant(goal: str, values: Sequence[float], alpha: float = stats.DEFAULT_ALPHA) -> int:
    """Requests per variant a two-sided test at ``alpha`` needs to see :data:`MIN_EFFECT` of ``goal``
    with 80 % power, from the pooled ``values`` seen so far (success: 1.0/0.0 per request)."""
    z2 = _z(alpha) ** 2
    n = len(values)
    mean = sum(values) / n if n else 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    effect = MIN_EFFECT[goal]
    if goal == "success":
        spread = max(mean * (1 - mean), 0.01)
    elif goal == "quality":
        spread = max(var, 0.01)
    else:  # relative: the coefficient of variation
        spread = max(var / mean**2 if mean > 0 else 0.0, 0.01)
    return max(MIN_PER_VARIANT, math.ceil(z2 * 2 * spread / effect**2))


def verdict(goal: str, guardrails: Sequence[str], tests: Mapping[str, stats.TestResult], sizes: tuple[int, int],
            pooled: Sequence[float], models: Mapping[str, str], alpha: float = stats.DEFAULT_ALPHA) -> Verdict:
    """The verdict from the tests run (estimate = b - a), the variants' sizes and the goal's pooled values."""
    needed = needed_per_variant(goal, pooled, alpha)
    if min(sizes) < MIN_PER_VARIANT:
        return Verdict("not-enough-data", f"not enough data (need about {needed:,} per variant; "
                       f"have {sizes[0]:,} and {sizes[1]:,})", needed=needed)
    test = tests.get(goal)
    if test is None or math.isnan(test.estimate) or test.p_value >= alpha:
        if min(sizes) < needed:
            return Verdict("not-enough-data", f"not enough data (need about {needed:,} per variant to see a "
                           f"{_effect(goal)} difference in {goal}; have {sizes[0]:,} and {sizes[1]:,})", needed=needed)
        return Verdict("no-difference", f"no significant difference in {goal} with enough data to see a "
                       f"{_effect(goal)} one: keep {models['a']} (a)")
    better = "b" if test.estimate * BETTER[goal] > 0 else "a"
    worse_on = [g for g in guardrails if g != goal and g in tests and tests[g].p_value < alpha
                and (tests[g].estimate * BETTER[g] > 0) != (better == "b")]
    if worse_on:
        keep = "a" if better == "b" else "b"
        return Verdict("rejected", f"{models[better]} ({better}) is better on {goal} but rejected by the "
                       f"{', '.join(worse_on)} guardrail (significantly worse): keep {models[keep]} ({keep})")
    return Verdict("winner", f"{models[better]} ({better}) wins on {goal}"
                   + (f" and is not worse on {', '.join(g for g in guardrails if g != goal)}"
                      if any(g != goal for g in guardrails) else ""), winner=better)


def _effect(goal: str) -> str:
    effect = MIN_EFFECT[goal]
    return f"{effect * 100:g}-point" if goal == "success" else f"{effect * 100:g}%" if goal != "quality" else f"{effect:g}"


def verdict_json(v: Verdict) -> dict[str, Any]:
    """The JSON form."""
    return {"state": v.state, "message": v.message, "winner": v.winner, "needed_per_variant": v.needed}
