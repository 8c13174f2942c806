"""The cumulative incidence of delivery: hand-computed cases, the no-censoring limit,
and censored samples from known distributions (tolerances from the sample size)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mailnet.survival import (
    CENSORED,
    DELIVERED,
    OTHER,
    cumulative_incidence,
    kaplan_meier,
)


def test_hand_computed_case() -> None:
    # t=1 delivered (n=6); t=2 one delivered and one censored (n=5); t=3 bounced (n=3);
    # t=4 delivered (n=2); t=5 censored
    times = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    events = np.array([DELIVERED, CENSORED, DELIVERED, OTHER, DELIVERED, CENSORED])
    inc = cumulative_incidence(times, events)
    assert inc.times.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert inc.at_risk.tolist() == [6, 5, 3, 2]
    # F jumps by S(t-) d/n: 1/6, 5/6 * 1/5, 0, 4/9 * 1/2
    assert inc.incidence == pytest.approx([1 / 6, 2 / 6, 2 / 6, 5 / 9])
    assert inc.at([0.5, 1.0, 2.5, 10.0]).tolist() == pytest.approx([0, 1 / 6, 1 / 3, 5 / 9])
    assert inc.quantile(1 / 6) == 1.0
    assert inc.quantile(0.5) == 4.0
    assert inc.quantile(0.6) is None  # only 5/9 is ever delivered
    assert (inc.delivered, inc.other, inc.censored, inc.rows) == (3, 1, 2, 6)
    assert inc.final == pytest.approx(5 / 9)


def test_variance_of_the_first_step_is_binomial() -> None:
    # before any censoring F(t) is a binomial share: variance F (1 - F) / n
    inc = cumulative_incidence(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 2, 1, 0]))
    assert inc.variance[0] == pytest.approx(0.25 * 0.75 / 4)
    assert inc.variance[1] == pytest.approx(0.25 * 0.75 / 4)
    assert inc.variance[2] == pytest.approx(0.5 * 0.5 / 4)


def test_without_censoring_it_is_the_share_delivered_by_t() -> None:
    rng = np.random.default_rng(3)
    times = rng.exponential(1.0, 500).round(2)  # ties on purpose
    events = np.where(rng.random(500) < 0.8, DELIVERED, OTHER)
    inc = cumulative_incidence(times, events)
    grid = np.array([0.1, 0.5, 1.0, 2.0, 10.0])
    expected = [((times <= t) & (events == DELIVERED)).mean() for t in grid]
    assert inc.at(grid) == pytest.approx(expected, abs=1e-12)


def test_kaplan_meier_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    times = rng.exponential(1.0, 300)
    events = rng.choice([CENSORED, DELIVERED, OTHER], 300)
    grid, survival = kaplan_meier(times, events)
    reference = stats.ecdf(stats.CensoredData.right_censored(times, events == CENSORED))
    assert survival == pytest.approx(reference.sf.evaluate(grid))


def test_exponential_latency_with_independent_censoring() -> None:
    # T ~ Exp(1), C ~ Exp(3/7): 30 % censored; the median estimate's sd is about
    # 0.078 at n = 200 (output-analysis.md §10 #6), so 0.0156 at n = 5000: 4 sd
    rng = np.random.default_rng(11)
    n = 5000
    latency = rng.exponential(1.0, n)
    censor = rng.exponential(7 / 3, n)
    times = np.minimum(latency, censor)
    events = np.where(latency <= censor, DELIVERED, CENSORED)
    inc = cumulative_incidence(times, events)
    assert inc.quantile(0.5) == pytest.approx(math.log(2), abs=4 * 0.078 * math.sqrt(200 / n))
    for t in (0.2, 0.7, 1.5):
        sd = math.sqrt(float(inc.variance[np.searchsorted(inc.times, t, side="right") - 1]))
        assert abs(inc.at(t) - (1 - math.exp(-t))) < 4 * sd
    # the events-only median, which ignores the queued mail, is far below
    assert np.median(times[events == DELIVERED]) < math.log(2) - 0.15


def test_competing_ends_are_not_censoring() -> None:
    # delivered with rate 1, bounced with rate 0.5: F(t) = (1 - e^{-1.5 t}) / 1.5;
    # censoring at rate 0.3; p90 is undefined since only 2/3 is ever delivered
    rng = np.random.default_rng(5)
    n = 4000
    end = rng.exponential(1 / 1.5, n)
    kind = np.where(rng.random(n) < 1 / 1.5, DELIVERED, OTHER)
    censor = rng.exponential(1 / 0.3, n)
    times = np.minimum(end, censor)
    events = np.where(end <= censor, kind, CENSORED)
    inc = cumulative_incidence(times, events)
    for t in (0.3, 1.0, 3.0):
        truth = (1 - math.exp(-1.5 * t)) / 1.5
        sd = math.sqrt(float(inc.variance[np.searchsorted(inc.times, t, side="right") - 1]))
        assert abs(inc.at(t) - truth) < 4 * sd
    assert inc.quantile(0.9) is None
    assert inc.quantile(0.5) == pytest.approx(-math.log(1 - 0.75) / 1.5, rel=0.1)
    # 1 - KM with bounces censored describes a world without bounces: too high
    grid, survival = kaplan_meier(times, np.where(events == OTHER, CENSORED, events))
    naive = 1 - survival[np.searchsorted(grid, 3.0, side="right") - 1]
    assert naive > inc.at(3.0) + 0.2


def test_band_covers_at_the_nominal_rate() -> None:
    # M = 400 samples: coverage 0.95 +- 3 sqrt(0.95 * 0.05 / 400) = +- 0.033
    rng = np.random.default_rng(7)
    t0, truth, hits, m = 0.5, (1 - math.exp(-0.75)) / 1.5, 0, 400
    for _ in range(m):
        end = rng.exponential(1 / 1.5, 200)
        kind = np.where(rng.random(200) < 1 / 1.5, DELIVERED, OTHER)
        censor = rng.exponential(1 / 0.3, 200)
        events = np.where(end <= censor, kind, CENSORED)
        low, high = cumulative_incidence(np.minimum(end, censor), events).band(t0)
        hits += low <= truth <= high
    assert abs(hits / m - 0.95) < 0.033


def test_empty_and_all_censored() -> None:
    empty = cumulative_incidence(np.array([]), np.array([], dtype=int))
    assert empty.final == 0.0
    assert empty.quantile(0.5) is None
    assert empty.rows == 0
    queued = cumulative_incidence(np.array([1.0, 2.0]), np.array([CENSORED, CENSORED]))
    assert queued.times.size == 0
    assert queued.at(5.0) == 0.0
    assert queued.censored == 2


@pytest.mark.parametrize(
    ("times", "events"),
    [([1.0, -1.0], [1, 1]), ([1.0, math.nan], [1, 1]), ([1.0], [3]), ([1.0, 2.0], [1])],
)
def test_bad_arrays_are_refused(times: list[float], events: list[int]) -> None:
    with pytest.raises(ValueError, match=r"times|event"):
        cumulative_incidence(np.array(times), np.array(events))


def test_within_is_unknown_past_the_follow_up_while_rows_are_open() -> None:
    inc = cumulative_incidence(np.array([1.0, 2.0, 3.0]), np.array([DELIVERED, OTHER, CENSORED]))
    assert inc.within(3.0) == pytest.approx(1 / 3)
    assert inc.within(3.5) is None
    ended = cumulative_incidence(np.array([1.0, 2.0]), np.array([DELIVERED, OTHER]))
    assert ended.within(100.0) == pytest.approx(0.5)
