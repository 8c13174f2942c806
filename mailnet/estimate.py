"""How big a run or a sweep will be, known in milliseconds from the scenario alone.

``estimate_run`` reads a validated scenario and counts what its senders will submit (rate
times clients times duration, campaigns, explicit messages, trace rows), the recipient rows
those make, and the periodic work that does not depend on mail (deferred-queue scans,
reputation samples, outage cycles). Per-row costs turn counts into events, memory and wall
time, and the tables' size in memory and on disk. ``mailnet.admission`` refuses, before
anything runs, a run or sweep whose estimate exceeds the machine's memory,
``--max-memory`` or the free space of the disk its tables go to.

The per-row costs were measured (``ru_maxrss``, ``DataFrame.memory_usage(deep=True)``, and a
counting SimPy environment) on the four scenarios of ``experiments/scenarios``, each run for
6 h and 24 h of simulated time, taking the slope between the two to leave out the fixed
start-up cost; the largest slope of the four is used, so the estimate errs on the large side:

==============================  ==========  ==============  ==============  =============
per message-recipient row       baseline    shared_ip_spam  capacity        retry_world
==============================  ==========  ==============  ==============  =============
SimPy events                    5.5         8.2             7.0             7.4
peak memory (bytes)             2,040       3,300           1,840           4,400
tables at the end (bytes)       263         400             280             340
wall time, 2 cores at load 8    117 µs      91 µs           143 µs          280 µs
==============================  ==========  ==============  ==============  =============

The interpreter with mailnet, NumPy, pandas and SimPy loaded holds about 130 MB before a
run starts (``BASE_BYTES``), and the world about 11 KB per MX server
(``WORLD_BYTES_PER_SERVER``). A summary-only run, and every run of a sweep that keeps no
tables, holds no rows: it is priced at the interpreter, the world and
``SUMMARY_BYTES_PER_ROW``. A run that streams its tables to Parquet as it goes
(``mailnet run``, every run of a sweep with ``--keep-tables``) is priced at what it
holds (``RunEstimate.streamed``): the interpreter, the world, ``STREAM_BYTES`` for Arrow
and the row groups being filled, and ``STREAMED_BYTES_PER_ROW``. Only a run that keeps its
tables in memory (``mailnet.simulate`` from Python without ``tables_dir``) is priced at
``PEAK_BYTES_PER_ROW``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mailnet.policies.retry import make_retry_policy
from mailnet.policies.sending_cycle import mean_multiplier, slot_multipliers
from mailnet.scenario import Scenario
from mailnet.scenario.domains import RandomOutages
from mailnet.scenario.fields import CustomRetry

EVENTS_PER_ROW = 10.0
"""SimPy events per message-recipient row (measured up to 8.2; see the module docstring)."""

PEAK_BYTES_PER_ROW = 4500.0
"""Process memory per message-recipient row at the end of a run, tables built (4,400)."""

TABLE_BYTES_PER_ROW = 500.0
"""Memory of the finished tables per message-recipient row, attempts and queues included."""

SECONDS_PER_EVENT = 20e-6
"""Wall seconds per SimPy event on one core of this 2-core machine under load (14-38 µs)."""

BYTES_PER_PERIODIC_ROW = 100.0
"""Memory of one row of periodic work: a queue-length sample, a reputation sample."""

BASE_BYTES = 130 * 2**20
"""The interpreter with mailnet and its libraries loaded, before a run."""

SUMMARY_BYTES_PER_ROW = 200.0
"""Process memory per message-recipient row of a summary-only run, which keeps no rows:
the generated internet (1,000 domains, one day) peaked at 246 MB for 140 k messages and
340 MB for 520 k, 200 bytes per row (the cohort's outcome and time of each row, the
MTAs' state of each destination domain their mail reaches, the mail in flight); the
2-day and 16-day baselines at 155 and 157 MB (README "Summary-only runs")."""

STREAMED_BYTES_PER_ROW = 300.0
"""Process memory per message-recipient row of a run streaming its tables to Parquet: the
summary-only run's state plus the final rows created after a recipient still queued, held
until it settles or until ``streaming_tables.SPILL_AT`` of them go to disk. Measured (``benchmarks/bench_memory.py
--streamed``) on the scenarios of ``experiments/scenarios``, estimated rows in brackets:
the baseline peaked at 252 and 265 MB for 1 day (81,000) in two measurements and at 316
and 313 MB for 4 days (324,000), 278 and 207 bytes a row; retry_world at 189 and 215 MB
for 6 and 24 hours (3,250 and 13,000: its row groups filling up), shared_ip_spam at 212
and 222 MB (6,400 and 25,600), capacity at 204 and 211 MB (64,800 and 259,200). At least
``SUMMARY_BYTES_PER_ROW``."""

STREAM_BYTES = 120 * 2**20
"""Memory a run streaming its tables holds whatever its length, beyond the interpreter
and the world: pyarrow, a row group being filled in each of four tables
(``streaming_tables.ROW_GROUP`` rows) and its conversion to Arrow, one row group at a
time when each file is rewritten at the end, and the summary-only run's own state. The
1-day baseline's peak, 265 MB, less the interpreter and the world (130 MB) and its rows
at ``STREAMED_BYTES_PER_ROW`` (23 MB) leaves 112 MB; every run above is priced above its
peak."""

DISK_BYTES_PER_ROW = 200.0
"""Bytes of Parquet per message-recipient row, the messages, attempts and queues tables
together: 142 in the baseline (1 day), 150 in retry_world and 134 in shared_ip_spam (24
hours), 121 in capacity (6 hours)."""

DISK_BYTES_PER_PERIODIC_ROW = 16.0
"""Bytes of Parquet per row of periodic work (a reputation sample: 15.9 in shared_ip_spam,
a queue-length change: about 5)."""

WORLD_BYTES_PER_SERVER = 12_000.0
"""Memory of the world per MX server, its domain and its share of the senders'
popularity weights: the generated internet holds 154 MB at 14,032 servers (10,000
domains, 20 providers) and 21 MB at 1,445 (1,000 domains), 11 KB a server."""

MAX_POINTS = 10_000
"""The most grid points an experiment may have: each is a whole scenario, built and
validated before the first run (about a millisecond each)."""

MAX_REPLICATIONS = 100_000
"""The most replications of one grid point."""

MAX_RUNS = 1_000_000
"""The most runs of one sweep (points times replications): a row each in runs.parquet and a
part file each under parts/."""


@dataclass(frozen=True)
class RunEstimate:
    """The size of one run. ``messages``: messages the senders submit (DSNs left out);
    ``rows``: message-recipient rows; ``events``: SimPy events; ``table_bytes``: the
    tables at the end; ``peak_bytes``: the process at its largest, tables included;
    ``seconds``: wall time on one core; ``summary_peak_bytes``: the process at its
    largest in a summary-only run (no tables); ``streamed_peak_bytes``: the same for a run
    streaming its tables to Parquet. ``tables``: where ``peak_bytes`` keeps the tables,
    ``"memory"``, ``"streamed"`` (to disk, as the run goes) or ``"none"``;
    ``disk_bytes``: the tables as Parquet files."""

    messages: float
    rows: float
    events: float
    table_bytes: float
    peak_bytes: float
    seconds: float
    summary_peak_bytes: float = BASE_BYTES
    streamed_peak_bytes: float = BASE_BYTES + STREAM_BYTES
    tables: str = "memory"
    disk_bytes: float = 0.0

    def summary_only(self) -> RunEstimate:
        """This run without its tables (``--summary-only``, a sweep keeping none)."""
        return replace(self, table_bytes=0.0, peak_bytes=self.summary_peak_bytes, tables="none")

    def streamed(self, *, read_back: bool = False) -> RunEstimate:
        """This run streaming its tables to Parquet as it goes (``mailnet run``, a sweep
        with ``--keep-tables``); ``read_back``: and reading them back into memory once it
        has ended (``mailnet run --by`` or ``--maillog``), which adds the tables."""
        extra = self.table_bytes if read_back else 0.0
        return replace(self, peak_bytes=self.streamed_peak_bytes + extra, tables="streamed")

    def describe(self) -> str:
        """``about 1.2e+05 messages, 1.5e+06 events, 690 MB of memory (tables 75 MB), 30 s``;
        the tables of a streamed run are ``streamed to disk, 9.6 MB``, a summary-only run
        has ``no tables``."""
        tables = {
            "memory": f"tables {format_bytes(self.table_bytes)}",
            "streamed": f"tables streamed to disk, {format_bytes(self.disk_bytes)}",
            "none": "no tables",
        }[self.tables]
        return (
            f"about {_count(self.messages)} messages, {_count(self.events)} events, "
            f"{format_bytes(self.peak_bytes)} of memory ({tables}), "
            f"{format_time(self.seconds)}"
        )


@dataclass(frozen=True)
class SweepEstimate:
    """The size of a sweep: ``points`` x ``replications`` = ``runs``, run by ``workers``
    processes at once; ``peak_bytes`` is the largest run's peak times ``workers``;
    ``seconds`` the wall time of every run spread over the workers; ``disk_bytes`` the
    tables of every run on disk (runs that keep them: ``--keep-tables``)."""

    points: int
    runs: int
    workers: int
    largest: RunEstimate
    peak_bytes: float
    seconds: float
    disk_bytes: float = 0.0

    def describe(self) -> str:
        disk = f", {format_bytes(self.disk_bytes)} of tables on disk" if self.disk_bytes else ""
        return (
            f"{self.points:,} points, {self.runs:,} runs on {self.workers} workers: "
            f"{format_bytes(self.peak_bytes)} of memory at once "
            f"(the largest run {format_bytes(self.largest.peak_bytes)}){disk}, "
            f"{format_time(self.seconds)}"
        )


def estimate_run(scenario: Scenario, base_dir: Path | None = None) -> RunEstimate:
    """The estimated size of running ``scenario``; relative trace paths resolve against
    ``base_dir``. Takes milliseconds: nothing is simulated."""
    duration = scenario.simulation.duration
    messages = rows = 0.0
    for group in scenario.senders.values():
        sent = _submitted(group, duration, base_dir)
        messages += sent
        rows += sent * group.recipients
    periodic_events, periodic_rows = _periodic(scenario)
    events = rows * EVENTS_PER_ROW + periodic_events
    periodic_bytes = periodic_rows * BYTES_PER_PERIODIC_ROW
    world = BASE_BYTES + len(scenario.servers) * WORLD_BYTES_PER_SERVER
    return RunEstimate(
        messages=messages,
        rows=rows,
        events=events,
        table_bytes=rows * TABLE_BYTES_PER_ROW + periodic_bytes,
        peak_bytes=world + rows * PEAK_BYTES_PER_ROW + 2 * periodic_bytes,
        seconds=events * SECONDS_PER_EVENT,
        summary_peak_bytes=world + rows * SUMMARY_BYTES_PER_ROW,
        streamed_peak_bytes=world + STREAM_BYTES + rows * STREAMED_BYTES_PER_ROW,
        disk_bytes=rows * DISK_BYTES_PER_ROW + periodic_rows * DISK_BYTES_PER_PERIODIC_ROW,
    )


def estimate_sweep(
    points: list[RunEstimate],
    replications: int,
    workers: int,
    *,
    summary_only: bool = False,
    streamed: bool = False,
) -> SweepEstimate:
    """The size of a sweep whose grid points have the run estimates ``points``, each run
    ``replications`` times, on ``workers`` processes at once; ``summary_only``: runs that
    keep no tables (a sweep without ``--keep-tables``); ``streamed``: runs that stream
    them to their directories (a sweep with ``--keep-tables``)."""
    if summary_only:
        points = [p.summary_only() for p in points]
    elif streamed:
        points = [p.streamed() for p in points]
    largest = max(points, key=lambda r: r.peak_bytes)
    runs = len(points) * replications
    busy = max(1, min(workers, runs))
    return SweepEstimate(
        points=len(points),
        runs=runs,
        workers=busy,
        largest=largest,
        peak_bytes=largest.peak_bytes * busy,
        seconds=sum(r.seconds for r in points) * replications / busy,
        disk_bytes=sum(r.disk_bytes for r in points) * replications if streamed else 0.0,
    )


def _submitted(group, duration: float, base_dir: Path | None) -> float:
    """Messages one sender group submits in ``duration`` seconds."""
    sent = 0.0
    if group.rate is not None:
        cycle = group.cycle
        shape = (
            1.0
            if cycle is None
            else mean_multiplier(slot_multipliers(cycle.hourly, cycle.weekly), duration)
        )
        sent += group.rate * group.count * duration * shape
    if group.campaigns is not None:
        c = group.campaigns
        bursts = max(0.0, math.ceil((duration - c.start) / c.every)) if duration > c.start else 0
        sent += bursts * c.size
    if group.messages is not None:
        sent += len(group.messages)
    if group.trace is not None:
        sent += _trace_rows(group.trace, base_dir)
    return sent


def _trace_rows(trace: str, base_dir: Path | None) -> float:
    path = Path(trace)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        with path.open("rb") as handle:
            return float(max(0, sum(1 for _ in handle) - 1))
    except OSError:
        return 0.0  # the scenario's own check names a missing trace


def _periodic(scenario: Scenario) -> tuple[float, float]:
    """Events and table rows of work that runs whatever the mail: the deferred-queue scan
    clocks (one event a tick per queue-run interval, ``model.deferred``) and each MTA's
    scans, reputation samples, outage cycles."""
    duration = scenario.simulation.duration
    events = rows = 0.0
    specs = [(p.retry, p.retry_params) for p in scenario.providers.values()]
    specs += [(s.retry, s.retry_params) for s in scenario.servers.values() if _is_mta(s)]
    clocks = set()
    for retry, params in specs:
        interval = _queue_run_interval(retry, params)
        if interval:
            clocks.add(interval)
            rows += duration / interval
    events += sum(duration / interval for interval in clocks)
    scored = [r for r in scenario.receivers.values() if r.reputation is not None]
    if scored:
        # the providers' addresses are sampled (model.world), not every server's
        ips = sum(len(p.ips) for p in scenario.providers.values())
        samples = duration / scenario.simulation.sample_interval
        events += samples
        rows += samples * len(scored) * ips
        domains = {g.domain or g.provider for g in scenario.senders.values()}
        keeping = sum(1 for r in scored if r.reputation is not None and r.reputation.domain)
        rows += samples * keeping * len(domains)
    for server in scenario.servers.values():
        outages = server.outages
        if isinstance(outages, RandomOutages):
            cycles = duration / max(outages.mtbf + outages.mttr, 1e-9)
            events += 2 * cycles
            rows += 2 * cycles
    return events, rows


def _is_mta(server) -> bool:
    """A server that queues and forwards mail (a relay or backup MX), with its own scans."""
    return server.role != "primary"


def _queue_run_interval(retry: str | CustomRetry, params: dict) -> float | None:
    spec = retry.model_dump(mode="json") if isinstance(retry, CustomRetry) else retry
    try:
        policy = make_retry_policy(spec, params, rng=np.random.default_rng(0))
        return policy.queue_run_interval
    except ValueError:
        return None  # the scenario's own check reports a bad policy


def format_bytes(value: float) -> str:
    """``1.5 GB`` (binary units)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            break
        value /= 1024
    return f"{value:.3g} {unit}" if value < 1e6 else f"{value:.2e} {unit}"


def format_time(seconds: float) -> str:
    """``45 s``, ``3.2 h``, ``12 days``, ``4.1e+07 years`` of wall time."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{_count(seconds / size)} {unit}"
    return f"{seconds:.2g} s"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value < 1e6 else f"{value:.2g}"
