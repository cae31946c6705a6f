"""The statistics of suggestions and A/B reports: known answers, and error rates over many seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hive_core import stats


def test_two_proportion_z_matches_a_hand_computed_example() -> None:
    # 45/100 vs 60/100: pooled p = 0.525, SE0 = sqrt(.525*.475*.02) = 0.070622, z = 2.1240
    result = stats.two_proportion_z(45, 100, 60, 100)
    assert result.estimate == pytest.approx(0.15)
    assert result.p_value == pytest.approx(0.03367, abs=2e-4)
    assert result.significant
    assert result.ci_low > 0


def test_wilson_interval_behaves_at_the_edges() -> None:
    low, high = stats.wilson_interval(0, 20)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.1 < high < 0.2
    low, high = stats.wilson_interval(20, 20)
    assert 0.8 < low < 0.9 and high == pytest.approx(1.0)


def test_non_inferiority_needs_evidence_not_just_absence_of_a_difference() -> None:
    # Equal rates, large samples: shown to be within a 2-point margin.
    assert stats.non_inferiority_z(950, 1000, 950, 1000, margin=0.02).significant
    # Equal rates, tiny samples: not shown (absence of evidence is not evidence).
    assert not stats.non_inferiority_z(19, 20, 19, 20, margin=0.02).significant
    # Clearly worse: never shown.
    assert not stats.non_inferiority_z(950, 1000, 900, 1000, margin=0.02).significant


def test_mann_whitney_matches_a_hand_computed_example() -> None:
    # a = 1..5, b = 6..10: U1 = 0, mu = 12.5, var = 22.9167, z = (12.5 - 0.5)/4.787 = 2.5067
    result = stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result.p_value == pytest.approx(0.01219, abs=2e-4)
    assert result.estimate == 5.0


def test_mann_whitney_handles_ties() -> None:
    result = stats.mann_whitney_u([1, 1, 1, 2], [1, 1, 1, 2])
    assert result.p_value == pytest.approx(1.0)


def test_bootstrap_mean_difference_finds_a_real_shift_and_its_size() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 400), rng.normal(11, 2, 400)
    result = stats.bootstrap_mean_diff(a, b)
    assert result.significant
    assert result.ci_low < 1.0 < result.ci_high


def test_mde_shrinks_with_the_sample_size() -> None:
    small, large = stats.mde_two_proportions(0.9, 100, 100), stats.mde_two_proportions(0.9, 10_000, 10_000)
    assert large < small
    # 2.8 * sqrt(.09 * .02) = 0.1188
    assert small == pytest.approx(0.1188, abs=2e-3)
    assert math.isinf(stats.mde_two_proportions(0.9, 0, 10))


def test_false_positive_rate_is_near_the_level_over_200_seeds() -> None:
    """With no difference, each test rejects at about alpha = 5 % of the time (binomial 200 draws:
    a 99.9 % band around 10 rejections is 1..22)."""
    z_rejects = mw_rejects = boot_rejects = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        ok_a, ok_b = rng.random(300) < 0.9, rng.random(300) < 0.9
        z_rejects += stats.two_proportion_z(int(ok_a.sum()), 300, int(ok_b.sum()), 300).significant
        lat_a, lat_b = rng.lognormal(6, 0.5, 150), rng.lognormal(6, 0.5, 150)
        mw_rejects += stats.mann_whitney_u(lat_a, lat_b).significant
        boot_rejects += stats.bootstrap_mean_diff(lat_a, lat_b, rounds=400, seed=seed).significant
    for rejects in (z_rejects, mw_rejects, boot_rejects):
        assert 1 <= rejects <= 22, (z_rejects, mw_rejects, boot_rejects)


def test_power_against_a_real_difference_over_seeds() -> None:
    """A 10-point drop at 500 a side is found nearly always (power > 0.95)."""
    found = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        ok_a, ok_b = rng.random(500) < 0.95, rng.random(500) < 0.85
        found += stats.two_proportion_z(int(ok_a.sum()), 500, int(ok_b.sum()), 500).significant
    assert found >= 95


def test_mann_whitney_direction_survives_tied_medians() -> None:
    from hive_core.stats import mann_whitney_u

    a = [1.0] * 50 + [2.0] * 50  # median 1.5
    b = [1.0] * 30 + [1.5] * 40 + [3.0] * 30  # median 1.5 too, but b tends higher
    result = mann_whitney_u(a, b)
    assert result.estimate > 0
