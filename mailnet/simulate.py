"""One run: build the world, run it, collect the tables. Nothing else happens here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pandas as pd
import simpy

from mailnet import collector, metrics
from mailnet.environment import environment as installed_environment
from mailnet.model.interventions import ChangeLog
from mailnet.model.world import World
from mailnet.randomness import RandomStreams
from mailnet.recorders import AttemptLog, LevelLog
from mailnet.records import EventLog
from mailnet.scenario import Scenario
from mailnet.scenario.schema import check_seed
from mailnet.streaming import StreamingLog
from mailnet.streaming_spool import read_table
from mailnet.streaming_tables import STREAMED, SpoolingLog
from mailnet.tables import ATTEMPTS, MESSAGES, QUEUES, REPUTATION
from mailnet.timeseries import Settling
from mailnet.version import __version__

SUSPENSION_COLUMNS = {
    "sender": "string",
    "at": "float64",
    "sent": "int64",
    "bounce_rate": "float64",
    "complaint_rate": "float64",
}
"""Columns of ``RunResult.suspensions`` and their types."""

PROGRESS_SLICES = 500
"""Slices of simulated time a run with a progress callback is run in."""

Progress = Callable[[float, int], None]
"""A progress callback: called with the simulated time reached (seconds) and the number
of messages created so far."""


@dataclass
class RunResult:
    """The tables and summary of one run.

    ``messages``: one row per message and recipient; ``attempts``: one row per delivery
    attempt and recipient; ``queues``: step series of queue lengths and sessions in use;
    ``summary``: run statistics (see ``mailnet.metrics.summarize``); ``listings``: blocklist
    listings; ``reputation``: receivers' IP reputation samples; ``suspensions``: one row
    per sender suspended by its provider (``sender``; ``at``, seconds; ``sent``, messages
    in the provider's window; ``bounce_rate`` and ``complaint_rate`` in that window, the
    figures that crossed a threshold); ``changes``: one row per key a ``[[changes]]``
    entry set during the run. Times in seconds.

    A summary-only run (``summary_only``) keeps no per-message rows: ``messages``,
    ``attempts``, ``queues`` and ``reputation`` are empty tables with their columns, and
    ``settled`` says how its mail settled (``timeseries.settling`` of the tables
    otherwise).

    A streamed run (``tables_dir``) wrote ``messages``, ``attempts``, ``queues`` and
    ``reputation`` there as it went: its frames are empty until ``read_tables``, and its
    summary and ``settled`` are a summary-only run's.
    """

    scenario: Scenario
    seed: int
    messages: pd.DataFrame
    attempts: pd.DataFrame
    queues: pd.DataFrame
    summary: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    listings: pd.DataFrame = field(default_factory=pd.DataFrame)
    reputation: pd.DataFrame = field(default_factory=pd.DataFrame)
    suspensions: pd.DataFrame = field(
        default_factory=lambda: suspension_frame([])  # an empty table with its columns
    )
    changes: pd.DataFrame = field(default_factory=lambda: ChangeLog().frame())
    base_dir: Path | None = None  # where the scenario's relative trace paths resolve
    summary_only: bool = False
    settled: Settling | None = None
    tables_dir: Path | None = None  # where a streamed run wrote its tables (``STREAMED``)

    TABLES_KEPT_IN_SUMMARY_ONLY = ("listings", "suspensions", "changes")

    def read_tables(self) -> RunResult:
        """This result with the frames a streamed run wrote read back from its files (the
        result itself when it kept them)."""
        if self.tables_dir is None:
            return self
        messages, attempts, queues, reputation = (
            read_table(self.tables_dir / f"{name}.parquet") for name in STREAMED
        )
        return replace(
            self,
            messages=messages,
            attempts=attempts,
            queues=queues,
            reputation=reputation,
            tables_dir=None,
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The run's tables by name, as a run directory holds them (``<name>.parquet``);
        a summary-only run's are the small ones it keeps."""
        tables = {
            "messages": self.messages,
            "attempts": self.attempts,
            "queues": self.queues,
            "listings": self.listings,
            "reputation": self.reputation,
            "suspensions": self.suspensions,
            "changes": self.changes,
        }
        if self.summary_only:
            return {name: tables[name] for name in self.TABLES_KEPT_IN_SUMMARY_ONLY}
        return tables


def suspension_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The suspensions a provider logged (dicts with ``SUSPENSION_COLUMNS``) as a table."""
    frame = pd.DataFrame(rows, columns=list(SUSPENSION_COLUMNS))
    return frame.astype(SUSPENSION_COLUMNS)


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    base_dir: Path | str | None = None,
    source: str = "<scenario>",
    *,
    environment: simpy.Environment | None = None,
    progress: Progress | None = None,
    summary_only: bool = False,
    tables_dir: Path | str | None = None,
) -> RunResult:
    """Run ``scenario`` for its duration with ``seed`` (default: the scenario's own).

    The same scenario and seed always give identical tables. ``base_dir`` resolves
    relative trace paths. ``environment``: a fresh SimPy environment to run in (default
    ``simpy.Environment()``), e.g. one that counts events for a benchmark. ``progress``:
    called after each of ``PROGRESS_SLICES`` slices of simulated time; running in slices
    gives the same tables. ``summary_only``: fold every row into the summary as the run
    goes and keep none, so memory does not grow with the number of messages; counts and
    rates are the same, latency quantiles within ``sketch.RELATIVE_ACCURACY``.
    ``tables_dir``: write the messages, attempts, queues and reputation tables there
    (``<name>.parquet``) as the run goes and keep none in memory (the result's frames are
    empty: ``RunResult.read_tables`` reads them back); the summary is folded as in a
    summary-only run.
    """
    seed = scenario.simulation.seed if seed is None else check_seed(seed, "--seed")
    started = time.perf_counter()
    env = simpy.Environment() if environment is None else environment
    log: EventLog | StreamingLog | SpoolingLog
    if summary_only:
        log = StreamingLog(scenario)
    elif tables_dir is not None:
        log = SpoolingLog(scenario, Path(tables_dir))
    else:
        log = EventLog()
    with collector.paused():  # the run makes no cyclic garbage (mailnet.collector)
        world = World(
            scenario,
            env,
            RandomStreams(seed),
            cast(EventLog, log),  # the streaming log has the same recorders' methods
            base_dir=Path(base_dir) if base_dir is not None else None,
            source=source,
        )
        if isinstance(log, StreamingLog):
            log.sessions.connect_time = {n: s.connect_time for n, s in world.servers.items()}
        if progress is None:
            env.run(until=scenario.simulation.duration)
        else:
            end = scenario.simulation.duration
            _run_in_slices(env, end, lambda: progress(env.now, _created(log)))
        # still paused: the summary makes little garbage, and each collection
        # would walk the whole world, alive until it is built
        listings = world.blocklists.frame(scenario.simulation.duration)
        settled = None
        if isinstance(log, StreamingLog):
            messages, attempts, queues, scores = (
                t.frame({c: [] for c in t.names}) for t in (MESSAGES, ATTEMPTS, QUEUES, REPUTATION)
            )
            summary, settled = log.summary(listings)
        else:
            messages = log.messages.frame()
            assert isinstance(log.attempts, AttemptLog)
            assert isinstance(log.levels, LevelLog)
            attempts = log.attempts.frame()
            queues = log.levels.frame()
            scores = log.scores.frame()
            summary = metrics.summarize(
                messages, attempts, queues, scenario, world, listings=listings
            )
    manifest = {
        "mailnet_version": __version__,
        "seed": seed,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "simulated_seconds": scenario.simulation.duration,
        "environment": installed_environment(),
    }
    if summary_only:
        manifest["summary_only"] = True
    return RunResult(
        scenario,
        seed,
        messages,
        attempts,
        queues,
        summary,
        manifest,
        listings,
        scores,
        suspension_frame(world.suspensions),
        world.changes.frame(),
        Path(base_dir) if base_dir is not None else None,
        summary_only,
        settled,
        Path(tables_dir) if tables_dir is not None and not summary_only else None,
    )


def _run_in_slices(env: simpy.Environment, end: float, report: Callable[[], None]) -> None:
    """``env.run(until=end)`` in ``PROGRESS_SLICES`` steps, calling ``report`` after each.

    Stopping at a time and going on processes the same events in the same order: the
    stop is one more event, scheduled urgent, that only ends ``env.run``.
    """
    step = end / PROGRESS_SLICES
    for i in range(1, PROGRESS_SLICES):
        if i * step > env.now:
            env.run(until=i * step)
            report()
    if end > env.now:
        env.run(until=end)
    report()


def _created(log: EventLog | StreamingLog | SpoolingLog) -> int:
    """Messages created so far (their ids are consecutive from 0)."""
    return log.messages.created_messages()
