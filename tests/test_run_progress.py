"""The progress bar of a long run: running in slices gives the very same tables, the
callback sees simulated time and messages grow to the run's totals, and the bar shows only
on a terminal, after its delay, and never with --quiet."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.run_progress import CountingEnvironment, RunProgress
from mailnet.scenario import load_scenario
from mailnet.simulate import PROGRESS_SLICES, RunResult, simulate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "scenario.toml"


@pytest.fixture(scope="module")
def plain() -> RunResult:
    return simulate(load_scenario(GOLDEN))


def test_slices_change_nothing(plain: RunResult) -> None:
    seen: list[tuple[float, int]] = []
    env = CountingEnvironment()
    sliced = simulate(
        load_scenario(GOLDEN), environment=env, progress=lambda t, n: seen.append((t, n))
    )
    for name, table in plain.tables().items():
        pd.testing.assert_frame_equal(sliced.tables()[name], table, obj=name)
    assert sliced.summary == plain.summary
    times = [t for t, _ in seen]
    counts = [n for _, n in seen]
    assert len(seen) == PROGRESS_SLICES
    assert times == sorted(set(times))
    assert times[-1] == plain.scenario.simulation.duration
    assert counts == sorted(counts)
    assert counts[-1] == plain.messages["message_id"].nunique()
    assert env.processed > counts[-1]


def test_the_bar_waits_for_its_delay_and_goes_away() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    env = CountingEnvironment()
    waiting = RunProgress(3600.0, env, console=console, delay_s=3600.0)
    waiting(1800.0, 10)
    assert not waiting.shown
    bar = RunProgress(3600.0, env, console=console, delay_s=0.0)
    bar(1800.0, 1234)
    assert bar.shown
    bar.close()
    text = out.getvalue()
    assert "30 min of 1 h" in text
    assert "1,234 messages" in text
    assert "events/s" in text
    disabled = RunProgress(3600.0, env, console=console, delay_s=0.0, enabled=False)
    disabled(1800.0, 10)
    assert not disabled.shown


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    for extra in ([], ["--quiet"]):
        out = tmp_path / f"run{len(extra)}"
        result = CliRunner().invoke(app, ["run", str(GOLDEN), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert "simulating" not in result.output
