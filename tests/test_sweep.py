"""Running sweeps: identical results on every backend, resuming, interruption, failed runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from mailnet.errors import ScenarioError
from mailnet.sweep import SweepError, SweepResult, load_experiment, replication_seed, sweep
from tests.conftest import ONE_MX_TOML, sweep_app

BASE = ONE_MX_TOML

EXPERIMENT = textwrap.dedent("""
    base = "base.toml"
    replications = 6
    seed = 7
    [grid]
    'servers."mx.dest.example".sessions' = [1, 3]
    [linked]
    'servers."mx.dest.example".outages.mttr' = ["5m", "20m"]
    "senders.users.rate" = ["20/h", 0.01]
""")
N_RUNS = 2 * 2 * 6
WALL = ["wall_time_s"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "base.toml").write_text(BASE)
    (folder / "exp.toml").write_text(EXPERIMENT.replace("0.01", '"40/h"'))
    return folder


@pytest.fixture(scope="module")
def reference(folder):
    """The sweep run serially in this process, never interrupted."""
    return sweep(folder / "exp.toml", workers=1, out=folder / "serial", progress=False)


def _same_runs(out_a, out_b) -> None:
    a = pd.read_parquet(out_a / "runs.parquet").drop(columns=WALL)
    b = pd.read_parquet(out_b / "runs.parquet").drop(columns=WALL)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out_a / "points.parquet"), pd.read_parquet(out_b / "points.parquet")
    )


def test_runs_table_layout(folder, reference):
    runs = pd.read_parquet(folder / "serial" / "runs.parquet")
    assert len(runs) == N_RUNS
    assert list(runs.columns[:8]) == [
        "point",
        'servers."mx.dest.example".sessions',
        'servers."mx.dest.example".outages.mttr',
        "senders.users.rate",
        "replication",
        "seed",
        "status",
        "error",
    ]
    assert list(zip(runs["point"], runs["replication"], strict=True)) == [
        (p, r) for p in range(4) for r in range(6)
    ]
    assert (runs["status"] == "ok").all()
    # common random numbers: replication r has the same seed at every point
    assert (runs["seed"] == runs["replication"].map(lambda r: replication_seed(7, r))).all()
    assert runs['servers."mx.dest.example".sessions'].tolist()[::6] == [1, 1, 3, 3]
    assert runs["messages"].dtype.kind == "i"
    assert runs["delivery_rate"].dtype.kind == "f"
    # the longer outages at points 1 and 3 must show in the results
    points = reference.points
    assert (
        points["latency_s.mean.mean"][[1, 3]].to_numpy()
        > points["latency_s.mean.mean"][[0, 2]].to_numpy()
    ).all()
    manifest = json.loads((folder / "serial" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["runs"] == {
        "total": N_RUNS,
        "ok": N_RUNS,
        "failed": 0,
        "missing": 0,
        "reused": 0,
    }
    assert manifest["experiment"]["seeds"] == [replication_seed(7, r) for r in range(6)]
    assert manifest["base_scenario"]["servers"]["mx.dest.example"]["sessions"] == 2
    assert sorted(os.listdir(folder / "serial" / "parts"))[:2] == ["0-0.json", "0-1.json"]


def test_mixed_type_values_are_stored_as_text(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "exp.toml").write_text(EXPERIMENT.replace("replications = 6", "replications = 1"))
    result = sweep(tmp_path / "exp.toml", workers=1, out=tmp_path / "out", progress=False)
    assert result.runs["senders.users.rate"].tolist() == ["20/h", "0.01"] * 2
    stored = pd.read_parquet(tmp_path / "out" / "runs.parquet")["senders.users.rate"]
    assert pd.api.types.is_string_dtype(stored)


def test_confidence_intervals_match_scipy(reference):
    # rates: the delta method on the logit scale; durations and counts: on the log scale
    # (so no interval crosses its metric's bound)
    runs, points = reference.runs, reference.points
    assert (points["ok"] == 6).all()
    assert (points["failed"] == 0).all()
    scales = {
        "attempts": lambda m: (np.log(m), 1 / m, np.exp),
        "delivery_rate": lambda m: (
            np.log(m / (1 - m)),
            1 / (m * (1 - m)),
            lambda z: 1 / (1 + np.exp(-z)),
        ),
        "latency_s.p90": lambda m: (np.log(m), 1 / m, np.exp),
        "session_wait_s.mean": lambda m: (np.log(m), 1 / m, np.exp),
    }
    checked = 0
    for metric, scale in scales.items():
        for point, group in runs.groupby("point"):
            x = group[metric].to_numpy(dtype=float)
            assert x.std() > 0
            centre, slope, back = scale(x.mean())
            half = stats.t.ppf(0.975, len(x) - 1) * stats.sem(x) * slope
            row = points.loc[points["point"] == point].iloc[0]
            assert row[f"{metric}.mean"] == pytest.approx(x.mean(), rel=1e-12)
            assert row[f"{metric}.ci_low"] == pytest.approx(back(centre - half), rel=1e-12)
            assert row[f"{metric}.ci_high"] == pytest.approx(back(centre + half), rel=1e-12)
            assert row[f"{metric}.median"] == pytest.approx(np.median(x), rel=1e-12)
            checked += 1
    assert checked == 16


def test_two_local_processes_give_identical_results(folder, reference):
    result = CliRunner().invoke(
        sweep_app(),
        ["sweep", str(folder / "exp.toml"), "--workers", "2", "--out", str(folder / "two")],
    )
    assert result.exit_code == 0, result.output
    assert "complete: 24 ok, 0 failed, 0 missing of 24 runs" in result.stdout
    _same_runs(folder / "serial", folder / "two")
    assert (
        "2 local processes"
        in json.loads((folder / "two" / "manifest.json").read_text())["executor"]
    )


@pytest.mark.slow
def test_dask_cluster_gives_identical_results(folder, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        local_directory=str(tmp_path),
        silence_logs=40,
    ) as cluster:
        result = CliRunner().invoke(
            sweep_app(),
            [
                "sweep",
                str(folder / "exp.toml"),
                "--scheduler",
                cluster.scheduler_address,
                "--out",
                str(folder / "dask"),
            ],
        )
    assert result.exit_code == 0, result.output
    _same_runs(folder / "serial", folder / "dask")
    manifest = json.loads((folder / "dask" / "manifest.json").read_text())
    assert manifest["executor"].startswith("Dask cluster at tcp://")


# A shell's background job ignores SIGINT and a child inherits that; the sweep's process
# restores Python's handler first, so it sees the Ctrl-C the test sends however the suite
# was started.
_CLI_WITH_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('mailnet.cli', run_name='__main__', alter_sys=True)"
)


def _start_cli(folder, out, *options):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CLI_WITH_SIGINT,
            "sweep",
            str(folder / "exp.toml"),
            "--workers",
            "1",
            "--out",
            str(out),
            *options,
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_parts(process, out, at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "parts").is_dir():
            n = len([p for p in os.listdir(out / "parts") if not p.startswith(".")])
            if n >= at_least:
                return n
        time.sleep(0.002)
    raise AssertionError(f"the sweep ended before {at_least} runs were written")


def test_killed_sweep_resumes_to_the_same_results(folder, reference):
    out = folder / "killed"
    process = _start_cli(folder, out)
    _wait_for_parts(process, out, at_least=3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "runs.parquet").exists()
    kept = len([p for p in os.listdir(out / "parts") if not p.startswith(".")])
    assert 3 <= kept < N_RUNS

    with pytest.raises(SweepError, match="--resume"):
        sweep(folder / "exp.toml", workers=1, out=out, progress=False)
    resumed = CliRunner().invoke(
        sweep_app(),
        ["sweep", str(folder / "exp.toml"), "--workers", "2", "--out", str(out), "--resume"],
    )
    assert resumed.exit_code == 0, resumed.output
    _same_runs(folder / "serial", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"]["reused"] == kept


LONG_RUNS = 2 * 2 * 30


@pytest.fixture(scope="module")
def long_folder(tmp_path_factory):
    """The same sweep with 30 replications, so that many runs are left after the interrupt
    whatever the chunk sizes."""
    folder = tmp_path_factory.mktemp("long_sweep")
    (folder / "base.toml").write_text(BASE)
    experiment = EXPERIMENT.replace("0.01", '"40/h"').replace(
        "replications = 6", "replications = 30"
    )
    (folder / "exp.toml").write_text(experiment)
    return folder


def test_ctrl_c_keeps_finished_runs(long_folder):
    folder = long_folder
    reference = sweep(folder / "exp.toml", workers=1, out=folder / "serial", progress=False)
    out = folder / "interrupted"
    process = _start_cli(folder, out)
    _wait_for_parts(process, out, at_least=2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("interrupted: ")
    runs = pd.read_parquet(out / "runs.parquet")
    parts = len([p for p in os.listdir(out / "parts") if not p.startswith(".")])
    assert 2 <= len(runs) == parts < LONG_RUNS
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    pd.testing.assert_frame_equal(
        runs.drop(columns=WALL),
        reference.runs.drop(columns=WALL).iloc[: len(runs)].reset_index(drop=True),
        check_dtype=False,
    )
    finished = sweep(folder / "exp.toml", workers=1, out=out, resume=True, progress=False)
    assert finished.status == "complete"
    _same_runs(folder / "serial", out)


def test_ctrl_c_keeps_the_tables_of_finished_runs_and_none_half_written(long_folder):
    out = long_folder / "interrupted-tables"
    process = _start_cli(long_folder, out, "--keep-tables")
    _wait_for_parts(process, out, at_least=2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    parts = {p.removesuffix(".json") for p in os.listdir(out / "parts") if p[0] != "."}
    tables = {p for p in os.listdir(out / "runs") if p[0] != "."}
    # every run counted has its tables; the interrupt may land after a run's tables were
    # swapped in and before its part file (it runs again on resume)
    assert 2 <= len(parts) <= len(tables) <= len(parts) + 1 < LONG_RUNS
    assert parts <= tables
    assert all((out / "runs" / slot / "manifest.json").is_file() for slot in tables)
    assert [p for p in os.listdir(out / "runs") if p[0] == "."] == [".sweep-id"]


def test_resume_refuses_results_of_another_experiment(folder, reference, tmp_path):
    changed = tmp_path / "exp.toml"
    changed.write_text(
        EXPERIMENT.replace("0.01", '"45/h"').replace(
            'base = "base.toml"', f'base = "{folder / "base.toml"}"'
        )
    )
    with pytest.raises(SweepError, match="different experiment"):
        sweep(changed, workers=1, out=folder / "serial", resume=True, progress=False)


def test_failed_run_is_recorded_and_the_sweep_continues(tmp_path):
    # traces are checked at loading and read again when a run starts: one that became
    # unreadable in between fails that run only
    good = "at,sender,recipients\n1m,0,a@dest.example\n5m,0,b@dest.example\n"
    (tmp_path / "good.csv").write_text(good)
    (tmp_path / "bad.csv").write_text(good)
    base = BASE.replace('rate = "30/h"\ndomains = { "dest.example" = 1.0 }', 'trace = "good.csv"')
    assert base != BASE
    (tmp_path / "base.toml").write_text(base)
    (tmp_path / "exp.toml").write_text(
        textwrap.dedent("""
        base = "base.toml"
        replications = 2
        [grid]
        "senders.users.trace" = ["bad.csv", "good.csv"]
    """)
    )
    experiment = load_experiment(tmp_path / "exp.toml")
    (tmp_path / "bad.csv").write_text("when,who\n1m,0\n")
    result = sweep(experiment, workers=2, out=tmp_path / "out", progress=False)
    runs = result.runs
    assert runs["status"].tolist() == ["failed", "failed", "ok", "ok"]
    assert runs["error"][0].startswith("ScenarioError: ")
    assert "the header must be at,sender,recipients" in runs["error"][0]
    assert runs["error"][2:].isna().all()
    assert runs["messages"].tolist()[2:] == [2, 2]
    assert result.points["ok"].tolist() == [0, 2]
    assert result.points["failed"].tolist() == [2, 0]
    assert np.isnan(result.points["messages.mean"][0])
    assert result.points["messages.mean"][1] == 2
    assert result.status == "complete"
    assert result.failed == 2
    part = json.loads((tmp_path / "out" / "parts" / "0-0.json").read_text())
    assert "Traceback" in part["traceback"]


def test_keep_tables_and_load(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "exp.toml").write_text('base = "base.toml"\nreplications = 2\n')
    out = tmp_path / "out"
    result = sweep(
        load_experiment(tmp_path / "exp.toml"), workers=1, out=out, keep_tables=True, progress=False
    )
    for r in range(2):
        messages = pd.read_parquet(out / "runs" / f"0-{r}" / "messages.parquet")
        assert len(messages) == result.runs["recipients"][r]
    loaded = SweepResult.load(out)
    pd.testing.assert_frame_equal(loaded.runs, result.runs)
    assert loaded.status == "complete"
    # resuming with tables asks again for runs whose tables are missing
    (out / "runs" / "0-1" / "manifest.json").unlink()
    again = sweep(
        tmp_path / "exp.toml", workers=1, out=out, keep_tables=True, resume=True, progress=False
    )
    assert again.manifest["runs"]["reused"] == 1
    assert (out / "runs" / "0-1" / "manifest.json").exists()
    pd.testing.assert_frame_equal(again.runs.drop(columns=WALL), result.runs.drop(columns=WALL))
    finished = sweep(tmp_path / "exp.toml", workers=1, out=out, resume=True, progress=False)
    assert finished.manifest["runs"]["reused"] == 2
    assert finished.status == "complete"


def test_a_count_missing_from_a_run_is_zero_in_the_averages(folder):
    # at a low spam rate only one replication in three gets listed: its summary has the
    # count, the others leave it out; the mean must be over all three (1/3), not 1.0
    from mailnet.sweep import store
    from mailnet.sweep.stats import point_table

    experiment = load_experiment(folder / "exp.toml")
    records = [
        {
            "point": 0,
            "replication": r,
            "seed": r,
            "status": "ok",
            "error": None,
            "wall_time_s": 0.1,
            "metrics": {
                "messages": 10,
                "latency_s.p90": 5.0,
                **({"listings.css:ip": 1} if r == 1 else {}),
            },
        }
        for r in range(3)
    ]
    records.append(
        {
            "point": 0,
            "replication": 3,
            "seed": 3,
            "status": "failed",
            "error": "x",
            "wall_time_s": 0.1,
            "metrics": {},
        }
    )
    runs = store.runs_frame(experiment, records)
    assert runs["listings.css:ip"].tolist()[:3] == [0, 1, 0]
    assert np.isnan(runs["listings.css:ip"].iloc[3])  # a failed run stays unknown
    points = point_table(runs, store.params_frame(experiment))
    assert points.loc[0, "listings.css:ip.mean"] == pytest.approx(1 / 3)
    # a non-count that is undefined stays undefined
    records[0]["metrics"].pop("latency_s.p90")
    runs = store.runs_frame(experiment, records)
    assert np.isnan(runs["latency_s.p90"].iloc[0])


def test_points_compare_with_a_baseline_by_paired_differences(folder, reference):
    from mailnet.sweep import store
    from mailnet.sweep.stats import point_table

    experiment = load_experiment(folder / "exp.toml")
    points = point_table(reference.runs, store.params_frame(experiment), baseline=1)
    runs = reference.runs
    base = runs[runs["point"] == 1].set_index("replication")["delivery_rate"]
    p_values = []
    for point in range(4):
        mine = runs[runs["point"] == point].set_index("replication")["delivery_rate"]
        row = points.loc[points["point"] == point].iloc[0]
        if point == 1:
            assert (row["delivery_rate.diff"], row["delivery_rate.diff_low"]) == (0.0, 0.0)
            assert np.isnan(row["delivery_rate.diff_p_holm"])
            continue
        test = stats.ttest_rel(mine, base)
        ci = test.confidence_interval(0.95)
        assert row["delivery_rate.diff"] == pytest.approx((mine - base).mean(), rel=1e-12)
        assert row["delivery_rate.diff_low"] == pytest.approx(ci.low, rel=1e-9)
        assert row["delivery_rate.diff_high"] == pytest.approx(ci.high, rel=1e-9)
        p_values.append((row["delivery_rate.diff_p_holm"], test.pvalue))
    # Holm: the smallest p-value times 3, then non-decreasing
    raw = sorted(p for _, p in p_values)
    adjusted = sorted(a for a, _ in p_values)
    assert adjusted[0] == pytest.approx(min(1.0, 3 * raw[0]))
    assert all(a >= p for a, p in p_values)


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        ("baseline = 2", 2),
        (
            """baseline = { 'servers."mx.dest.example".sessions' = 3, "senders.users.rate" = "20/h" }""",
            2,
        ),
    ],
)
def test_the_baseline_is_named_by_number_or_by_values(folder, tmp_path, baseline, expected):
    text = (
        (folder / "exp.toml")
        .read_text()
        .replace('base = "base.toml"', f'base = "{folder / "base.toml"}"')
    )
    (tmp_path / "exp.toml").write_text(f"{baseline}\n{text}")
    experiment = load_experiment(tmp_path / "exp.toml")
    assert experiment.baseline == expected
    assert experiment.points[expected].params['servers."mx.dest.example".sessions'] == 3


@pytest.mark.parametrize(
    ("baseline", "problem"),
    [
        ("baseline = 9", "baseline: there are 4 points (0 to 3)"),
        ("baseline = -1", "must be a point number (0 or more)"),
        ('baseline = "short"', "the label 'short' name 0 points"),
        ("""baseline = { 'servers."mx.dest.example".sessions' = 3 }""", "name 2 points"),
        ("baseline = true", "must be a point number, a label"),
    ],
)
def test_a_bad_baseline_is_one_clear_error(folder, tmp_path, baseline, problem):
    text = (
        (folder / "exp.toml")
        .read_text()
        .replace('base = "base.toml"', f'base = "{folder / "base.toml"}"')
    )
    (tmp_path / "exp.toml").write_text(f"{baseline}\n{text}")
    with pytest.raises(ScenarioError, match=re.escape(problem)):
        load_experiment(tmp_path / "exp.toml")
