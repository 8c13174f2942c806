"""The cohort's incidence of delivery in fixed bins (``sketch.IncidenceBins``) against the
exact Aalen-Johansen estimate (``survival.cumulative_incidence``) of the same rows, and a
summary-only run's cohort blocks once past the rows it keeps one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mailnet import cohort, load_scenario, simulate
from mailnet.cohort import WITHIN
from mailnet.metrics import flatten
from mailnet.sketch import RELATIVE_ACCURACY, IncidenceBins, _bins
from mailnet.survival import CENSORED, DELIVERED, OTHER, cumulative_incidence

ROOT = Path(__file__).resolve().parent.parent

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


def _bin_tops(times: np.ndarray) -> np.ndarray:
    """The upper bound of each time's bin (the largest bound past the last)."""
    bounds = np.array(_bins(ANCHORS)[0])
    return bounds[np.minimum(np.searchsorted(bounds, times), len(bounds) - 1)]


def _censored_at_bin_tops(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    return np.where(events == CENSORED, _bin_tops(times), times)


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


def test_adding_many_rows_at_once_counts_them_as_one_by_one():
    times, events = _rows(5000, censored=0.2, seed=6)
    times[:5] = [1e-9, 1e-6, 2e9, 60.0, 86400.0]  # under the smallest bin, over the largest
    many = IncidenceBins(ANCHORS)
    many.add_many(events, times)
    one = _binned(times, events)
    assert many._counts == one._counts
    assert many.follow_up == one.follow_up


def _binned_cohort(full) -> dict:
    """The cohort blocks of ``full``'s tables with each censored row moved to the top of
    its bin: what the bins estimate (ends count before censorings in a bin)."""
    scenario = full.scenario
    sim = scenario.simulation
    start, end = cohort.window(sim, cohort.queue_lifetime(scenario))
    mail = full.messages[~full.messages["is_dsn"]]
    created = mail["created_at"].to_numpy(dtype=float)
    rows = mail[(created >= start) & (created < end)]
    kind = cohort.outcomes(rows)
    times = cohort._follow_up(kind, cohort.end_times(rows, full.attempts), rows, sim.duration)
    times = np.where((kind == "held") | (kind == "in_queue"), _bin_tops(times), times)
    masks = cohort.groups(rows, scenario)
    return flatten({name: cohort._block(kind[m], times[m]) for name, m in masks.items()})


def test_a_summary_only_cohort_past_its_exact_rows_is_counted_in_bins(monkeypatch):
    """With ``EXACT_ROWS`` lowered to 100, the cohort of a world with mail still queued
    at the end switches to bins: counts as the tables', quantiles within the bins'
    accuracy and ``delivered_within`` the same up to rounding, censored rows moved to
    the top of their bin."""
    scenario = load_scenario(
        ROOT / "experiments/scenarios/shared_ip_spam.toml",
        overrides=["simulation.duration=4h", "simulation.warmup=1h"],
    )
    full = simulate(scenario)
    switched = []
    count_in_bins = cohort.CohortFold._count_in_bins
    monkeypatch.setattr(cohort, "EXACT_ROWS", 100)
    monkeypatch.setattr(
        cohort.CohortFold, "_count_in_bins", lambda f: switched.append(count_in_bins(f))
    )
    lite = flatten(simulate(scenario, summary_only=True).summary)
    assert switched == [None]
    expected = _binned_cohort(full)
    assert expected["legitimate_remote.in_queue"] > 10  # censored rows to move
    for key, value in expected.items():
        got = lite[key]
        if value is None or isinstance(value, int):
            assert got == value, key
        elif ".latency_s." in key:
            assert got == pytest.approx(value, rel=RELATIVE_ACCURACY), key
        else:
            assert got == pytest.approx(value, rel=ROUNDING, abs=ROUNDING), key
