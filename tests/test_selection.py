"""Ranking and selection: the constants against published values, and the probability
of correct selection on normal points with known means, over fixed seeds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mailnet.sweep import sweep
from mailnet.sweep.backends import SweepError
from mailnet.sweep.selection import (
    Selection,
    decide,
    kn_constants,
    kn_screen,
    rinott_h,
)
from tests.conftest import ONE_MX_TOML, sweep_app


@pytest.mark.parametrize(
    ("k", "pcs", "n0", "h"),
    [
        # Bechhofer, Santner & Goldsman (1995) tables, as output-analysis.md §10 #10
        (10, 0.975, 51, 4.045),
        (1000, 0.9, 51, 5.488),
        (2, 0.95, 10, 2.614),
        (2, 0.95, 20, 2.452),
        (5, 0.95, 10, 3.693),
        (10, 0.95, 20, 3.875),
    ],
)
def test_rinott_h_matches_the_tables(k: int, pcs: float, n0: int, h: float) -> None:
    assert rinott_h(k, pcs, n0) == pytest.approx(h, abs=6e-4)


def test_kn_constants() -> None:
    eta, h2 = kn_constants(5, 10, 0.95)
    assert eta == pytest.approx(0.63497, abs=1e-5)
    assert h2 == pytest.approx(11.4294, abs=1e-4)


def run_selection(
    rng: np.random.Generator, means: np.ndarray, rho: float, selection: Selection
) -> tuple[int, int]:
    """One macro-replication on normal points (sd 1) sharing a common shock of
    correlation ``rho`` per replication (common random numbers): (selected, total runs)."""
    k, n0, maximum = len(means), 10, 2000
    shock = rng.standard_normal(maximum)
    noise = rng.standard_normal((k, maximum))
    data = means[:, None] + math.sqrt(rho) * shock + math.sqrt(1 - rho) * noise
    counts = dict.fromkeys(range(k), n0)
    while True:
        seen = np.full((k, max(counts.values())), np.nan)
        for p, n in counts.items():
            seen[p, :n] = data[p, :n]
        outcome = decide(seen, counts, selection, n0, maximum)
        if outcome.selected is not None:
            return outcome.selected, sum(counts.values())
        counts = outcome.counts


@pytest.mark.parametrize(
    ("procedure", "rho", "most_runs"),
    [
        pytest.param("kn", 0.0, 260, marks=pytest.mark.slow),
        ("kn", 0.8, 90),
        ("rinott", 0.0, 330),
    ],
)
def test_slippage_configuration_selects_the_best_often_enough(
    procedure: str, rho: float, most_runs: int
) -> None:
    # mu = (0.5, 0, 0, 0, 0), delta 0.5, PCS 0.95: nominal or better (KN about 0.97, 0.99;
    # Rinott 0.95, output-analysis.md §10 #12); M = 300 gives a standard error of
    # sqrt(0.95 * 0.05 / 300) = 0.0126: allow 3 of them below nominal
    rng = np.random.default_rng(20)
    means = np.array([0.5, 0.0, 0.0, 0.0, 0.0])
    selection = Selection("m", delta=0.5, pcs=0.95, procedure=procedure)
    results = [run_selection(rng, means, rho, selection) for _ in range(300)]
    pcs = np.mean([best == 0 for best, _ in results])
    assert pcs >= 0.95 - 3 * 0.0126
    # CRN pays under KN: about 164 runs independent, 53 correlated; Rinott about 276
    assert np.mean([runs for _, runs in results]) < most_runs


def test_minimize_selects_the_smallest() -> None:
    rng = np.random.default_rng(2)
    means = np.array([3.0, 1.0, 2.0])
    best, _ = run_selection(rng, means, 0.5, Selection("m", 0.5, minimize=True))
    assert best == 1


def test_identical_points_end_in_a_tie_not_a_loop() -> None:
    values = np.tile(np.arange(10, dtype=float), (3, 1))
    alive, eliminated, over = kn_screen(values, np.array([10, 10, 10]), 0.5, 0.95, 10)
    assert (alive, eliminated, over) == ([0, 1, 2], {}, True)
    counts = dict.fromkeys(range(3), 10)
    outcome = decide(values, counts, Selection("m", 0.5), 10, 100)
    assert outcome.selected == 0
    assert outcome.status == "selected"


def test_the_maximum_stops_an_undecided_selection() -> None:
    rng = np.random.default_rng(3)
    values = rng.standard_normal((2, 12)) * 10  # noisy, nearly equal: needs many runs
    outcome = decide(values, {0: 12, 1: 12}, Selection("m", 0.01), 10, 12)
    assert outcome.selected in (0, 1)
    assert outcome.status == "maximum reached"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"delta": 0.0}, "--indifference"),
        ({"delta": math.nan}, "--indifference"),
        ({"delta": 1.0, "pcs": 1.0}, "--pcs"),
        ({"delta": 1.0, "procedure": "nsgs"}, "--procedure"),
    ],
)
def test_bad_requests_are_refused(kwargs: dict, words: str) -> None:
    with pytest.raises(SweepError, match=words):
        Selection("m", **kwargs)


def _experiment(tmp_path: Path) -> Path:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML.replace('duration = "2h"', 'duration = "40m"'))
    (tmp_path / "exp.toml").write_text(
        'base = "base.toml"\nreplications = 2\nseed = 5\n'
        "[grid]\n'servers.\"mx.dest.example\".sessions' = [1, 2, 4]\n"
    )
    return tmp_path / "exp.toml"


@pytest.mark.slow
def test_a_sweep_selects_the_point_with_the_shortest_wait(tmp_path: Path) -> None:
    chosen = Selection("session_wait_s.mean", delta=1.0, minimize=True)
    result = sweep(
        _experiment(tmp_path),
        workers=1,
        out=tmp_path / "out",
        progress=False,
        select=chosen,
        max_replications=40,
        damage="legitimate_remote.queued_share",
    )
    entry = result.manifest["selection"]
    assert entry["procedure"] == "kn"
    assert entry["first_stage"] == 10
    assert entry["constants"]["h2"] == pytest.approx(kn_constants(3, 10, 0.95)[1])
    # one session makes mail wait; two or four hardly ever: within the indifference zone
    assert entry["selected_point"] in (1, 2)
    assert entry["eliminated_at"]["0"] >= 10
    points = result.points.set_index("point")
    assert points["selected"].sum() == 1
    assert points.loc[entry["selected_point"], "selected"]
    counts = result.runs.groupby("point").size()
    assert (counts == points["selection_replications"]).all()
    assert counts.min() >= 10
    # the damage asked for, given each counted event, beside the counts
    runs_with = points["status.in_queue.runs_with"] * counts
    assert (points["status.in_queue.if_any_n"] == runs_with.round()).all()
    assert "status.in_queue.if_none" in points.columns


def test_selection_options_are_checked_before_any_run(tmp_path: Path) -> None:
    experiment = str(_experiment(tmp_path))
    cases = [
        (["--select-best", "delivery_rate"], "--select-best needs --indifference"),
        (["--indifference", "0.1"], "--indifference needs --select-best"),
        (["--select-best", "delivery_rate", "--indifference", "-1"], "--indifference"),
        (["--select-best", "x", "--indifference", "1", "--pcs", "1.5"], "--pcs"),
        (["--select-best", "x", "--indifference", "1", "--precision", "0.1"], "together"),
        (["--damage", "nope"], "--damage: no summary metric"),
    ]
    for options, words in cases:
        out = str(tmp_path / "never")
        result = CliRunner().invoke(sweep_app(), ["sweep", experiment, "--out", out, *options])
        assert result.exit_code == 2, result.output
        assert words in result.output
        assert not (tmp_path / "never" / "parts").exists()
