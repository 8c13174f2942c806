"""The cohort's incidence of delivery in fixed bins (``sketch.IncidenceBins``) against the
exact Aalen-Johansen estimate (``survival.cumulative_incidence``) of the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from mailnet.cohort import WITHIN
from mailnet.sketch import RELATIVE_ACCURACY, IncidenceBins, _bins
from mailnet.survival import CENSORED, DELIVERED, OTHER, cumulative_incidence

ANCHORS = tuple(t for _, t in WITHIN)
ROUNDING = 1e-12
"""The same incidence summed in another order (bins against single rows)."""


def _rows(n: int, censored: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latencies from a second to days, a tenth of them other ends, a share censored;
    some at 0 and some exactly at an anchor."""
    rng = np.random.default_rng(seed)
    times = rng.lognormal(6.0, 2.5, n)
    times[:20] = 0.0
    times[20:40] = rng.choice(ANCHORS, 20)
    u = rng.random(n)
    events = np.where(u < censored, CENSORED, np.where(u < censored + 0.1, OTHER, DELIVERED))
    return times, events


def _binned(times: np.ndarray, events: np.ndarray) -> IncidenceBins:
    bins = IncidenceBins(ANCHORS)
    for e, t in zip(events.tolist(), times.tolist(), strict=True):
        bins.add(e, t)
    return bins


def _censored_at_bin_tops(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    bounds = np.array(_bins(ANCHORS)[0])
    tops = bounds[np.minimum(np.searchsorted(bounds, times), len(bounds) - 1)]
    return np.where(events == CENSORED, tops, times)


def test_without_censoring_the_bins_give_the_exact_incidence_at_every_anchor():
    times, events = _rows(20_000, censored=0.0, seed=1)
    exact = cumulative_incidence(times, events)
    got = _binned(times, events).incidence()
    for t in ANCHORS:
        assert got.within(t) == pytest.approx(exact.within(t), abs=ROUNDING)
    for q in (0.1, 0.5, 0.8):
        assert got.quantile(q) == pytest.approx(exact.quantile(q), rel=RELATIVE_ACCURACY)
    assert (got.delivered, got.other, got.censored) == (exact.delivered, exact.other, 0)
    assert got.final == pytest.approx(exact.final, abs=ROUNDING)


@pytest.mark.parametrize("seed", [2, 3])
def test_with_censoring_the_bins_count_ends_before_censorings(seed):
    """Each censored row counts at the top of its bin: at every bound the bins give the
    exact incidence of the rows so moved, and quantiles within the bins' accuracy."""
    times, events = _rows(20_000, censored=0.3, seed=seed)
    moved = cumulative_incidence(_censored_at_bin_tops(times, events), events)
    got = _binned(times, events).incidence()
    bounds = np.array(_bins(ANCHORS)[0])
    tested = bounds[(bounds > 0) & (bounds < times.max())][::25]
    assert got.at(tested) == pytest.approx(moved.at(tested), abs=ROUNDING)
    for t in ANCHORS:
        assert got.within(t) == pytest.approx(moved.within(t), abs=ROUNDING)
    for q in (0.1, 0.3, 0.5):
        assert got.quantile(q) == pytest.approx(moved.quantile(q), rel=RELATIVE_ACCURACY)
    assert got.follow_up == times.max()
    exact = cumulative_incidence(times, events)
    # the move is less than 1 % of a time: the estimate barely changes
    assert got.within(3600.0) == pytest.approx(exact.within(3600.0), abs=0.01)


def test_the_bins_hold_the_same_memory_for_any_number_of_rows():
    few, many = _binned(*_rows(100, 0.2, 4)), _binned(*_rows(50_000, 0.2, 5))
    assert len(few._counts) == len(many._counts) < 12_000
    assert few.incidence().rows == 100
    assert many.incidence().rows == 50_000
