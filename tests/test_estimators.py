"""Estimators over replications, checked against known answers: the published test values
of each method and coverage on synthetic runs with a known mean (tolerances of 3 Monte
Carlo standard errors for the number of macro-replications)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mailnet.sweep.estimators import holm, mean_interval, paired_difference, wilson


def _coverage_tolerance(m: int, level: float = 0.95) -> float:
    return 3 * math.sqrt(level * (1 - level) / m)


def test_paired_difference_direction_and_values() -> None:
    d = paired_difference([2, 3, 4], [1, 1, 1])
    assert d.estimate == pytest.approx(2.0)
    assert (d.low, d.high) == pytest.approx((-0.484, 4.484), abs=1e-3)
    assert d.pairs == 3


def test_paired_difference_drops_pairs_with_a_failed_run() -> None:
    d = paired_difference([2, np.nan, 4, 5], [1, 1, np.nan, 2])
    assert d.pairs == 2
    assert d.estimate == pytest.approx(2.0)


def test_paired_difference_of_identical_runs_is_exactly_zero() -> None:
    d = paired_difference([3.0, 5.0, 7.0], [3.0, 5.0, 7.0])
    assert (d.estimate, d.low, d.high, d.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_interval_covers_the_true_difference_at_its_level() -> None:
    # common random numbers: a shared shock Z makes the pairs strongly correlated
    rng = np.random.default_rng(20261201)
    m, r = 2000, 10
    z = rng.normal(size=(m, r))
    y0 = 10 + z + rng.normal(0, 0.3, size=(m, r))
    y1 = 10.5 + z + rng.normal(0, 0.3, size=(m, r))
    results = [paired_difference(y1[i], y0[i]) for i in range(m)]
    covered = np.mean([d.low <= 0.5 <= d.high for d in results])
    assert abs(covered - 0.95) <= _coverage_tolerance(m)
    half = np.mean([(d.high - d.low) / 2 for d in results])
    # theory: t_9 * sqrt(2 * 0.3^2) / sqrt(10) = 0.304; the mean of S is a little smaller
    assert 0.27 < half < 0.31


def test_holm_matches_the_step_down_values() -> None:
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted <= 0.05) == [True, False, False, True]
    with_nan = holm([0.01, np.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02)
    assert np.isnan(with_nan[1])
    assert with_nan[2] == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("events", "runs", "low", "high"),
    [(0, 20, 0.0, 0.1611), (1, 20, 0.0089, 0.2361), (3, 100, 0.0103, 0.0845)],
)
def test_wilson_intervals(events: int, runs: int, low: float, high: float) -> None:
    share, lo, hi = wilson(events, runs)
    assert share == events / runs
    assert (lo, hi) == pytest.approx((low, high), abs=1e-4)


def test_logit_interval_stays_inside_zero_one() -> None:
    rates = [0, 0, 0, 0, 0, 0, 0, 0, 0.04, 0.01]
    linear = mean_interval(rates)
    assert linear.low < 0  # the plain t-interval crosses the bound
    logit = mean_interval(rates, "logit")
    assert logit.estimate == pytest.approx(0.005)
    assert (logit.low, logit.high) == pytest.approx((0.00081, 0.0302), abs=5e-5)
    all_zero = mean_interval([0.0] * 5, "logit")
    assert (all_zero.low, all_zero.high) == (0.0, 0.0)


def test_log_interval_covers_a_positive_mean() -> None:
    # lognormal runs: the log-delta interval keeps the mean's interval positive and covers
    rng = np.random.default_rng(7)
    m, r, sigma = 1000, 20, 0.5
    true_mean = math.exp(1 + sigma**2 / 2)
    covered = 0
    for _ in range(m):
        values = np.exp(1 + sigma * rng.normal(size=r))
        interval = mean_interval(values, "log")
        assert interval.low > 0
        covered += interval.low <= true_mean <= interval.high
    assert abs(covered / m - 0.95) <= _coverage_tolerance(m) + 0.01
