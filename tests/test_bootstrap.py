"""The paired BCa bootstrap of quantile and ratio metrics: equal to SciPy's on a fixed
sample, its fallbacks where BCa is undefined, coverage of a known difference on skewed
synthetic runs (tolerance 3 Monte Carlo standard errors), and its use in the points table."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mailnet.sweep.estimators import RESAMPLES, bootstrap_difference, paired_difference
from mailnet.sweep.stats import point_table


def _skewed_runs(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Per-run p90 latencies under common random numbers: each run's latencies are
    lognormal with scale parameter 0.5 and a location drawn per replication (a shock z
    shared by both points, plus each run's own noise); the change adds 0.2 to the
    location. A run's p90 is exp(location + 0.5 z_0.9), so the expected paired
    difference is exp(0.5 z_0.9 + (0.5^2 + 0.25^2) / 2) (e^0.2 - 1)."""
    shift = 0.5 * stats.norm.ppf(0.9)
    z = rng.normal(0, 0.5, shape)
    y0 = np.exp(shift + z + rng.normal(0, 0.25, shape))
    y1 = np.exp(shift + 0.2 + z + rng.normal(0, 0.25, shape))
    truth = math.exp(shift + (0.5**2 + 0.25**2) / 2) * (math.exp(0.2) - 1)
    return y1, y0, np.float64(truth)


def test_equals_scipy_paired_bca_on_a_fixed_sample() -> None:
    y1, y0, _ = _skewed_runs(np.random.default_rng(3), (20,))
    d = bootstrap_difference(y1, y0, seed=[1, 2, 3])
    ci = stats.bootstrap(
        (y1, y0),
        lambda a, b, axis=-1: np.mean(a - b, axis=axis),
        paired=True,
        vectorized=True,
        method="BCa",
        n_resamples=RESAMPLES,
        rng=np.random.default_rng([1, 2, 3]),
    ).confidence_interval
    assert (d.low, d.high) == (ci.low, ci.high)
    t = paired_difference(y1, y0)
    assert (d.estimate, d.p_value, d.pairs) == (t.estimate, t.p_value, 20)
    assert (d.low, d.high) != (t.low, t.high)


def test_the_same_seed_gives_the_same_interval() -> None:
    y1, y0, _ = _skewed_runs(np.random.default_rng(4), (12,))
    assert bootstrap_difference(y1, y0, seed=7) == bootstrap_difference(y1, y0, seed=7)
    assert bootstrap_difference(y1, y0, seed=7) != bootstrap_difference(y1, y0, seed=8)


def test_fallbacks_where_bca_is_undefined() -> None:
    # fewer than three pairs (a failed run's pair dropped): the paired t
    few = bootstrap_difference([1.0, 2.0, np.nan], [0.0, 0.5, 1.0])
    assert few == paired_difference([1.0, 2.0], [0.0, 0.5])
    assert few.pairs == 2
    one = bootstrap_difference([1.0], [0.0])
    assert one.estimate == 1.0
    assert math.isnan(one.low)
    assert math.isnan(one.high)
    assert bootstrap_difference([], []).pairs == 0
    # every difference equal: a zero-width interval at it
    same = bootstrap_difference([3.0, 4.0, 5.0, 6.0], [2.0, 3.0, 4.0, 5.0])
    assert (same.estimate, same.low, same.high) == (1.0, 1.0, 1.0)
    # one run of ten differs: BCa stays inside the range of the differences
    rare = bootstrap_difference([0.0] * 9 + [1.0], [0.0] * 10)
    assert 0.0 <= rare.low <= rare.estimate <= rare.high <= 1.0


@pytest.mark.slow
def test_bca_covers_a_known_difference_of_skewed_quantiles() -> None:
    # BCa reaches its level only with enough replications (output-analysis.md §3.2): at
    # 80 pairs it covers 0.945 here, so 3 standard errors of m macro-replications apply
    m, r = 500, 80
    y1, y0, truth = _skewed_runs(np.random.default_rng(20261201), (m, r))
    covered = [
        (d.low <= truth <= d.high)
        for d in (bootstrap_difference(y1[i], y0[i], seed=i, resamples=999) for i in range(m))
    ]
    assert abs(np.mean(covered) - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / m)


def _runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    y1, y0, _ = _skewed_runs(rng, (10,))
    runs = pd.DataFrame(
        {
            "point": [0] * 10 + [1] * 10,
            "replication": list(range(10)) * 2,
            "status": ["ok"] * 20,
            "latency_s.p90": [*y0, *y1],
            "delivery_rate": rng.uniform(0.9, 1.0, 20),
            "recipients": rng.integers(100, 200, 20),
            "status.expired": [0, 1] * 10,
        }
    )
    return runs, pd.DataFrame({"point": [0, 1], "x": [1, 2]})


def test_points_table_bootstraps_quantiles_beside_the_t() -> None:
    runs, params = _runs()
    points = point_table(runs, params, baseline=0, seed=11).set_index("point")
    y = runs.pivot(index="point", columns="replication", values="latency_s.p90").to_numpy()
    boot = bootstrap_difference(y[1], y[0], seed=[11, 1, zlib.crc32(b"latency_s.p90")])
    bounds = ["latency_s.p90.diff_boot_low", "latency_s.p90.diff_boot_high"]
    assert tuple(points.loc[1, bounds]) == (boot.low, boot.high)
    t = paired_difference(y[1], y[0])
    assert points.loc[1, "latency_s.p90.diff_low"] == t.low
    rate = runs.pivot(index="point", columns="replication", values="delivery_rate").to_numpy()
    assert points.loc[1, "delivery_rate.diff_low"] == paired_difference(rate[1], rate[0]).low
    assert "delivery_rate.diff_boot_low" not in points.columns
    again = point_table(runs, params, baseline=0, seed=11)
    pd.testing.assert_frame_equal(again.set_index("point"), points)
    other = point_table(runs, params, baseline=0, seed=12).set_index("point")
    assert other.loc[1, bounds[0]] != points.loc[1, bounds[0]]


def test_only_counts_of_events_get_runs_with_and_damage_columns() -> None:
    runs, params = _runs()
    columns = set(point_table(runs, params).columns)
    assert {"status.expired.runs_with", "status.expired.if_any_n"} <= columns
    assert not any(c.startswith("recipients.") and "runs_with" in c for c in columns)
    assert not any(c.startswith("recipients.if_any") for c in columns)
    assert "recipients.mean" in columns
