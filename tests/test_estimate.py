"""Run and sweep size estimates: close to what a run really does, and oversized input
refused with the estimate before anything runs."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailnet import admission
from mailnet.admission import (
    check_memory,
    free_space,
    parse_size,
    refuse_oversized_run,
    refuse_oversized_sweep,
    workers_for,
)
from mailnet.cli import app
from mailnet.errors import ScenarioError
from mailnet.estimate import (
    BASE_BYTES,
    DISK_BYTES_PER_PERIODIC_ROW,
    EVENTS_PER_ROW,
    STREAM_BYTES,
    estimate_run,
    estimate_sweep,
    format_bytes,
)
from mailnet.run_progress import CountingEnvironment
from mailnet.scenario import load_scenario
from mailnet.simulate import simulate
from mailnet.streaming_tables import STREAMED
from mailnet.sweep import load_experiment

FUZZ_SCENARIOS = Path(__file__).parent / "fuzz" / "scenario"

GOOD = textwrap.dedent("""
    [simulation]
    duration = "6h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 40
    rate = "20/d"
    recipients = 1.5
    domains = { "dest.example" = 1.0 }
    [senders.burst]
    provider = "isp"
    campaigns = { every = "2h", size = 30, over = "10m", start = "30m" }
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx1.dest.example", preference = 10 } ]
    [servers."mx1.dest.example"]
    sessions = 5
""")


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    return path


def test_estimate_counts_rate_and_campaign_messages_like_the_run(good):
    scenario = load_scenario(good)
    estimate = estimate_run(scenario, good.parent)
    # 40 clients x 20/d x 6 h = 200 messages, plus campaigns at 30m, 2h30m, 4h30m: 3 x 30
    assert estimate.messages == pytest.approx(290)
    env = CountingEnvironment()
    result = simulate(scenario, environment=env)
    sent = result.messages[~result.messages["is_dsn"]]["message_id"].nunique()
    # Poisson count of the rate part (mean 200): 4 standard deviations either way
    assert abs(sent - estimate.messages) < 4 * math.sqrt(200)
    # the per-row event cost is an upper bound, within a factor 4 of the truth
    assert estimate.events / 4 < env.processed < estimate.events
    assert estimate.peak_bytes > estimate.table_bytes > 0


def test_periodic_work_counts_without_mail(good):
    scenario = load_scenario(good, overrides=["senders.users.rate=0/d", "simulation.duration=1d"])
    quiet = estimate_run(scenario, good.parent)
    # no rate messages; campaigns 12 x 30 = 360; Postfix scans every 300 s
    assert quiet.messages == 360
    assert quiet.events == pytest.approx(360 * 1.0 * EVENTS_PER_ROW + 86400 / 300)


def test_sweep_estimate_scales_with_runs_and_workers(good):
    run = estimate_run(load_scenario(good), good.parent)
    sweep = estimate_sweep([run, run, run], replications=4, workers=2)
    assert (sweep.points, sweep.runs, sweep.workers) == (3, 12, 2)
    assert sweep.peak_bytes == 2 * run.peak_bytes
    assert sweep.seconds == pytest.approx(12 * run.seconds / 2)
    assert estimate_sweep([run], 1, workers=8).workers == 1


def test_workers_are_capped_by_cores_and_runs():
    assert workers_for(8, runs=100, cores=2) == 2
    assert workers_for(None, runs=100, cores=4) == 4
    assert workers_for(16, runs=3, cores=8) == 3
    assert workers_for(1, runs=3, cores=8) == 1


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8 * 2**30), ("512M", 512 * 2**20), ("2 TiB", 2 * 2**40), ("1000", 1000)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1GB", "0", "inf", "nanGB", "8XB", ""])
def test_bad_sizes_name_the_option(text):
    with pytest.raises(ScenarioError, match="--max-memory"):
        parse_size(text)


def test_check_memory_refuses_above_the_limit_only():
    check_memory(100.0, 1000, "x.toml", "small")
    with pytest.raises(ScenarioError) as info:
        check_memory(2000.0, 1000, "x.toml", "about 9 messages")
    assert str(info.value).startswith("x.toml: too large to run: about 9 messages;")
    assert "--max-memory" in str(info.value)
    assert format_bytes(1536 * 2**20) == "1.5 GB"


@pytest.mark.parametrize(
    "override",
    [
        "senders.users.rate=1e12/s",
        "simulation.duration=100000000d",
        'senders.burst.campaigns={ every = "1ms", size = 1000, over = "0s" }',
    ],
)
def test_oversized_runs_are_refused_with_the_estimate(good, tmp_path, override):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(good), "--out", str(out), "--set", override, "--quiet"]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"mailnet: error: {good}: too large to run: about ")
    assert "more than this machine's memory" in lines[0]
    assert "--max-memory SIZE" in lines[0]
    assert "of memory (tables streamed to disk, " in lines[0]
    assert not out.exists()


SAMPLED = [
    "receivers.r={ reputation = {} }",
    'servers."mx1.dest.example".receiver="r"',
    "simulation.duration=3000d",
    "simulation.sample_interval=1ms",
]


def test_the_disk_estimate_errs_large_within_a_factor_of_the_files(good, tmp_path):
    scenario = load_scenario(good, overrides=["simulation.duration=2d"])
    simulate(scenario, tables_dir=tmp_path)
    files = sum((tmp_path / f"{name}.parquet").stat().st_size for name in STREAMED)
    assert files < estimate_run(scenario, good.parent).disk_bytes < 3 * files


def test_tables_that_would_fill_the_disk_are_refused(good, tmp_path, monkeypatch):
    scenario = load_scenario(good, overrides=SAMPLED)
    run = estimate_run(scenario, good.parent)
    assert run.disk_bytes > 2.5e11 * DISK_BYTES_PER_PERIODIC_ROW  # the samples
    out = tmp_path / "new" / "run"  # not there yet: the disk of its nearest ancestor
    assert free_space(out) == free_space(tmp_path) > 0
    monkeypatch.setattr(admission, "free_space", lambda path: 2**30)
    args = ["run", str(good), "--out", str(out), "--quiet", "--max-memory", "1PB"]
    result = CliRunner().invoke(app, [*args, *(x for o in SAMPLED for x in ("--set", o))])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"mailnet: error: {good}: too large to run: about ")
    assert f"(tables streamed to disk, {format_bytes(run.disk_bytes)})" in line
    assert line.endswith(
        f"more than the free space of the disk {out} is on (1 GB); shorten it, or free some space"
    )
    assert not out.exists()
    # a summary-only run writes no tables
    lean = CliRunner().invoke(app, [*args, "--summary-only", "--set", "simulation.duration=1h"])
    assert lean.exit_code == 0, lean.output


def test_periodic_rows_cost_memory_only_when_the_tables_are_kept_there(good):
    # 2.6e11 reputation samples: kept in memory they could never fit; a streamed run
    # writes them a row group at a time, and its price is that of its mail
    run = estimate_run(load_scenario(good, overrides=SAMPLED), good.parent)
    assert run.peak_bytes > run.table_bytes > 2**40
    streamed = run.streamed()
    assert streamed.peak_bytes == run.streamed_peak_bytes < 4 * 2**30
    assert streamed.table_bytes == run.table_bytes  # what reading them back would add
    assert run.streamed(read_back=True).peak_bytes == run.streamed_peak_bytes + run.table_bytes


def test_max_memory_lowers_the_limit(good, tmp_path):
    args = ["run", str(good), "--out", str(tmp_path / "o"), "--quiet"]
    refused = CliRunner().invoke(app, [*args, "--max-memory", "10MB"])
    assert refused.exit_code == 2
    assert "more than --max-memory (10 MB)" in refused.output
    assert CliRunner().invoke(app, [*args, "--max-memory", "64GB"]).exit_code == 0


def test_sweeps_are_refused_by_grid_size_and_memory(good, tmp_path):
    experiment = tmp_path / "exp.toml"
    values = ", ".join(str(v) for v in range(1, 101))
    experiment.write_text(
        f'base = "good.toml"\n[grid]\n"senders.users.count" = [{values}]\n'
        f'"servers.\\"mx1.dest.example\\".sessions" = [{values}]\n'
        f'"senders.users.recipients" = [1, 2]\n'
    )
    result = CliRunner().invoke(app, ["sweep", str(experiment), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"mailnet: error: {experiment}: grid: 20,000 grid points; at most 10,000"
    )
    experiment.write_text('base = "good.toml"\nreplications = 4\n')
    result = CliRunner().invoke(
        app,
        ["sweep", str(experiment), "--out", str(tmp_path / "s"), "--max-memory", "100MB"],
    )
    assert result.exit_code == 2
    assert "1 points, 4 runs on " in result.output
    assert "more than --max-memory (100 MB)" in result.output
    assert not (tmp_path / "s").exists()


def test_sweep_workers_beyond_the_runs_are_capped_with_a_notice(good, tmp_path):
    experiment = tmp_path / "exp.toml"
    experiment.write_text('base = "good.toml"\n')
    (tmp_path / "good.toml").write_text(GOOD.replace('"6h"', '"10m"'))
    result = CliRunner().invoke(
        app, ["sweep", str(experiment), "--out", str(tmp_path / "s"), "--workers", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "mailnet: --workers 64 capped at 1 (cores and runs)" in result.stderr
    assert "complete: 1 ok" in result.stdout


def test_runs_are_priced_by_where_they_keep_their_tables(good, tmp_path):
    scenario = load_scenario(good, overrides=["simulation.duration=30d"])
    run = estimate_run(scenario, good.parent)
    # no rows kept, rows streamed to disk as they come, every row kept in memory
    assert BASE_BYTES < run.summary_peak_bytes < run.streamed_peak_bytes < run.peak_bytes
    assert run.streamed_peak_bytes - run.summary_peak_bytes >= STREAM_BYTES
    lean = estimate_sweep([run], replications=4, workers=2, summary_only=True)
    assert lean.peak_bytes == 2 * run.summary_peak_bytes
    assert lean.largest.table_bytes == 0
    assert "(no tables)" in lean.largest.describe()
    kept = estimate_sweep([run], replications=4, workers=2, streamed=True)
    assert kept.peak_bytes == 2 * run.streamed_peak_bytes
    assert "(tables streamed to disk, " in kept.largest.describe()
    assert f"(tables {format_bytes(run.table_bytes)})" in run.describe()


def _between(low: float, high: float) -> str:
    return format_bytes((low + high) / 2).replace(" ", "")


def test_mailnet_run_is_priced_streamed_unless_it_reads_its_tables_back(good, tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(GOOD.replace('"6h"', '"30d"'))
    run = estimate_run(load_scenario(path), tmp_path)
    streamed = refuse_oversized_run(
        load_scenario(path), path, _between(run.streamed_peak_bytes, run.peak_bytes)
    )
    assert streamed.peak_bytes == run.streamed_peak_bytes
    read_back = run.streamed_peak_bytes + run.table_bytes
    limit = _between(run.streamed_peak_bytes, read_back)
    with pytest.raises(ScenarioError, match="--max-memory"):
        refuse_oversized_run(load_scenario(path), path, limit, read_back=True)
    # on the command line: --by reads the tables back; one line, exit status 2, nothing run
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--quiet", "--max-memory", limit]
    result = CliRunner().invoke(app, [*args, "--by", "domain"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"mailnet: error: {path}: too large to run: about ")
    assert f"{format_bytes(read_back)} of memory (tables streamed to disk, " in line
    assert not out.exists()
    low = format_bytes(run.streamed_peak_bytes * 0.9).replace(" ", "")
    result = CliRunner().invoke(app, [*args[:-1], low])
    assert result.exit_code == 2, result.output
    assert f"more than --max-memory ({format_bytes(parse_size(low))})" in result.output


def test_a_sweep_is_priced_by_what_its_runs_keep(good, tmp_path):
    scenario = load_scenario(good, overrides=["simulation.duration=30d"])
    run = estimate_run(scenario, good.parent)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(
        'base = "good.toml"\nreplications = 2\n[grid]\n"simulation.duration" = ["30d"]\n'
    )
    loaded = load_experiment(experiment)
    between = _between(run.summary_peak_bytes, run.streamed_peak_bytes)
    assert refuse_oversized_sweep(loaded, 1, between, keep_tables=False).peak_bytes == (
        pytest.approx(run.summary_peak_bytes)
    )
    with pytest.raises(ScenarioError, match="--max-memory"):
        refuse_oversized_sweep(loaded, 1, between, keep_tables=True)
    between = _between(run.streamed_peak_bytes, run.peak_bytes)
    assert refuse_oversized_sweep(loaded, 1, between, keep_tables=True).peak_bytes == (
        pytest.approx(run.streamed_peak_bytes)
    )
    with pytest.raises(ScenarioError, match="--max-memory"):
        refuse_oversized_sweep(loaded, 1, "1KB", keep_tables=False)
    # on the command line: one line, exit status 2, nothing run
    out = tmp_path / "s"
    limit = _between(run.summary_peak_bytes, run.streamed_peak_bytes)
    args = ["sweep", str(experiment), "--out", str(out), "--workers", "1", "--keep-tables"]
    result = CliRunner().invoke(app, [*args, "--max-memory", limit])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"mailnet: error: {experiment}: too large to run: 1 points, 2 runs")
    assert f"(the largest run {format_bytes(run.streamed_peak_bytes)})" in line
    assert not out.exists()


def test_a_sweep_keeping_tables_needs_room_for_every_run(good, tmp_path, monkeypatch):
    experiment = tmp_path / "exp.toml"
    experiment.write_text('base = "good.toml"\nreplications = 3\n')
    loaded = load_experiment(experiment)
    run = estimate_run(load_scenario(good), good.parent)
    assert refuse_oversized_sweep(loaded, 1, keep_tables=True).disk_bytes == 3 * run.disk_bytes
    assert refuse_oversized_sweep(loaded, 1, keep_tables=False).disk_bytes == 0
    monkeypatch.setattr(admission, "free_space", lambda path: int(2.5 * run.disk_bytes))
    out = tmp_path / "s"
    refuse_oversized_sweep(loaded, 1, keep_tables=False, out=out)  # nothing kept
    args = ["sweep", str(experiment), "--out", str(out), "--workers", "1"]
    result = CliRunner().invoke(app, [*args, "--keep-tables"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert f", {format_bytes(3 * run.disk_bytes)} of tables on disk, " in line
    assert f"more than the free space of the disk {out} is on" in line
    assert not out.exists()


def test_runs_estimated_to_take_longer_than_max_time_are_refused(tmp_path, monkeypatch):
    # a queue run every millisecond for 20 days: 8.6e10 events, about 20 days of wall time
    path = FUZZ_SCENARIOS / "queue_run_1ms.toml"
    scenario = load_scenario(path)
    seconds = estimate_run(scenario, path.parent).seconds
    assert 7 * 86400 < seconds < 30 * 86400
    monkeypatch.setattr(admission, "free_space", lambda path: 2**60)  # any disk would do
    out = tmp_path / "run"
    for extra in ([], ["--summary-only"]):
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), *extra])
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"mailnet: error: {path}: too long to run: about 200,000 ")
        assert line.endswith(
            "20 days; more than --max-time (1w) of estimated wall time; shorten it, or give "
            "--max-time DURATION to allow more"
        )
        assert not out.exists()
    # --max-time raises the limit (or lowers it)
    assert refuse_oversized_run(scenario, path, max_time="30d", out=out).seconds == seconds
    with pytest.raises(ScenarioError, match=r"more than --max-time \(2w\)"):
        refuse_oversized_run(scenario, path, max_time="2w", summary_only=True)
    bad = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--max-time", "3x"])
    assert bad.exit_code == 2
    assert bad.output.strip() == (
        "mailnet: error: --max-time: not a duration: '3x' (use e.g. 500ms, 30s, 5m, 2h, 5d)"
    )


def test_a_sweep_is_refused_on_the_wall_time_of_its_runs_over_its_workers(good, tmp_path):
    experiment = tmp_path / "exp.toml"
    experiment.write_text('base = "good.toml"\nreplications = 4\n')
    loaded = load_experiment(experiment)
    run = estimate_run(load_scenario(good), good.parent)
    assert refuse_oversized_sweep(loaded, 2, keep_tables=False).seconds == 2 * run.seconds
    limit = f"{run.seconds:.6f}s"  # a quarter of the work: one worker's half is more
    with pytest.raises(ScenarioError, match=r"too long to run: 1 points, 4 runs on 2 workers"):
        refuse_oversized_sweep(loaded, 2, keep_tables=False, max_time=limit)
    args = ["sweep", str(experiment), "--out", str(tmp_path / "s"), "--workers", "1"]
    result = CliRunner().invoke(app, [*args, "--max-time", limit])
    assert result.exit_code == 2, result.output
    assert "more than --max-time" in result.output
    assert not (tmp_path / "s").exists()
