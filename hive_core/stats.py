"""The statistics behind suggestions and A/B reports, written out with ``math`` and numpy (no scipy).

Every test returns a :class:`TestResult` (estimate, confidence interval, p-value, the level), so a
report can print the evidence next to the verdict:

* :func:`two_proportion_z` - success rates, two-sided, pooled standard error under H0, Wald interval
  on the difference (``b - a``).
* :func:`non_inferiority_z` - "is B not worse than A by more than ``margin``" (one-sided, unpooled
  standard error): what a savings suggestion needs; failing to show "worse" is not evidence of
  "as good", so suggestions use this, never the plain test.
* :func:`mann_whitney_u` - latency and cost distributions: U with tie correction, normal
  approximation (fine from ~20 samples a side), two-sided; the estimate is the difference of medians.
* :func:`bootstrap_mean_diff` - percentile bootstrap interval of ``mean(b) - mean(a)`` (seeded).
* :func:`mde_two_proportions` - the smallest difference in success rate detectable at the current
  sample sizes (two-sided ``alpha``, ``power``).
* :func:`wilson_interval` - a rate's interval that behaves at 0 % and 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

__all__ = [
    "DEFAULT_ALPHA",
    "TestResult",
    "bootstrap_mean_diff",
    "mann_whitney_u",
    "mde_two_proportions",
    "mean_non_inferiority",
    "mean_non_inferiority_summary",
    "non_inferiority_z",
    "percentile",
    "two_proportion_z",
    "wilson_interval",
]

#: significance level of every test unless a caller says otherwise (95 % confidence)
DEFAULT_ALPHA = 0.05
_N = NormalDist()


@dataclass(frozen=True)
class TestResult:
    """One test: what it estimated (``b - a``), the interval at ``1 - alpha``, and the p-value."""

    __test__ = False  # not a pytest test class, despite the name

    test: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def wilson_interval(successes: int, n: int, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = _N.inv_cdf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(s_a: int, n_a: int, s_b: int, n_b: int, alpha: float = DEFAULT_ALPHA) -> TestResult:
    """Two-sided z-test of ``p_b == p_a`` (pooled SE), with a Wald interval on ``p_b - p_a``."""
    if n_a <= 0 or n_b <= 0:
        return TestResult("two-proportion z", math.nan, math.nan, math.nan, 1.0, alpha)
    p_a, p_b = s_a / n_a, s_b / n_b
    pooled = (s_a + s_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    p_value = 1.0 if se0 == 0 else 2 * (1 - _N.cdf(abs(diff) / se0))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    z = _N.inv_cdf(1 - alpha / 2)
    return TestResult("two-proportion z", diff, diff - z * se, diff + z * se, min(1.0, p_value), alpha)


def non_inferiority_z(
    s_ref: int, n_ref: int, s_new: int, n_new: int, margin: float, alpha: float = DEFAULT_ALPHA
) -> TestResult:
    """One-sided test of H0 ``p_new <= p_ref - margin`` against H1 ``p_new > p_ref - margin``.

    Significant means "not worse by more than ``margin``" at confidence ``1 - alpha``. The interval
    is the one-sided ``[low, +inf)`` bound on ``p_new - p_ref`` (reported with ``ci_high = 1``).
    The standard error uses a continuity-free Wald form with rates clipped away from 0 and 1 by
    half a count, so two perfect samples are not infinitely certain.
    """
    if n_ref <= 0 or n_new <= 0:
        return TestResult("non-inferiority z", math.nan, math.nan, math.nan, 1.0, alpha)
    p_ref, p_new = s_ref / n_ref, s_new / n_new
    q_ref = min(max(p_ref, 0.5 / n_ref), 1 - 0.5 / n_ref)
    q_new = min(max(p_new, 0.5 / n_new), 1 - 0.5 / n_new)
    se = math.sqrt(q_ref * (1 - q_ref) / n_ref + q_new * (1 - q_new) / n_new)
    diff = p_new - p_ref
    p_value = 1 - _N.cdf((diff + margin) / se)
    low = diff - _N.inv_cdf(1 - alpha) * se
    return TestResult("non-inferiority z", diff, low, 1.0, p_value, alpha)


def mean_non_inferiority(
    ref: Sequence[float], new: Sequence[float], margin: float, alpha: float = DEFAULT_ALPHA
) -> TestResult:
    """One-sided Welch z-test that ``mean(new) > mean(ref) - margin`` (quality scores in 0..1)."""
    import numpy as np

    a, b = np.asarray(ref, float), np.asarray(new, float)
    if len(a) < 2 or len(b) < 2:
        return TestResult("mean non-inferiority z", math.nan, math.nan, math.nan, 1.0, alpha)
    return mean_non_inferiority_summary(float(a.mean()), float(a.var(ddof=1)), len(a),
                                        float(b.mean()), float(b.var(ddof=1)), len(b), margin, alpha)


def mean_non_inferiority_summary(
    mean_ref: float, var_ref: float, n_ref: int, mean_new: float, var_new: float, n_new: int,
    margin: float, alpha: float = DEFAULT_ALPHA,
) -> TestResult:
    """:func:`mean_non_inferiority` from summaries (mean, sample variance, count), as SQL gives them."""
    if n_ref < 2 or n_new < 2:
        return TestResult("mean non-inferiority z", math.nan, math.nan, math.nan, 1.0, alpha)
    diff = mean_new - mean_ref
    se = math.sqrt(var_ref / n_ref + var_new / n_new) or 1e-12
    p_value = 1 - _N.cdf((diff + margin) / se)
    return TestResult("mean non-inferiority z", diff, diff - _N.inv_cdf(1 - alpha) * se, 1.0, p_value, alpha)


def mann_whitney_u(a: Sequence[float], b: Sequence[float], alpha: float = DEFAULT_ALPHA) -> TestResult:
    """Two-sided Mann-Whitney U (normal approximation, tie-corrected variance).

    The estimate is ``median(b) - median(a)``; its interval is a seeded bootstrap of that difference,
    since the U statistic itself has no interval in the data's units. When the medians tie, the
    estimate is the difference of means instead, so its sign still says which variant tends higher
    (a significant U with equal medians must not default to either side).
    """
    import numpy as np

    x, y = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return TestResult("Mann-Whitney U", math.nan, math.nan, math.nan, 1.0, alpha)
    both = np.concatenate([x, y])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    sorted_vals = both[order]
    # Average ranks over ties: each run of equal values gets the mean of its positions.
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    tie_term = float((counts**3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var = n1 * n2 / 12 * ((n + 1) - tie_term)
    p_value = 1.0 if var <= 0 else 2 * (1 - _N.cdf(max(abs(u1 - mu) - 0.5, 0.0) / math.sqrt(var)))
    low, high = _bootstrap(x, y, np.median, alpha)
    estimate = float(np.median(y) - np.median(x)) or float(y.mean() - x.mean())
    return TestResult("Mann-Whitney U", estimate, low, high, min(1.0, p_value), alpha)


def bootstrap_mean_diff(
    a: Sequence[float], b: Sequence[float], alpha: float = DEFAULT_ALPHA, *, rounds: int = 2000, seed: int = 0
) -> TestResult:
    """Percentile bootstrap of ``mean(b) - mean(a)``; p-value from the bootstrap distribution
    (twice the share of resampled differences on the other side of 0)."""
    import numpy as np

    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) == 0 or len(y) == 0:
        return TestResult("bootstrap mean", math.nan, math.nan, math.nan, 1.0, alpha)
    diffs = _resample(x, y, np.mean, rounds, seed)
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    estimate = float(y.mean() - x.mean())
    # Shift to H0 (difference 0): how often is a resampled difference at least this far from the centre.
    p_value = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()) + 1 / rounds))
    return TestResult("bootstrap mean", estimate, float(low), float(high), p_value, alpha)


def _resample(x: Any, y: Any, stat: Any, rounds: int, seed: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    # Cap the work: 2000 rounds of at most 5000 draws a side keeps a report under a second.
    size_x, size_y = min(len(x), 5000), min(len(y), 5000)
    xs = x[rng.integers(0, len(x), size=(rounds, size_x))]
    ys = y[rng.integers(0, len(y), size=(rounds, size_y))]
    return stat(ys, axis=1) - stat(xs, axis=1)


def _bootstrap(x: Any, y: Any, stat: Any, alpha: float, rounds: int = 500) -> tuple[float, float]:
    import numpy as np

    diffs = _resample(x, y, stat, rounds, 0)
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def mde_two_proportions(p: float, n_a: int, n_b: int, alpha: float = DEFAULT_ALPHA, power: float = 0.8) -> float:
    """Smallest |p_b - p_a| a two-sided test at ``alpha`` detects with ``power``, around rate ``p``."""
    if n_a <= 0 or n_b <= 0:
        return math.inf
    p = min(max(p, 1e-6), 1 - 1e-6)
    z = _N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power)
    return z * math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (like DuckDB ``quantile_cont``); ``None`` for no values."""
    import numpy as np

    if len(values) == 0:
        return None
    return float(np.quantile(np.asarray(values, float), q))
