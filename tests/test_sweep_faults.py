"""Sweeps that survive faults: killed workers, hanging runs, two sweeps on one directory,
changed inputs on resume, SIGTERM and a killed sweep leaving no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet.sweep import SweepError, runner, store, sweep, worker
from mailnet.sweep.deadline import RunTimeout, deadline
from tests import faulty_runs
from tests.conftest import ONE_MX_TOML, sweep_app
from tests.test_sweep import _wait_for_parts

EXPERIMENT = textwrap.dedent("""
    base = "base.toml"
    replications = 3
    seed = 3
    [grid]
    'servers."mx.dest.example".sessions' = [1, 3]
""")
N_RUNS = 2 * 3
WALL = ["wall_time_s"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    (folder / "base.toml").write_text(ONE_MX_TOML)
    (folder / "exp.toml").write_text(EXPERIMENT)
    return folder


@pytest.fixture(scope="module")
def reference(folder: Path) -> pd.DataFrame:
    result = sweep(folder / "exp.toml", workers=1, out=folder / "reference", progress=False)
    return result.runs.drop(columns=WALL)


def _experiment(tmp_path: Path) -> Path:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    return tmp_path / "exp.toml"


# ------------------------------------------------------------------ deadline
def test_deadline_interrupts_a_loop_in_any_thread() -> None:
    caught: list[str] = []

    def spin() -> None:
        try:
            with deadline(0.2):
                while True:
                    time.sleep(0.005)
        except RunTimeout:
            caught.append(threading.current_thread().name)

    thread = threading.Thread(target=spin, name="pool-thread")
    thread.start()
    thread.join(timeout=10)
    assert caught == ["pool-thread"]

    def busy() -> None:
        with deadline(0.2):
            while True:
                sum(range(50))

    with pytest.raises(RunTimeout):
        busy()


def test_deadline_never_fires_after_its_block() -> None:
    overran = 0
    for _ in range(200):
        try:
            with deadline(0.002):
                time.sleep(0.0015)
        except RunTimeout:  # the block overran its limit (a loaded machine): allowed
            overran += 1
    time.sleep(0.05)  # a stray exception, set after its block, would be raised here
    assert overran < 200


# ------------------------------------------------------------------ killed workers
def test_a_worker_killed_once_is_survived_and_results_are_unchanged(
    tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run_chunk", faulty_runs.killed_once)
    result = sweep(_experiment(tmp_path), workers=2, out=tmp_path / "out", progress=False)
    assert (tmp_path / "killed-1-0").exists()  # the worker really died once
    assert result.status == "complete"
    pd.testing.assert_frame_equal(result.runs.drop(columns=WALL), reference)


def test_a_run_that_always_kills_its_worker_is_failed_with_the_reason(
    tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run_chunk", faulty_runs.killed_always)
    result = sweep(
        _experiment(tmp_path), workers=2, out=tmp_path / "out", progress=False, max_attempts=2
    )
    runs = result.runs.set_index(["point", "replication"])
    victim = runs.loc[faulty_runs.VICTIM]
    assert victim["status"] == "failed"
    assert "lost 2 times" in victim["error"]
    assert "BrokenProcessPool" in victim["error"]
    assert (runs["status"] == "ok").sum() == N_RUNS - 1
    ok = result.runs["status"] == "ok"
    victim_row = (reference["point"] == faulty_runs.VICTIM[0]) & (
        reference["replication"] == faulty_runs.VICTIM[1]
    )
    pd.testing.assert_frame_equal(
        result.runs[ok].drop(columns=[*WALL, "error"]).reset_index(drop=True),
        reference[~victim_row].drop(columns="error").reset_index(drop=True),
        check_dtype=False,
    )
    # the failure is recorded: resuming does not run it again
    again = sweep(
        tmp_path / "exp.toml", workers=1, out=tmp_path / "out", resume=True, progress=False
    )
    assert again.manifest["runs"]["failed"] == 1
    assert again.manifest["runs"]["reused"] == N_RUNS


# ------------------------------------------------------------------ hanging runs
def test_a_hanging_run_is_retried_then_failed_and_the_sweep_finishes(
    tmp_path: Path, reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = worker.simulate
    calls: list[int] = []

    def hangs_for_one_seed(scenario, *, seed, **kwargs):  # type: ignore[no-untyped-def]
        if seed == reference.loc[0, "seed"] and len(calls) < 10:
            calls.append(seed)
            while True:  # a model stuck at one instant
                time.sleep(0.001)
        return real(scenario, seed=seed, **kwargs)

    monkeypatch.setattr(worker, "simulate", hangs_for_one_seed)
    result = sweep(
        _experiment(tmp_path),
        workers=1,
        out=tmp_path / "out",
        progress=False,
        # far above a normal run's second even on a loaded machine, and still short
        run_timeout=3.0,
        max_attempts=2,
    )
    # one seed is shared by replication 0 of both points: each hung twice, then failed
    failed = result.runs[result.runs["status"] == "failed"]
    assert len(calls) == 2 * len(failed) == 4
    assert set(failed["replication"]) == {0}
    assert failed["error"].str.contains("--run-timeout 3 s").all()
    ok = result.runs[result.runs["status"] == "ok"].drop(columns=WALL).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        ok.drop(columns="error"),
        reference[reference["replication"] != 0].drop(columns="error").reset_index(drop=True),
        check_dtype=False,
    )


# ------------------------------------------------------------------ the results directory
def test_a_second_sweep_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    out = tmp_path / "out"
    with store.locked(out):
        with pytest.raises(SweepError, match=r"another sweep \(process \d+\) is writing there"):
            sweep(experiment, workers=1, out=out, progress=False)
        result = CliRunner().invoke(
            sweep_app(), ["sweep", str(experiment), "--workers", "1", "--out", str(out)]
        )
        assert result.exit_code == 2
        assert "another sweep" in result.output
    assert not (out / "runs.parquet").exists()
    assert sweep(experiment, workers=1, out=out, progress=False).status == "complete"


def test_a_foreign_directory_or_a_file_is_never_written(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SweepError, match="not a sweep's results directory"):
        sweep(experiment, workers=1, out=mine, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    with pytest.raises(SweepError, match="is not a directory"):
        sweep(experiment, workers=1, out=mine / "notes.txt", progress=False)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_resume_refuses_a_changed_trace_file(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("at,sender,recipients\n10,0,u1@dest.example\n")
    base = ONE_MX_TOML.replace('rate = "30/h"', 'trace = "trace.csv"')
    assert 'trace = "trace.csv"' in base
    (tmp_path / "base.toml").write_text(base)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    out = tmp_path / "out"
    sweep(tmp_path / "exp.toml", workers=1, out=out, progress=False)
    assert sweep(tmp_path / "exp.toml", workers=1, out=out, resume=True, progress=False)
    trace.write_text("at,sender,recipients\n20,0,u1@dest.example\n")
    with pytest.raises(SweepError, match="trace files changed"):
        sweep(tmp_path / "exp.toml", workers=1, out=out, resume=True, progress=False)


# ------------------------------------------------------------------ signals
def _start(folder: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailnet.cli",
            "sweep",
            "exp.toml",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: every process it starts is in it
    )


def _group_gone(pgid: int, within: float) -> bool:
    limit = time.monotonic() + within
    while time.monotonic() < limit:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_signals_during_a_sweep_are_counted_not_raised() -> None:
    # a KeyboardInterrupt raised inside concurrent.futures.wait can leave a future's lock
    # held, and the sweep then waits for ever on runs that can no longer report
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with runner._counted_stops() as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        deadline_at = time.monotonic() + 5
        while stops.count < 2 and time.monotonic() < deadline_at:
            time.sleep(0.01)
        assert stops.count == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with runner._counted_stops():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a background job's
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def long_experiment(tmp_path: Path) -> Path:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML)
    (tmp_path / "exp.toml").write_text(EXPERIMENT.replace("replications = 3", "replications = 40"))
    return tmp_path


def test_sigterm_stops_like_ctrl_c_and_leaves_no_process(long_experiment: Path) -> None:
    out = long_experiment / "out"
    process = _start(long_experiment, out)
    _wait_for_parts(process, out, at_least=2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert _group_gone(process.pid, within=10), "a worker or the fork server outlived the sweep"
    finished = sweep(long_experiment / "exp.toml", workers=1, out=out, resume=True, progress=False)
    assert finished.status == "complete"


def test_a_killed_sweep_leaves_no_worker_behind(long_experiment: Path) -> None:
    out = long_experiment / "out"
    process = _start(long_experiment, out)
    _wait_for_parts(process, out, at_least=2)
    os.killpg(process.pid, 0)  # workers are running
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert _group_gone(process.pid, within=15), "a worker or the fork server outlived the sweep"
