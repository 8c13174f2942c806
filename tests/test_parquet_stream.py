"""Tables streamed to Parquet as the run goes read back exactly as tables written at once.

A streamed run (``simulate(..., tables_dir=DIR)``, ``mailnet run``) writes its rows in row
groups while it runs; its files must give back, through ``pd.read_parquet``, the same
columns, dtypes, values, row order and categories as the frames of the in-memory run
written by ``output.write_run``. Its summary is folded as the run goes, as in a
summary-only run (``tests/test_streaming.py`` compares that with the tables' summary).
Small row groups make every table cross several of them, and messages rows wait behind
rows still in a queue.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mailnet import load_scenario, simulate, streaming_spool, streaming_tables, tables
from mailnet.cli import app
from mailnet.output import write_run
from mailnet.recorders import AttemptLog
from tests.conftest import captured_logs

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/scenario.toml"
BASELINE = ROOT / "experiments/scenarios/baseline.toml"
SHORT = ["simulation.duration=2h", "simulation.warmup=30m"]
TABLES = ("messages", "attempts", "queues", "reputation", "listings", "suspensions", "changes")


@pytest.fixture
def small_groups(monkeypatch):
    """Row groups of 16 rows, the append-only buffers checked at every 4th message row."""
    monkeypatch.setattr(streaming_tables, "ROW_GROUP", 16)
    monkeypatch.setattr(streaming_tables, "CHECK_EVERY", 4)


def assert_same_run(written: Path, streamed: Path) -> None:
    for name in TABLES:
        a = pd.read_parquet(written / f"{name}.parquet")
        b = pd.read_parquet(streamed / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=True)
        for column in a.columns:
            if isinstance(a[column].dtype, pd.CategoricalDtype):  # unused ones too, in order
                assert list(a[column].cat.categories) == list(b[column].cat.categories), column


def run_both(tmp_path: Path, path: Path, overrides: list[str], seed: int):
    """The run kept in memory and streamed, each written to its directory; the streamed
    run's summary and settling are checked against a summary-only run's."""
    scenario = load_scenario(path, overrides=overrides)
    kept = simulate(scenario, seed=seed)
    write_run(kept, tmp_path / "kept")
    (tmp_path / "streamed").mkdir()
    streamed = simulate(scenario, seed=seed, tables_dir=tmp_path / "streamed")
    write_run(streamed, tmp_path / "streamed")
    lean = simulate(scenario, seed=seed, summary_only=True)
    assert streamed.summary == lean.summary
    assert streamed.settled == lean.settled
    assert streamed.messages.empty  # nothing kept in memory
    return kept, streamed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_golden_world_reads_back_the_same_tables(tmp_path, small_groups, seed):
    kept, _ = run_both(tmp_path, GOLDEN, [], seed)
    assert_same_run(tmp_path / "kept", tmp_path / "streamed")
    groups = pq.ParquetFile(tmp_path / "streamed" / "messages.parquet").num_row_groups
    assert groups >= len(kept.messages) // 16  # written as it went, not at once
    assert not list((tmp_path / "streamed").glob(".*"))  # no spool left behind


@pytest.mark.slow
@pytest.mark.parametrize("seed", [4, 5])
def test_streamed_baseline_reads_back_the_same_tables(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(streaming_tables, "ROW_GROUP", 512)
    monkeypatch.setattr(streaming_tables, "CHECK_EVERY", 64)
    _, streamed = run_both(tmp_path, BASELINE, SHORT, seed)
    assert_same_run(tmp_path / "kept", tmp_path / "streamed")
    frames = streamed.read_tables()
    for name in ("messages", "attempts", "queues", "reputation"):
        pd.testing.assert_frame_equal(
            getattr(frames, name), pd.read_parquet(tmp_path / "kept" / f"{name}.parquet")
        )


def test_streamed_run_holds_the_mail_in_flight_not_the_run(tmp_path, monkeypatch):
    """The slots of messages rows follow the recipients still open, far fewer than the
    rows of the run; the final rows waiting to be written stay under a row group plus
    those held behind a row still in a queue."""
    monkeypatch.setattr(streaming_tables, "ROW_GROUP", 256)
    scenario = load_scenario(
        BASELINE, overrides=["simulation.duration=1h30m", "simulation.warmup=15m"]
    )
    logs = captured_logs(monkeypatch)
    result = simulate(scenario, seed=1, tables_dir=tmp_path).read_tables()
    rows = len(result.messages)
    assert rows > 3000
    table = logs[0].messages
    assert table.flushes > rows // 256 // 2  # flushed as the run went
    in_queue = int((result.messages["status"] == "in_queue").sum())
    assert table.most_buffered < 256 + in_queue + 256


SPAM = ROOT / "experiments/scenarios/shared_ip_spam.toml"


@pytest.mark.parametrize("prune", [False, True])
def test_rows_held_behind_a_queued_recipient_are_spilled_and_merged_back(
    tmp_path, monkeypatch, prune
):
    """Final rows created after a recipient still queued go to disk as sorted runs once
    they are ``SPILL_AT`` rows, so the rows held in memory stay under that; the file
    gives back the in-memory run's table in creation order, with its categories."""
    monkeypatch.setattr(streaming_tables, "ROW_GROUP", 64)
    monkeypatch.setattr(streaming_tables, "CHECK_EVERY", 16)
    monkeypatch.setattr(streaming_tables, "SPILL_AT", 64)
    monkeypatch.setattr(streaming_spool, "SPILL_GROUP", 24)
    if prune:
        monkeypatch.setattr(streaming_spool, "PRUNE_BYTES", 0)
    runs = []
    spill = streaming_spool.TableSpool.spill

    def counted_spill(self, frames):
        spill(self, frames)
        runs.append(len(self._runs))

    monkeypatch.setattr(streaming_spool.TableSpool, "spill", counted_spill)
    logs = captured_logs(monkeypatch)
    run_both(tmp_path, SPAM, ["simulation.duration=2h", "simulation.warmup=15m"], 1)
    assert len(runs) >= 2  # without spilling, up to 155 rows were held here
    (streamed,) = (log for log in logs if isinstance(log, streaming_tables.SpoolingLog))
    assert streamed.messages.most_held < 64
    if prune:
        for name in ("messages", "attempts"):
            pd.testing.assert_frame_equal(
                streaming_spool.read_table(tmp_path / "streamed" / f"{name}.parquet"),
                pd.read_parquet(tmp_path / "kept" / f"{name}.parquet"),
                check_exact=True,
                check_categorical=True,
            )
    else:
        assert_same_run(tmp_path / "kept", tmp_path / "streamed")
    assert not list((tmp_path / "streamed").glob(".*"))  # no spool or runs left behind


def test_merge_runs_gives_the_rows_of_sorted_runs_in_order():
    """Runs of blocks, each block with its own dictionary, some empty: merged in key
    order into tables of at least the rows asked for, each dictionary holding only the
    values its table uses."""
    rng = np.random.default_rng(7)
    keys = rng.permutation(5000)
    runs = []
    for part in np.array_split(keys, 9):
        run = np.sort(part)
        blocks = [*np.array_split(run, rng.integers(1, 8)), run[:0]]
        runs.append([_block(b) for b in blocks])
    loaders = [[partial(pa.Table.slice, t, 0) for t in run] for run in runs]
    out = list(streaming_spool.merge_runs(loaders, "k", 700))
    assert all(t.num_rows >= 700 for t in out[:-1])
    merged = pa.concat_tables(out)
    assert merged.column("k").to_pylist() == list(range(5000))
    assert merged.column("v").to_pylist() == [f"v{k % 37}" if k % 5 else None for k in range(5000)]
    for table in out:
        values = table.column("v").chunk(0)
        assert len(values.dictionary) == len(pc.unique(values.indices).drop_null())


def _block(keys: np.ndarray) -> pa.Table:
    """Keys and a dictionary column of the block's own values (null for multiples of 5)."""
    labels = [f"v{k % 37}" if k % 5 else None for k in keys]
    values = pa.array(labels, type=pa.string()).dictionary_encode()
    return pa.table({"k": pa.array(keys, type=pa.int64()), "v": values})


def test_large_categories_are_written_per_row_group_and_read_back_sorted(
    tmp_path, small_groups, monkeypatch
):
    """Categories of more than ``PRUNE_BYTES`` of text are not repeated in every row
    group: each keeps its own, sorted, and ``read_table`` gives back the same frame as the
    in-memory run's file (pandas alone reads them in order of appearance)."""
    monkeypatch.setattr(streaming_spool, "PRUNE_BYTES", 0)  # every inferred column
    kept, _ = run_both(tmp_path, GOLDEN, [], 1)
    path = tmp_path / "streamed" / "messages.parquet"
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups > 4
    whole = kept.messages["recipient"].cat.categories
    for name in ("messages", "attempts", "queues", "reputation"):
        pd.testing.assert_frame_equal(
            streaming_spool.read_table(tmp_path / "streamed" / f"{name}.parquet"),
            pd.read_parquet(tmp_path / "kept" / f"{name}.parquet"),
            check_exact=True,
            check_categorical=True,
        )
    first = pq.ParquetFile(path).read_row_group(0).column("recipient").chunk(0)
    assert 0 < len(first.dictionary) < len(whole)  # the group's own categories only
    assert first.dictionary.to_pylist() == sorted(first.dictionary.to_pylist())


def test_a_streamed_result_written_elsewhere_writes_its_frames(tmp_path):
    scenario = load_scenario(GOLDEN)
    (tmp_path / "a").mkdir()
    streamed = simulate(scenario, tables_dir=tmp_path / "a")
    write_run(streamed, tmp_path / "a")
    write_run(streamed, tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_mailnet_run_streams_its_tables(tmp_path, small_groups):
    out = tmp_path / "run"
    done = CliRunner().invoke(app, ["run", str(GOLDEN), "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    write_run(simulate(load_scenario(GOLDEN)), tmp_path / "kept")
    assert_same_run(tmp_path / "kept", out)
    lean = simulate(load_scenario(GOLDEN), summary_only=True)
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(lean.summary))
    assert pq.ParquetFile(out / "attempts.parquet").num_row_groups > 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "kept").iterdir()
    )


QUIET_AFTER_A_BURST = """
[simulation]
duration = "1d"
sample_interval = "5m"
[providers.isp]
ips = ["198.51.100.1"]
local_domains = ["isp.example"]
[senders.burst]
provider = "isp"
campaigns = { every = "30d", size = 40, over = "1m", start = "0s" }
domains = { "dest.example" = 1.0 }
[domains."dest.example"]
mx = [ { host = "mx1.dest.example", preference = 10 } ]
[servers."mx1.dest.example"]
sessions = 5
receiver = "strict"
outages = [ { start = "0s", end = "30d", mode = "refuse" } ]
[receivers.strict]
reputation = {}
"""


def test_rows_go_on_streaming_when_no_new_mail_comes(tmp_path, small_groups):
    """Retries and reputation samples after the last message: their buffers are written a
    row group at a time, not held until the end of the run."""
    path = tmp_path / "quiet.toml"
    path.write_text(QUIET_AFTER_A_BURST)
    (tmp_path / "run").mkdir()
    result = simulate(load_scenario(path), seed=1, tables_dir=tmp_path / "run").read_tables()
    assert len(result.messages) == 40
    for name in ("attempts", "reputation"):
        rows = len(getattr(result, name))
        assert rows > 200, name
        groups = pq.ParquetFile(tmp_path / "run" / f"{name}.parquet").num_row_groups
        assert groups >= rows // (16 + 4), name


def test_own_categories_of_any_number_in_one_file(tmp_path, monkeypatch):
    """Row groups whose own categories number under 128 in one and thousands in the next
    (pandas gives them 8- and 16-bit codes) still make one file, read back whole."""
    monkeypatch.setattr(streaming_spool, "PRUNE_BYTES", 0)
    spool = streaming_spool.TableSpool(tables.ATTEMPTS, tmp_path / ".attempts.spool")
    sizes = (5, 3000, 40)
    frames = []
    for g, n in enumerate(sizes):
        log = AttemptLog()
        for i in range(n):
            log.add(
                g * 10_000 + i,
                f"u{g}-{i}@d.example",
                "isp",
                "192.0.2.1",
                "mx",
                1.0,
                1.0,
                2.0,
                250,
                "2.0.0",
                "sent",
                "ok",
            )
        frames.append(log.frame())
        spool.write(frames[-1])
    spool.finish(tmp_path / "attempts.parquet")
    back = streaming_spool.read_table(tmp_path / "attempts.parquet")
    assert len(back) == sum(sizes)
    assert list(back["recipient"].astype(str)) == [
        r for f in frames for r in f["recipient"].astype(str)
    ]
    whole = sorted({r for f in frames for r in f["recipient"].astype(str)})
    assert list(back["recipient"].cat.categories) == whole


def test_a_column_stops_collecting_its_values_once_they_pass_the_limit(tmp_path, monkeypatch):
    """A column whose values pass ``PRUNE_BYTES`` of text keeps only what gives their
    kind, however many more come; one under it keeps them all for the file's categories.
    The file reads back as written."""
    monkeypatch.setattr(streaming_spool, "PRUNE_BYTES", 400)
    spool = streaming_spool.TableSpool(tables.ATTEMPTS, tmp_path / ".attempts.spool")
    frames = []
    for g in range(6):
        log = AttemptLog()
        for i in range(10):  # 10 new addresses of 14-15 characters a group
            log.add(g * 100 + i, f"u{g}-{i}@d.example", "isp", "192.0.2.1", f"mx{i % 3}",
                    1.0, 1.0, 2.0, 250, "2.0.0", "sent", "ok")  # fmt: skip
        frames.append(log.frame())
        spool.write(frames[-1])
        passed = sum(len(f"u{k}-{i}@d.example") for k in range(g + 1) for i in range(10)) > 400
        assert ("recipient" in spool._seen) is not passed
    assert spool._seen["mx_host"] == {"mx0", "mx1", "mx2"}
    spool.finish(tmp_path / "attempts.parquet")
    back = streaming_spool.read_table(tmp_path / "attempts.parquet")
    whole = pd.concat(frames, ignore_index=True)
    for column in ("recipient", "mx_host"):
        assert list(back[column].astype(str)) == list(whole[column].astype(str))
        assert list(back[column].cat.categories) == sorted(whole[column].astype(str).unique())
