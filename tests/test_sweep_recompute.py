"""Recomputing a finished sweep's points: ``--resume`` on results kept without their part
files rebuilds points.parquet and the manifest from runs.parquet, running nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mailnet.sweep import SweepError, load_experiment, store, sweep
from mailnet.sweep import runner as sweep_runner
from mailnet.sweep.stats import point_table

REPRODUCE = Path(__file__).resolve().parent / "reproduce"
EXPERIMENT = REPRODUCE / "experiment.toml"


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The committed reproduction result as results are kept (no parts/), with a stale
    points table; opening a backend (running anything) fails the test."""
    out = tmp_path / "result"
    shutil.copytree(REPRODUCE / "result", out)
    pd.DataFrame({"point": [0], "stale": [1.0]}).to_parquet(out / "points.parquet")

    def no_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a recompute must not run anything")

    monkeypatch.setattr(sweep_runner, "open_backend", no_runs)
    return out


def test_resume_recomputes_the_points_of_kept_results(kept: Path) -> None:
    runs_before = (kept / "runs.parquet").read_bytes()
    result = sweep(EXPERIMENT, workers=1, out=kept, resume=True, progress=False)
    runs = pd.read_parquet(kept / "runs.parquet")
    pd.testing.assert_frame_equal(
        runs, pd.read_parquet(REPRODUCE / "result" / "runs.parquet"), check_exact=True
    )
    assert (kept / "runs.parquet").read_bytes() == runs_before
    experiment = load_experiment(EXPERIMENT)
    expected = point_table(runs, store.params_frame(experiment), seed=experiment.seed)
    pd.testing.assert_frame_equal(pd.read_parquet(kept / "points.parquet"), expected)
    assert "stale" not in result.points.columns
    manifest = json.loads((kept / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "complete"
    assert manifest["runs"] == {"total": 8, "ok": 8, "failed": 0, "missing": 0, "reused": 8}
    assert len(store.read_parts(kept)) == 8


def test_restored_parts_give_back_the_same_runs_table(kept: Path) -> None:
    experiment = load_experiment(EXPERIMENT)
    assert store.restore_parts(kept, experiment) == 8
    assert store.restore_parts(kept, experiment) == 0  # parts present: left alone
    records = list(store.read_parts(kept).values())
    pd.testing.assert_frame_equal(
        store.runs_frame(experiment, records),
        pd.read_parquet(kept / "runs.parquet"),
        check_exact=True,
    )


def test_resume_refuses_kept_results_of_another_experiment(kept: Path, tmp_path: Path) -> None:
    text = EXPERIMENT.read_text(encoding="utf-8").replace("seed = 11", "seed = 12")
    other = tmp_path / "other.toml"
    other.write_text(text.replace('base = "base.toml"', f'base = "{REPRODUCE / "base.toml"}"'))
    with pytest.raises(SweepError, match=r"runs\.parquet: comes from a different experiment"):
        sweep(other, workers=1, out=kept, resume=True, progress=False)
    assert not (kept / "parts").exists()
