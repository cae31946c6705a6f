"""Mergeable latency distributions: log-bucket histograms with a bounded relative error.

A value ``x > 0`` falls in bucket ``i = ceil(ln(x) / ln(GAMMA))``, i.e. ``GAMMA**(i-1) < x <= GAMMA**i``.
The bucket's representative value ``2 * GAMMA**i / (GAMMA + 1)`` is within ``ALPHA`` (relative) of
every value in the bucket (the DDSketch construction, ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``).
Values ``<= 0`` go to the bucket ``ZERO_BUCKET`` whose representative is 0.

Histograms are stored per rollup row as two parallel lists (``*_buckets`` int32 ascending,
``*_counts`` int64); merging over any set of rows is adding counts per bucket, so percentiles over any
range of days come from the rollups alone. :func:`quantile_cont` interpolates between order
statistics exactly like DuckDB's ``quantile_cont``; each order statistic is within ``ALPHA`` of the
true one, and so is any interpolation between two of them (all values positive), so a percentile is
within ``ALPHA`` of the exact one. ``ALPHA`` is 0.8%, leaving margin under the 1% promise for floating
point at bucket edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ALPHA",
    "GAMMA",
    "LN_GAMMA",
    "ZERO_BUCKET",
    "bucket_of",
    "bucket_value",
    "from_sorted",
    "grouped_quantiles",
    "merge",
    "quantile_cont",
]

ALPHA = 0.008
GAMMA = (1 + ALPHA) / (1 - ALPHA)
#: ``ln(GAMMA)``: a value's bucket is ``ceil(ln(x) / LN_GAMMA)``
LN_GAMMA = math.log(GAMMA)
#: bucket of values <= 0 (no logarithm); far below any real bucket (1e-300 ms is bucket -43,000)
ZERO_BUCKET = -(2**31)


def bucket_of(values: npt.ArrayLike) -> np.ndarray:
    """Bucket index of each value (numpy): ``ceil(ln(x) / LN_GAMMA)``, ``ZERO_BUCKET`` for ``x <= 0``."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    positive = x > 0
    # in place, one float buffer: the rollup calls this on millions of values, and fresh memory is
    # what costs most on a cold process
    t = np.full(x.shape, float(ZERO_BUCKET))
    np.log(x, out=t, where=positive)
    np.divide(t, LN_GAMMA, out=t, where=positive)
    np.ceil(t, out=t)
    return t.astype(np.int64)


def bucket_value(buckets: npt.ArrayLike) -> np.ndarray:
    """Representative value of each bucket index."""
    import numpy as np

    b = np.asarray(buckets, dtype=np.int64)
    values = 2.0 * np.exp(b.astype(np.float64) * LN_GAMMA) / (GAMMA + 1.0)
    return np.where(b == ZERO_BUCKET, 0.0, values)


def merge(buckets: Sequence[npt.ArrayLike], counts: Sequence[npt.ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """Sum several sparse histograms into one: (ascending unique buckets, counts)."""
    import numpy as np

    if not buckets:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    b = np.concatenate([np.asarray(x, dtype=np.int64) for x in buckets])
    c = np.concatenate([np.asarray(x, dtype=np.int64) for x in counts])
    unique, inverse = np.unique(b, return_inverse=True)
    return unique, np.bincount(inverse, weights=c, minlength=len(unique)).astype(np.int64)


def quantile_cont(buckets: npt.ArrayLike, counts: npt.ArrayLike, qs: Sequence[float]) -> list[float | None]:
    """Percentiles of a histogram (ascending buckets), interpolated like DuckDB ``quantile_cont``.

    ``None`` for every quantile of an empty histogram.
    """
    import numpy as np

    b = np.asarray(buckets, dtype=np.int64)
    row = grouped_quantiles(np.array([0, len(b)]), b, counts, qs)[0]
    return [None if math.isnan(v) else float(v) for v in row]


def grouped_quantiles(offsets: npt.ArrayLike, buckets: npt.ArrayLike, counts: npt.ArrayLike,
                      qs: Sequence[float]) -> np.ndarray:
    """:func:`quantile_cont` of many histograms at once: group ``g`` is ``buckets[offsets[g]:offsets[g+1]]``
    (ascending) with its counts. Returns ``(groups, len(qs))`` floats, NaN for an empty group.

    One pass for all groups: order statistic ``k`` of group ``g`` is the first bucket whose running
    count (over the concatenation of all groups) exceeds the count before ``g`` plus ``k``.
    """
    import numpy as np

    off = np.asarray(offsets, dtype=np.int64)
    ends = np.cumsum(np.asarray(counts, dtype=np.int64))
    before = np.concatenate([[0], ends])
    base, n = before[off[:-1]], before[off[1:]] - before[off[:-1]]
    values = np.append(bucket_value(buckets), np.nan)  # the extra slot is what an empty group points at
    return _interpolated(n, qs, lambda k: values[np.searchsorted(ends, base + k, side="right")])


def _interpolated(n: np.ndarray, qs: Sequence[float], order_statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``quantile_cont``'s interpolation for groups of ``n`` values: ``order_statistic(k)`` is each
    group's ``k[g]``-th smallest value (0-based; any value where ``n[g] == 0``). NaN for empty groups."""
    import numpy as np

    out = np.empty((len(n), len(qs)))
    for j, q in enumerate(qs):
        h = (n - 1) * q
        lo, hi = np.floor(h), np.ceil(h)
        v_lo, v_hi = order_statistic(lo.astype(np.int64)), order_statistic(hi.astype(np.int64))
        out[:, j] = np.where(n > 0, v_lo + (h - lo) * (v_hi - v_lo), np.nan)
    return out


def from_sorted(offsets: npt.ArrayLike, values: npt.ArrayLike,
                qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact percentiles and histograms of many groups of raw values at once.

    Group ``g`` is ``values[offsets[g]:offsets[g+1]]``, sorted ascending. Returns
    ``(quantiles, hist_offsets, buckets, counts)``: ``quantiles[g, j]`` is the ``qs[j]`` percentile of
    group ``g`` interpolated like DuckDB ``quantile_cont`` (NaN for an empty group), and group ``g``'s
    histogram is ``buckets[hist_offsets[g]:hist_offsets[g+1]]`` (ascending) with its counts. Sorted
    values have non-decreasing buckets, so each histogram is the run lengths of its buckets.
    """
    import numpy as np

    off = np.asarray(offsets, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    starts, n = off[:-1], np.diff(off)
    last = max(len(v) - 1, 0)
    quantiles = _interpolated(n, qs, lambda k: v[np.clip(starts + k, 0, last)] if len(v) else np.zeros(len(k)))
    b = bucket_of(v)
    run_start = np.empty(len(v), dtype=bool)
    if len(v):
        run_start[0] = True
        np.not_equal(b[1:], b[:-1], out=run_start[1:])
        run_start[starts[n > 0]] = True  # a group's first value starts a run
    first = np.flatnonzero(run_start)
    counts = np.diff(np.append(first, len(v)))
    # runs never span groups, so group g's runs are those starting in [off[g], off[g+1])
    return quantiles, np.searchsorted(first, off), b[first], counts
