"""Sweeps that keep their runs' tables (``--keep-tables``): each worker streams its run's
tables into the run's directory as the run goes, and the files are those the run kept in
memory would have written; a run stopped half-way is never counted as done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mailnet import load_scenario, simulate
from mailnet.output import write_run
from mailnet.sweep import load_experiment, store, sweep, worker
from mailnet.sweep.deadline import RunTimeout
from mailnet.sweep.runner import _plan
from mailnet.sweep.worker import KeptTables, run_one

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/scenario.toml"
TABLES = ("messages", "attempts", "queues", "reputation", "listings", "suspensions", "changes")
WALL = ["wall_time_s"]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """The golden world swept over two replications, its tables kept."""
    folder = tmp_path_factory.mktemp("golden_sweep")
    (folder / "exp.toml").write_text(f'base = "{GOLDEN}"\nreplications = 2\nseed = 3\n')
    result = sweep(folder / "exp.toml", workers=1, out=folder / "out", keep_tables=True)
    return folder, result


def test_kept_tables_are_the_files_of_the_run_kept_in_memory(golden, tmp_path):
    folder, result = golden
    assert (result.runs["status"] == "ok").all()
    scenario = load_scenario(GOLDEN)
    for replication, seed in enumerate(result.runs["seed"]):
        run = folder / "out" / "runs" / f"0-{replication}"
        kept = write_run(simulate(scenario, seed=int(seed)), tmp_path / f"kept-{replication}")
        for name in TABLES:
            a, b = kept / f"{name}.parquet", run / f"{name}.parquet"
            assert a.read_bytes() == b.read_bytes(), (replication, name)
        assert (kept / "scenario.toml").read_text() == (run / "scenario.toml").read_text()
        # the summary is folded as the run goes, as in mailnet run and a summary-only run
        lean = simulate(scenario, seed=int(seed), summary_only=True)
        assert json.loads((run / "summary.json").read_text()) == json.loads(
            json.dumps(lean.summary)
        )
    assert sorted(p.name for p in (folder / "out" / "runs").iterdir()) == [
        ".sweep-id",
        "0-0",
        "0-1",
    ]


def test_a_sweep_keeping_tables_has_the_runs_of_one_keeping_none(golden):
    folder, result = golden
    lean = sweep(folder / "exp.toml", workers=1, out=folder / "lean")
    pd.testing.assert_frame_equal(lean.runs.drop(columns=WALL), result.runs.drop(columns=WALL))
    assert not (folder / "lean" / "runs").exists()


def test_a_worker_not_seeing_the_results_sends_the_tables_back(golden, monkeypatch):
    # a worker on another machine without the shared directory: the sweep writes them
    folder, result = golden
    monkeypatch.setattr(KeptTables, "shared", lambda self: False)
    out = folder / "remote"
    sent = sweep(folder / "exp.toml", workers=1, out=out, keep_tables=True)
    pd.testing.assert_frame_equal(sent.runs.drop(columns=WALL), result.runs.drop(columns=WALL))
    for replication in range(2):
        for name in TABLES:
            a = folder / "out" / "runs" / f"0-{replication}" / f"{name}.parquet"
            b = out / "runs" / f"0-{replication}" / f"{name}.parquet"
            pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))


def test_a_run_stopped_half_way_leaves_nothing_counted_as_done(golden, tmp_path, monkeypatch):
    folder, _ = golden
    out = tmp_path / "out"
    shutil.copytree(folder / "out", out)
    shutil.rmtree(out / "runs" / "0-1")
    (out / "parts" / "0-1.json").unlink()
    experiment = load_experiment(folder / "exp.toml")
    (spec,) = [s for s in _plan(experiment, 3600.0, {0: 2}) if s.replication == 1]
    streamed = []

    def stopped(result, stage):  # its time limit ends it once its tables have streamed
        streamed.extend(p.name for p in stage.iterdir())
        raise RunTimeout

    with monkeypatch.context() as patch:
        patch.setattr(worker, "write_run", stopped)
        outcome = run_one(spec, KeptTables(str(out), store.keep_tables_in(out)))
    assert outcome.record["status"] == "failed"
    assert outcome.record["retry"]
    assert outcome.result is None
    assert "messages.parquet" in streamed
    assert sorted(p.name for p in (out / "runs").iterdir()) == [".sweep-id", "0-0"]
    # a worker killed half-way leaves its staging directory: removed, the run done again
    (out / "runs" / ".0-1.new12345").mkdir()
    (out / "runs" / ".0-1.new12345" / "messages.parquet").write_bytes(b"PAR1")
    again = sweep(folder / "exp.toml", workers=1, out=out, keep_tables=True, resume=True)
    assert again.manifest["runs"]["reused"] == 1
    assert sorted(p.name for p in (out / "runs").iterdir()) == [".sweep-id", "0-0", "0-1"]
    for name in TABLES:
        a = folder / "out" / "runs" / "0-1" / f"{name}.parquet"
        assert a.read_bytes() == (out / "runs" / "0-1" / f"{name}.parquet").read_bytes()


@pytest.mark.slow
def test_dask_workers_stream_the_tables_into_the_shared_directory(golden, tmp_path):
    distributed = pytest.importorskip("distributed")
    folder, result = golden
    out = tmp_path / "dask"
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(tmp_path / "cluster"),
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = sweep(folder / "exp.toml", client=client, out=out, keep_tables=True)
    pd.testing.assert_frame_equal(on_dask.runs.drop(columns=WALL), result.runs.drop(columns=WALL))
    for replication in range(2):
        for name in TABLES:
            a = folder / "out" / "runs" / f"0-{replication}" / f"{name}.parquet"
            b = out / "runs" / f"0-{replication}" / f"{name}.parquet"
            assert a.read_bytes() == b.read_bytes(), (replication, name)
