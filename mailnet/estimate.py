"""How big a run or a sweep will be, known in milliseconds from the scenario alone.

``estimate_run`` reads a validated scenario and counts what its senders will submit (rate
times clients times duration, campaigns, explicit messages, trace rows), the recipient rows
those make, and the periodic work that does not depend on mail (deferred-queue scans,
reputation samples, outage cycles). Per-row costs turn counts into events, memory and wall
time. ``check_memory`` refuses, as a one-line ``ScenarioError``, a run or sweep whose
estimate exceeds the machine's memory or ``--max-memory``, before anything runs.

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
``SUMMARY_BYTES_PER_ROW``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mailnet.errors import ScenarioError
from mailnet.policies.retry import make_retry_policy
from mailnet.policies.sending_cycle import mean_multiplier, slot_multipliers
from mailnet.scenario import Scenario
from mailnet.scenario.domains import RandomOutages
from mailnet.scenario.fields import CustomRetry

if TYPE_CHECKING:
    from mailnet.sweep.experiment import Experiment

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

UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


@dataclass(frozen=True)
class RunEstimate:
    """The size of one run. ``messages``: messages the senders submit (DSNs left out);
    ``rows``: message-recipient rows; ``events``: SimPy events; ``table_bytes``: the
    tables at the end; ``peak_bytes``: the process at its largest, tables included;
    ``seconds``: wall time on one core; ``summary_peak_bytes``: the process at its
    largest in a summary-only run (no tables)."""

    messages: float
    rows: float
    events: float
    table_bytes: float
    peak_bytes: float
    seconds: float
    summary_peak_bytes: float = BASE_BYTES

    def summary_only(self) -> RunEstimate:
        """This run without its tables (``--summary-only``, a sweep keeping none)."""
        return replace(self, table_bytes=0.0, peak_bytes=self.summary_peak_bytes)

    def describe(self) -> str:
        """``about 1.2e+05 messages, 1.5e+06 events, 690 MB of memory (tables 75 MB), 30 s``."""
        return (
            f"about {_count(self.messages)} messages, {_count(self.events)} events, "
            f"{format_bytes(self.peak_bytes)} of memory (tables {format_bytes(self.table_bytes)}), "
            f"{format_time(self.seconds)}"
        )


@dataclass(frozen=True)
class SweepEstimate:
    """The size of a sweep: ``points`` x ``replications`` = ``runs``, run by ``workers``
    processes at once; ``peak_bytes`` is the largest run's peak times ``workers``;
    ``seconds`` the wall time of every run spread over the workers."""

    points: int
    runs: int
    workers: int
    largest: RunEstimate
    peak_bytes: float
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.points:,} points, {self.runs:,} runs on {self.workers} workers: "
            f"{format_bytes(self.peak_bytes)} of memory at once "
            f"(the largest run {format_bytes(self.largest.peak_bytes)}), "
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
    )


def estimate_sweep(
    points: list[RunEstimate], replications: int, workers: int, *, summary_only: bool = False
) -> SweepEstimate:
    """The size of a sweep whose grid points have the run estimates ``points``, each run
    ``replications`` times, on ``workers`` processes at once; ``summary_only``: runs that
    keep no tables (a sweep without ``--keep-tables``)."""
    if summary_only:
        points = [p.summary_only() for p in points]
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
    """Events and table rows of work that runs whatever the mail: each MTA's deferred-queue
    scans, reputation samples, outage cycles."""
    duration = scenario.simulation.duration
    events = rows = 0.0
    specs = [(p.retry, p.retry_params) for p in scenario.providers.values()]
    specs += [(s.retry, s.retry_params) for s in scenario.servers.values() if _is_mta(s)]
    for retry, params in specs:
        interval = _queue_run_interval(retry, params)
        if interval:
            events += duration / interval
            rows += duration / interval
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


# ------------------------------------------------------------------ limits
def machine_memory() -> int:
    """Bytes of physical memory on this machine (0 if the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def parse_size(text: str) -> int:
    """Bytes in ``"8GB"``, ``"512M"``, ``"2 TiB"`` or a plain number of bytes (binary
    units). Raises ``ScenarioError`` naming ``--max-memory``."""
    cleaned = text.strip().lower().replace(" ", "").removesuffix("ib").removesuffix("b")
    number = cleaned.rstrip("kmgtp")
    unit = cleaned[len(number) :]
    try:
        value = float(number) * UNITS[unit]
    except (ValueError, KeyError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ScenarioError("--max-memory", "", f"not a size like 8GB or 512MB: {text!r}")
    return int(value)


def check_memory(needed: float, limit: int | None, source: str, what: str) -> None:
    """Refuse (``ScenarioError`` naming ``source``) when ``needed`` bytes exceed ``limit``
    (default: the machine's memory). ``what`` is the estimate to show."""
    machine = machine_memory()
    cap = limit if limit is not None else machine
    if cap and needed > cap:
        whose = "--max-memory" if limit is not None else "this machine's memory"
        raise ScenarioError(
            source,
            "",
            f"too large to run: {what}; more than {whose} ({format_bytes(cap)}); "
            "shorten it, or give --max-memory SIZE to allow more",
        )


def refuse_oversized_run(
    scenario: Scenario, path: Path, max_memory: str | None = None
) -> RunEstimate:
    """The estimate of running ``scenario`` (read from ``path``); ``ScenarioError`` naming
    ``path`` when it needs more memory than ``max_memory`` (``"8GB"``) or the machine."""
    limit = parse_size(max_memory) if max_memory is not None else None
    estimate = estimate_run(scenario, path.parent)
    check_memory(estimate.peak_bytes, limit, str(path), estimate.describe())
    return estimate


def refuse_oversized_sweep(
    experiment: Experiment,
    workers: int,
    max_memory: str | None = None,
    *,
    keep_tables: bool = True,
) -> SweepEstimate:
    """The estimate of ``experiment`` on ``workers`` processes at once; ``ScenarioError``
    naming the experiment file when they would need more memory than ``max_memory`` or
    the machine. Without ``keep_tables`` the runs are summary-only and priced so."""
    limit = parse_size(max_memory) if max_memory is not None else None
    base_dir = experiment.base_path.parent
    points = [
        estimate_run(Scenario.from_dict(p.scenario, experiment.source, base_dir), base_dir)
        for p in experiment.points
    ]
    estimate = estimate_sweep(
        points, experiment.replications, workers, summary_only=not keep_tables
    )
    check_memory(estimate.peak_bytes, limit, experiment.source, estimate.describe())
    return estimate


def workers_for(requested: int | None, runs: int, cores: int | None = None) -> int:
    """Local worker processes for ``runs`` runs: ``requested`` (default one per core),
    but never more than the cores or the runs."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(requested or cores, cores, runs))


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
