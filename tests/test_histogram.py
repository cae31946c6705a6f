"""The mergeable log-bucket histogram: bucket error, quantiles within 1 % of exact, merging, grouped and sorted inputs."""

from __future__ import annotations

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.rollup import histogram

latencies = st.lists(st.floats(min_value=0.05, max_value=600_000, allow_nan=False), min_size=1, max_size=400)


def _hist(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    buckets, counts = np.unique(histogram.bucket_of(values), return_counts=True)
    return buckets, counts


def test_bucket_value_is_within_alpha_of_every_value_in_the_bucket() -> None:
    values = np.exp(np.random.default_rng(1).uniform(np.log(0.01), np.log(1e6), 100_000))
    approx = histogram.bucket_value(histogram.bucket_of(values))
    assert np.max(np.abs(approx - values) / values) <= histogram.ALPHA * (1 + 1e-9)
    assert histogram.ALPHA < 0.01


def test_zero_and_negative_values_have_their_own_bucket() -> None:
    assert histogram.bucket_of([0.0])[0] == histogram.ZERO_BUCKET
    assert histogram.bucket_value([histogram.ZERO_BUCKET])[0] == 0.0
    assert histogram.quantile_cont([histogram.ZERO_BUCKET], [3], [0.5]) == [0.0]


@settings(max_examples=200, deadline=None)
@given(latencies, st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_quantile_within_1pct_of_exact(values: list[float], q: float) -> None:
    buckets, counts = _hist(values)
    (estimate,) = histogram.quantile_cont(buckets, counts, [q])
    exact = float(np.quantile(values, q))  # linear interpolation = DuckDB quantile_cont
    assert estimate is not None
    assert abs(estimate - exact) <= 0.01 * exact


@settings(max_examples=100, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=6))
def test_merged_histograms_give_the_quantiles_of_all_values(parts: list[list[float]]) -> None:
    hists = [_hist(p) for p in parts]
    buckets, counts = histogram.merge([h[0] for h in hists], [h[1] for h in hists])
    everything = [v for p in parts for v in p]
    assert counts.sum() == len(everything)
    for q, estimate in zip((0.5, 0.95, 0.99), histogram.quantile_cont(buckets, counts, [0.5, 0.95, 0.99]), strict=True):
        exact = float(np.quantile(everything, q))
        assert estimate is not None and abs(estimate - exact) <= 0.01 * exact


def test_numpy_quantile_is_duckdb_quantile_cont() -> None:
    values = np.random.default_rng(2).lognormal(7, 1, 1001)
    (exact,) = duckdb.connect().execute("select quantile_cont(v, 0.95) from unnest($v) t(v)", {"v": values.tolist()}).fetchall()[0]
    assert abs(exact - np.quantile(values, 0.95)) < 1e-9 * exact


def test_empty_histogram_has_no_quantiles() -> None:
    assert histogram.quantile_cont([], [], [0.5, 0.99]) == [None, None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=0.0, max_value=600_000, allow_nan=False), max_size=50), min_size=1, max_size=12))
def test_grouped_quantiles_equal_each_groups_own_expanded_quantiles(groups: list[list[float]]) -> None:
    qs = [0.0, 0.5, 0.95, 0.99, 1.0]
    hists = [_hist(values) if values else (np.empty(0, np.int64), np.empty(0, np.int64)) for values in groups]
    offsets = np.cumsum([0, *(len(b) for b, _ in hists)])
    got = histogram.grouped_quantiles(offsets, np.concatenate([b for b, _ in hists]),
                                      np.concatenate([c for _, c in hists]), qs)
    for (buckets, counts), row in zip(hists, got, strict=True):
        if not len(buckets):
            assert np.isnan(row).all()
            continue
        reference = np.quantile(np.repeat(histogram.bucket_value(buckets), counts), qs)  # linear = quantile_cont
        np.testing.assert_allclose(row, reference, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=-5.0, max_value=600_000, allow_nan=False), max_size=60), min_size=1, max_size=10))
def test_from_sorted_gives_each_groups_exact_quantiles_and_histogram(groups: list[list[float]]) -> None:
    qs = [0.5, 0.95, 0.99]
    sorted_groups = [np.sort(np.asarray(values, dtype=np.float64)) for values in groups]
    offsets = np.cumsum([0, *(len(g) for g in sorted_groups)])
    quantiles, hist_offsets, buckets, counts = histogram.from_sorted(offsets, np.concatenate(sorted_groups), qs)
    for g, values in enumerate(sorted_groups):
        hist = slice(hist_offsets[g], hist_offsets[g + 1])
        if not len(values):
            assert np.isnan(quantiles[g]).all() and hist.start == hist.stop
            continue
        np.testing.assert_allclose(quantiles[g], np.quantile(values, qs), rtol=1e-12, atol=1e-12)
        want_buckets, want_counts = _hist(values.tolist())
        assert buckets[hist].tolist() == want_buckets.tolist() and counts[hist].tolist() == want_counts.tolist()
