"""``mailnet compare``: runs side by side, and sweep points with paired intervals that
match SciPy's paired t test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.compare import compare, difference, format_difference, load_side
from tests.views_world import SMALL

SEEDS = [11, 12, 13, 14]
A_RATE = np.array([0.90, 0.80, 0.85, 0.95])
B_RATE = np.array([0.93, 0.86, 0.86, 0.99])


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """A sweep directory with two points of four replications on the same seeds."""
    runs = pd.DataFrame(
        {
            "point": [0] * 4 + [1] * 4,
            "label": ["shared"] * 4 + ["by class"] * 4,
            "providers.isp.pool_strategy": ["shared"] * 4 + ["by-class"] * 4,
            "replication": list(range(4)) * 2,
            "seed": SEEDS * 2,
            "status": "ok",
            "delivery_rate": np.concatenate([A_RATE, B_RATE]),
            "latency_s.p90": [60.0, 70.0, 80.0, 90.0, 30.0, 40.0, 50.0, 60.0],
        }
    )
    points = runs.groupby(["point", "label", "providers.isp.pool_strategy"], as_index=False)[
        "delivery_rate"
    ].mean()
    out = tmp_path / "sweep"
    out.mkdir()
    runs.to_parquet(out / "runs.parquet")
    points.to_parquet(out / "points.parquet")
    return out


def test_paired_interval_is_scipys(sweep_dir: Path) -> None:
    a, b = load_side(f"{sweep_dir}@shared"), load_side(f"{sweep_dir}@1")
    assert a.seeds == b.seeds == tuple(SEEDS)
    (rate,) = [d for d in compare(a, b) if d.metric == "delivery_rate"]
    expected = stats.ttest_rel(B_RATE, A_RATE).confidence_interval(0.95)
    assert rate.method == "paired"
    assert rate.diff == pytest.approx((B_RATE - A_RATE).mean())
    assert (rate.low, rate.high) == pytest.approx((expected.low, expected.high))


def test_unpaired_sides_get_welchs_interval() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])
    found = difference("attempts_per_remote_recipient", a, b, paired=False)
    expected = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert found.method == "welch"
    assert (found.low, found.high) == pytest.approx((expected.low, expected.high))


def test_differences_are_written_in_their_unit() -> None:
    assert format_difference("delivery_rate", 0.055) == "+5.5 pp"
    assert format_difference("latency_s.p90", -3120.0) == "-52 min"
    assert format_difference("messages", 0.0) == "0"


def test_compare_command_on_sweep_points(sweep_dir: Path, tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            f"{sweep_dir}@providers.isp.pool_strategy=shared",
            f"{sweep_dir}@by class",
            "--out",
            str(figures),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "paired over 4 replications" in result.output
    assert "-30 s" in result.output  # p90 latency: every pair 30 s shorter
    assert "± 0 s" in result.output
    for name in ("compare_sides", "compare_differences"):
        assert (figures / f"{name}.png").stat().st_size > 0
        assert (figures / f"{name}.svg").is_file()


def test_compare_command_on_two_runs(tmp_path: Path) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    runner = CliRunner()
    for name, extra in (("a", []), ("b", ["--set", 'servers."mx1.dest.example".outages=[]'])):
        args = ["run", str(scenario), "--out", str(tmp_path / name), "--quiet", *extra]
        assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "One value per side" in result.output
    assert "deferral rate" in result.output
    assert "-42.9 pp" in result.output  # A: 3 of 7 remote recipients deferred; B: none


@pytest.mark.parametrize(
    ("side", "problem"),
    [
        ("nowhere", "no such run or sweep directory"),
        ("{sweep}", "a sweep directory: name a point"),
        ("{sweep}@7", "no single point '7'"),
        ("{sweep}@colour=red", "colour: not a swept key"),
    ],
)
def test_compare_refuses_bad_sides(sweep_dir: Path, side: str, problem: str) -> None:
    result = CliRunner().invoke(app, ["compare", side.format(sweep=sweep_dir), str(sweep_dir)])
    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output
