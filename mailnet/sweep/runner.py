"""Running an experiment: plan the runs, skip those already done, execute the rest, write
the results directory.

Runs are submitted in small chunks, at most two per execution slot at a time, so results
stream back, an interruption loses little, and a cluster is never flooded with tasks.
Chunks grow until each takes about a second, which keeps per-task dispatch overhead
(about 2 ms on Dask) small against the work.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mailnet import environment
from mailnet.metric_catalog import members, unit_of
from mailnet.output import atomic_write_parquet, staged_run_dir, write_run
from mailnet.sweep import selection as selecting
from mailnet.sweep import store
from mailnet.sweep.backends import Backend, SweepError, check_options, open_backend
from mailnet.sweep.experiment import Experiment, load_experiment, replication_seed
from mailnet.sweep.precision import (
    MIN_REPLICATIONS,
    Precision,
    Shortfall,
    assess,
    next_counts,
)
from mailnet.sweep.progress import SweepProgress
from mailnet.sweep.stats import point_table
from mailnet.sweep.worker import KeptTables, RunOutcome, RunSpec, run_chunk
from mailnet.version import __version__

if TYPE_CHECKING:
    from distributed import Client

TARGET_CHUNK_S = 1.0
"""Seconds of work per submitted task once run times are known."""


@dataclass
class SweepResult:
    """A sweep's results directory, loaded.

    ``runs``: one row per finished run (see ``store.runs_frame``); ``points``: one row per
    grid point with means and confidence intervals (see ``stats.point_table``);
    ``manifest``: the experiment, base scenario, versions, counts and timings.
    """

    out: Path
    runs: pd.DataFrame
    points: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, out: str | Path) -> SweepResult:
        """Read a results directory written by ``sweep``."""
        out = Path(out)
        return cls(
            out,
            pd.read_parquet(out / "runs.parquet"),
            pd.read_parquet(out / "points.parquet"),
            json.loads((out / "manifest.json").read_text(encoding="utf-8")),
        )

    @property
    def status(self) -> str:
        """``complete``, ``incomplete`` (runs missing) or ``interrupted``."""
        return self.manifest.get("status", "unknown")

    @property
    def failed(self) -> int:
        return int(self.manifest.get("runs", {}).get("failed", 0))

    @property
    def missing(self) -> int:
        return int(self.manifest.get("runs", {}).get("missing", 0))


def sweep(
    experiment: Experiment | str | Path,
    *,
    workers: int | None = None,
    client: Client | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    keep_tables: bool = False,
    progress: bool = True,
    chunk_size: int | None = None,
    run_timeout: float | None = None,
    max_attempts: int = 3,
    precision: Precision | str | None = None,
    max_replications: int | None = None,
    target_metrics: list[str] | None = None,
    select: selecting.Selection | None = None,
    damage: str | None = None,
) -> SweepResult:
    """Run every grid point and replication of ``experiment`` (a file or an ``Experiment``).

    Execution: ``workers`` local processes (default one per core; ``1`` runs in this
    process), or a Dask cluster given as a ``Client`` (``client``) or an address
    (``scheduler``, e.g. ``"tcp://host:8786"``); results are identical on each.

    Results go to ``out`` (default ``results/<experiment name>``): ``runs.parquet``,
    ``points.parquet``, ``manifest.json``, one part file per run under ``parts/`` and,
    with ``keep_tables``, each run's tables under ``runs/<point>-<replication>/``, streamed
    there by the worker as the run goes and its summary folded, as ``mailnet run`` does (a
    worker must see ``out`` at the same path: on a cluster without a shared filesystem
    the worker sends the tables back, and the sweep writes them).
    ``resume`` runs only what ``out`` lacks (a failed run stays failed; runs lost with a
    worker run again) and refuses when anything the runs read changed; without it,
    ``out`` must not hold runs yet, and a non-empty ``out`` must be a sweep's. One sweep
    at a time writes to ``out`` (a lock file, released when the process ends).
    ``chunk_size`` fixes the runs per task (default: adaptive, about a second of work).

    Faults: a run whose worker dies (killed, out of memory) or which takes longer than
    ``run_timeout`` seconds runs again, alone, up to ``max_attempts`` times in all, and is
    then recorded as failed with the reason. Ctrl-C or SIGTERM stops submitting, lets
    runs in flight finish (a second one abandons them) and writes the tables from what
    finished; no worker process outlives the sweep.

    ``precision`` (a ``Precision`` or its text, ``"0.1"`` relative or ``"0.005abs"``)
    replicates each point until the 95 % half-width of every ``target_metrics`` (default:
    the catalogue's headline metrics), or of its paired difference to the baseline, meets
    it, starting from ``max(10, replications)`` and stopping at ``max_replications``
    (see ``mailnet.sweep.precision``; default 100); ``points.parquet`` then says per point
    whether the target was met. Without ``precision``, the experiment's own
    ``[precision]`` table (each metric with its target) applies, if it has one.
    Results stay identical on every backend and resumable.

    ``select`` replicates instead until one point is the best on its metric with the
    asked probability of correct selection (see ``mailnet.sweep.selection``), and
    records the choice in ``points.parquet`` and the manifest. ``damage``: the metric
    whose mean ``points.parquet`` gives over the runs with and without each counted
    event (see ``stats.point_table``).

    Raises ``ScenarioError`` for a bad experiment and ``SweepError`` for bad options.
    Local worker processes import the main module, so a script that calls ``sweep``
    must do so under ``if __name__ == "__main__":`` (notebooks need nothing).
    """
    started = time.time()
    check_options(workers, client, scheduler)
    _check_limits(chunk_size, run_timeout, max_attempts)
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    out = Path(out) if out is not None else Path("results") / experiment.name
    if select is not None and precision is not None:
        raise SweepError("--select-best and --precision cannot be used together")
    target = None if select is not None else _precision(precision, experiment, target_metrics)
    maximum = _maximum(max_replications, experiment, target)
    n0 = (
        experiment.replications
        if target is None
        else max(MIN_REPLICATIONS, experiment.replications)
    )
    if select is not None:
        n0 = selecting.first_stage(experiment.replications, maximum)
    if damage is not None and unit_of(damage) is None:
        raise SweepError(f"--damage: no summary metric named {damage!r}")
    counts = dict.fromkeys(range(len(experiment.points)), n0)
    with store.locked(out):
        plan = _plan(experiment, run_timeout, counts)
        if resume:
            store.restore_parts(out, experiment)
        done = _reusable(out, plan, resume, keep_tables)
        before = set(store.read_parts(out)) if done else set()
        todo = [spec for spec in plan if (spec.point, spec.replication) not in done]
        stage = _Stage(experiment, target, maximum, select, n0, damage)
        if not todo and target is None and select is None:
            return _finish(
                out,
                stage,
                counts,
                "none (every run was done)",
                "complete",
                started=started,
                reused=len(done),
            )
        failed_before = sum(r["status"] == "failed" for r in done.values())
        label = f"{experiment.name}: {len(experiment.points)} points x {n0}"
        with (
            open_backend(workers, client, scheduler) as backend,
            SweepProgress(len(plan), len(done), failed_before, label, progress) as bar,
            _counted_stops() as stops,
        ):
            _write_manifest(
                out,
                stage,
                counts,
                backend.description,
                "running",
                started=started,
                reused=len(done),
            )
            tables = (
                KeptTables(str(out.resolve()), store.keep_tables_in(out)) if keep_tables else None
            )
            drive = _Drive(
                backend, out, tables, bar, chunk_size, stops=stops, max_attempts=max_attempts
            )
            while True:
                drive.run(todo)
                if drive.interrupted or drive.lost or (target is None and select is None):
                    break
                if select is not None:
                    outcome = stage.select_step(stage.runs(out, counts), counts)
                    grown = outcome.counts
                    note = selecting.describe(outcome, counts)
                else:
                    shortfalls = stage.assess(stage.runs(out, counts))
                    grown = next_counts(counts, shortfalls, maximum, experiment.baseline)
                    note = _describe_batch(counts, grown, shortfalls) if grown != counts else ""
                if grown == counts:
                    break
                bar.note(note)
                counts = grown
                plan = _plan(experiment, run_timeout, counts)
                done = _reusable(out, plan, True, keep_tables)
                todo = [spec for spec in plan if (spec.point, spec.replication) not in done]
                bar.extend(len(todo))
        if drive.lost:
            bar.note(
                f"[yellow]{len(drive.lost)} runs lost ({drive.lost_reason}); "
                "--resume runs them again"
            )
        status = "interrupted" if drive.interrupted else "complete"
        reused = sum(1 for p, r in before if r < counts.get(p, 0) and (p, r) not in drive.stored)
        return _finish(
            out, stage, counts, backend.description, status, started=started, reused=reused
        )


@dataclass
class _Target:
    """What replicating until the answer is tight aims at: each metric's target, or one
    target for the headline metrics (``targets`` None until the first runs name them)."""

    default: Precision | None
    targets: dict[str, Precision] | None

    def resolve(self, runs: pd.DataFrame) -> dict[str, Precision]:
        if self.targets is None:
            assert self.default is not None
            self.targets = dict.fromkeys(members(runs.columns, headline=True), self.default)
        return self.targets

    def describe(self) -> dict[str, Any]:
        if self.targets is None:
            return {"target": self.default.describe() if self.default else None, "metrics": None}
        kinds = {p.describe() for p in self.targets.values()}
        return {
            "target": kinds.pop() if len(kinds) == 1 else "per metric",
            "metrics": {m: p.describe() for m, p in self.targets.items()},
        }


def _precision(
    precision: Precision | str | None, experiment: Experiment, metrics: list[str] | None
) -> _Target | None:
    """The command line's target (for ``metrics``, default the headline ones), else the
    experiment file's ``[precision]`` table, else None."""
    if precision is None:
        plan = experiment.precision
        return None if plan is None else _Target(None, dict(plan.targets))
    target = precision if isinstance(precision, Precision) else Precision.parse(precision)
    return _Target(target, dict.fromkeys(metrics, target) if metrics else None)


def _maximum(given: int | None, experiment: Experiment, target: _Target | None) -> int:
    """The most replications a point gets: as given, else the experiment file's, else 100."""
    plan = experiment.precision
    maximum = given if given is not None else (plan.max_replications if plan else 100)
    n0 = max(MIN_REPLICATIONS, experiment.replications)
    if target is not None and not n0 <= maximum <= 100_000:
        raise SweepError(
            f"--max-replications must be between {n0} (the replications to start with) "
            f"and 100000, not {maximum}"
        )
    return maximum


@dataclass
class _Stage:
    """What the sequential rule needs between batches: the experiment, the target and
    which metrics it applies to (read from the first runs when not given)."""

    experiment: Experiment
    precision: _Target | None
    maximum: int
    selection: selecting.Selection | None = None
    first_stage: int = 0
    damage: str | None = None

    def select_step(self, runs: pd.DataFrame, counts: dict[int, int]) -> selecting.Outcome:
        assert self.selection is not None
        return selecting.step(runs, counts, self.selection, self.first_stage, self.maximum)

    def runs(self, out: Path, counts: dict[int, int]) -> pd.DataFrame:
        return store.runs_frame(self.experiment, _records(out, counts))

    def assess(self, runs: pd.DataFrame) -> dict[int, Shortfall]:
        assert self.precision is not None
        return assess(runs, self.precision.resolve(runs), self.experiment.baseline)


def _describe_batch(
    counts: dict[int, int], grown: dict[int, int], shortfalls: dict[int, Shortfall]
) -> str:
    """The progress line after a batch: how many points are short, the widest one."""
    short = [p for p, s in shortfalls.items() if not s.met]
    worst = max(short, key=lambda p: shortfalls[p].worst_ratio)
    w = shortfalls[worst]
    return (
        f"{len(short)} of {len(counts)} points short of the target; widest: point "
        f"{worst}, {w.worst_metric} at {w.worst_ratio:.2f}x the target half-width; "
        f"adding {sum(grown.values()) - sum(counts.values())} runs"
    )


def _check_limits(chunk_size: int | None, run_timeout: float | None, max_attempts: int) -> None:
    if chunk_size is not None and chunk_size < 1:
        raise SweepError(f"chunk_size must be at least 1, not {chunk_size}")
    if run_timeout is not None and not (0 < run_timeout < math.inf):
        raise SweepError(f"--run-timeout must be a positive number of seconds, not {run_timeout}")
    if not 1 <= max_attempts <= 100:
        raise SweepError(f"--max-attempts must be between 1 and 100, not {max_attempts}")


class _Stops:
    """Ctrl-C and SIGTERM received during a sweep, counted instead of raised.

    A ``KeyboardInterrupt`` raised by a signal handler can land inside
    ``concurrent.futures.wait`` while it holds some of the futures' locks; the executor's
    thread then blocks for ever on those locks, the runs in flight never report, and the
    sweep hangs. Counting the signal and looking at the count between waits (every
    ``STOP_POLL_S``) keeps every lock balanced.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1


STOP_POLL_S = 0.1
"""Seconds between looks at the stop count while waiting for runs."""


@contextmanager
def _counted_stops() -> Iterator[_Stops]:
    """Within the block, Ctrl-C and SIGTERM are counted by the returned ``_Stops``.

    Only the main thread receives signals; elsewhere nothing is installed. A SIGINT that
    was ignored when the sweep started (a shell's background job) stays ignored.
    """
    stops = _Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        wanted.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, stops) for signum in wanted}
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------ planning
def _plan(experiment: Experiment, timeout: float | None, counts: dict[int, int]) -> list[RunSpec]:
    """Replications ``0 .. counts[point]-1`` of every point; replication r's seed depends
    on the experiment's seed and r alone, so added replications keep common random
    numbers."""
    base_dir = str(experiment.base_path.parent.resolve())
    return [
        RunSpec(
            point=p.index,
            replication=r,
            seed=seed,
            scenario=p.scenario,
            base_dir=base_dir,
            source=experiment.source,
            key=f"{p.fingerprint}-{seed}",
            timeout=timeout,
        )
        for p in experiment.points
        for r in range(counts[p.index])
        for seed in (replication_seed(experiment.seed, r),)
    ]


def _reusable(
    out: Path, plan: list[RunSpec], resume: bool, keep_tables: bool
) -> dict[tuple[int, int], dict[str, Any]]:
    """Finished runs in ``out`` that belong to this plan; refuses foreign or unasked reuse."""
    parts = store.read_parts(out)
    if parts and not resume:
        raise SweepError(
            f"{out} already holds runs of a sweep; pass --resume to complete "
            "it, or choose another --out"
        )
    refusal = environment.resume_refusal(out) if parts else None
    if refusal:
        raise SweepError(refusal)
    wanted = {(s.point, s.replication): s for s in plan}
    done = {}
    for slot, record in parts.items():
        spec = wanted.get(slot)
        if spec is None:
            continue  # beyond this plan (fewer replications now): kept on disk, not used
        if record.get("key") != spec.key:
            raise SweepError(
                f"{store.part_path(out, *slot)} comes from a different "
                "experiment (base, grid values, seed or trace files changed); choose "
                "another --out"
            )
        if keep_tables and not (store.tables_dir(out, *slot) / "manifest.json").exists():
            continue  # its tables were not kept: run it again
        done[slot] = record
    return done


# ------------------------------------------------------------------ executing
class _Drive:
    """Submits chunks of runs, writes each finished run, retries runs whose worker was
    lost or that timed out, and handles Ctrl-C.

    A task that fails (its worker process died, e.g. killed for memory, or a Dask worker
    was lost) does not say which of its runs was to blame: its runs become suspects and
    run again one at a time with nothing else in flight, so each further loss is charged
    to exactly one run. A run charged ``max_attempts`` times (or timed out that often) is
    recorded as failed with the reason, and the sweep goes on.
    """

    def __init__(
        self,
        backend: Backend,
        out: Path,
        tables: KeptTables | None,
        bar: SweepProgress,
        chunk_size: int | None,
        *,
        stops: _Stops,
        max_attempts: int = 3,
    ):
        self.backend = backend
        self.stops = stops
        self.out = out
        self.tables = tables
        self.bar = bar
        self.fixed_chunk = chunk_size
        self.max_attempts = max_attempts
        self.run_seconds: list[float] = []
        self.pending: dict[Future[list[RunOutcome]], tuple[list[RunSpec], bool, float]] = {}
        self.suspects: deque[RunSpec] = deque()
        self.attempts: dict[tuple[int, int], int] = {}
        self.lost: list[RunSpec] = []
        self.lost_reason = ""
        self.stored: set[tuple[int, int]] = set()  # the (point, replication) runs written
        self.interrupted = False

    def run(self, todo: list[RunSpec]) -> None:
        queue = deque(todo)
        while queue or self.pending or self.suspects:
            if self.stops.count:
                self.interrupted = True
                self._wind_down()
                return
            self._submit(queue)
            if not self.pending:
                break  # the executor broke and could not be restarted
            finished, _ = wait(self.pending, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                if future in self.pending:  # not already retried with a broken pool
                    self._collect(future, queue)

    def _submit(self, queue: deque[RunSpec]) -> None:
        if self.suspects:
            if not self.pending:
                self._send([self.suspects.popleft()], queue, isolated=True)
            return
        slots = self.backend.slots()
        while queue and len(self.pending) < 2 * slots:
            size = min(self._chunk_size(len(queue), slots), len(queue))
            if not self._send([queue.popleft() for _ in range(size)], queue, isolated=False):
                return

    def _send(self, chunk: list[RunSpec], queue: deque[RunSpec], *, isolated: bool) -> bool:
        """Submit ``chunk``; on a broken executor restart it once, else lose everything."""
        for tries_left in (1, 0):
            try:
                future = self.backend.executor.submit(run_chunk, chunk, self.tables)
            except Exception as exc:  # the executor itself is broken
                if tries_left and self.backend.restart is not None:
                    self.backend.restart()
                    continue
                self._lose(chunk + list(self.suspects) + list(queue), exc)
                queue.clear()
                self.suspects.clear()
                return False
            self.pending[future] = (chunk, isolated, time.perf_counter())
            return True
        return False

    def _chunk_size(self, remaining: int, slots: int) -> int:
        if self.fixed_chunk is not None:
            return self.fixed_chunk
        if not self.run_seconds:
            return 1
        typical = sorted(self.run_seconds)[len(self.run_seconds) // 2]
        size = int(TARGET_CHUNK_S / max(typical, 1e-6))
        # near the end, smaller chunks keep every slot busy until the last run
        return max(1, min(size, self.backend.max_chunk, remaining // (2 * slots)))

    def _collect(self, future: Future[list[RunOutcome]], queue: deque[RunSpec]) -> None:
        chunk, isolated, sent = self.pending.pop(future)
        try:
            outcomes = future.result()
        except Exception as exc:  # a lost worker, not a failed run
            self._worker_lost(chunk, isolated, sent, exc)
            return
        for spec, outcome in zip(chunk, outcomes, strict=True):
            if outcome.record.get("retry") and self._charge(spec) < self.max_attempts:
                queue.append(spec)  # timed out: perhaps only slow on a loaded machine
                continue
            outcome.record.pop("retry", None)
            self._store(outcome)

    def _worker_lost(
        self, chunk: list[RunSpec], isolated: bool, sent: float, exc: BaseException
    ) -> None:
        if self.backend.restart is not None and isinstance(exc, BrokenExecutor):
            self.backend.restart()  # settles every future of the old pool
            for other in list(self.pending):
                if other.exception() is not None:  # taken down with the pool: run again
                    self.suspects.extend(self.pending.pop(other)[0])
        if not isolated:
            self.suspects.extend(chunk)
            return
        (spec,) = chunk
        if self._charge(spec) < self.max_attempts:
            self.suspects.append(spec)
            return
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        record = {
            "point": spec.point,
            "replication": spec.replication,
            "seed": spec.seed,
            "key": spec.key,
            "status": "failed",
            "error": f"the worker running it was lost {self.max_attempts} times "
            f"(killed, e.g. out of memory?): {reason}",
            "metrics": {},
            "wall_time_s": round(time.perf_counter() - sent, 6),
        }
        self._store(RunOutcome(record))

    def _charge(self, spec: RunSpec) -> int:
        slot = (spec.point, spec.replication)
        self.attempts[slot] = self.attempts.get(slot, 0) + 1
        return self.attempts[slot]

    def _store(self, outcome: RunOutcome) -> None:
        record = outcome.record
        if outcome.result is not None:  # sent back by a worker that does not see ``out``
            # tables first: a part file promises that the run is complete
            slot = store.tables_dir(self.out, record["point"], record["replication"])
            with staged_run_dir(slot) as stage:
                write_run(outcome.result, stage)
        store.write_part(self.out, record)
        self.stored.add((record["point"], record["replication"]))
        self.run_seconds.append(record["wall_time_s"])
        del self.run_seconds[:-64]
        self.bar.advance(record["status"] == "ok")

    def _lose(self, chunk: list[RunSpec], exc: BaseException) -> None:
        self.lost.extend(chunk)
        self.lost_reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]

    def _wind_down(self) -> None:
        """After Ctrl-C: cancel queued chunks, keep the runs in flight unless asked again."""
        for future in list(self.pending):
            if future.cancel():
                del self.pending[future]
        if not self.pending:
            return
        in_flight = sum(len(chunk) for chunk, _, _ in self.pending.values())
        self.bar.note(
            f"interrupted: finishing {in_flight} runs in flight (Ctrl-C again to abandon them)"
        )
        asked = self.stops.count
        while self.pending:
            if self.stops.count > asked:
                self.backend.abandon()
                return
            finished, _ = wait(self.pending, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                self.pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    outcomes = future.result()
                except Exception:  # lost while stopping: they run again on resume
                    continue
                for outcome in outcomes:
                    if not outcome.record.get("retry"):
                        self._store(outcome)


# ------------------------------------------------------------------ writing
def _records(out: Path, counts: dict[int, int]) -> list[dict[str, Any]]:
    """The part files of the planned replications (more on disk are kept, not used)."""
    return [r for (p, rep), r in store.read_parts(out).items() if rep < counts.get(p, 0)]


def _finish(
    out: Path,
    stage: _Stage,
    counts: dict[int, int],
    executor: str,
    status: str,
    *,
    started: float,
    reused: int,
) -> SweepResult:
    """Assemble runs.parquet and points.parquet from the part files; write the manifest."""
    experiment = stage.experiment
    records = _records(out, counts)
    runs = store.runs_frame(experiment, records)
    params = store.params_frame(experiment)
    damage = stage.damage if stage.damage in runs.columns else None
    points = point_table(
        runs, params, baseline=experiment.baseline, damage=damage, seed=experiment.seed
    )
    met = None
    if stage.precision is not None and len(runs):
        shortfalls = stage.assess(runs)
        points["replications"] = [counts[p] for p in points["point"]]
        points["target_met"] = [shortfalls.get(p, _UNRUN).met for p in points["point"]]
        points["target_worst_metric"] = [
            shortfalls.get(p, _UNRUN).worst_metric for p in points["point"]
        ]
        points["target_worst_ratio"] = [
            shortfalls.get(p, _UNRUN).worst_ratio for p in points["point"]
        ]
        met = int(points["target_met"].sum())
    chosen = None
    if stage.selection is not None and len(runs):
        outcome = stage.select_step(runs, counts)
        points = selecting.with_selection(points, outcome)
        keys = [p.params for p in experiment.points]
        chosen = selecting.manifest_entry(stage.selection, outcome, stage.first_stage, keys)
    atomic_write_parquet(runs, out / "runs.parquet")
    atomic_write_parquet(points, out / "points.parquet")
    if status == "complete" and len(records) < sum(counts.values()):
        status = "incomplete"
    manifest = _write_manifest(
        out,
        stage,
        counts,
        executor,
        status,
        started=started,
        reused=reused,
        runs=runs,
        met=met,
        chosen=chosen,
    )
    return SweepResult(out, runs, points, manifest)


_UNRUN = Shortfall(met=False, worst_metric=None, worst_ratio=math.nan)


def _write_manifest(
    out: Path,
    stage: _Stage,
    planned: dict[int, int],
    executor: str,
    status: str,
    *,
    started: float,
    reused: int,
    runs: pd.DataFrame | None = None,
    met: int | None = None,
    chosen: dict[str, Any] | None = None,
) -> dict[str, Any]:
    experiment = stage.experiment
    now = time.time()
    total = sum(planned.values())
    counts = {"total": total}
    timings = {"started": _iso(started), "updated": _iso(now), "wall_s": round(now - started, 3)}
    if runs is not None:
        ok = int((runs["status"] == "ok").sum())
        counts.update(ok=ok, failed=int(len(runs) - ok), missing=total - len(runs), reused=reused)
        timings["run_s_total"] = round(float(runs["wall_time_s"].sum()), 3)
        timings["run_s_median"] = (
            round(float(runs["wall_time_s"].median()), 4) if len(runs) else None
        )
    manifest = {
        "status": status,
        "mailnet_version": __version__,
        "environment": environment.environment(),
        "executor": executor,
        "experiment": experiment.to_dict(),
        "points": [p.params for p in experiment.points],
        "base_scenario": experiment.base_scenario.to_dict(),
        "runs": counts,
        "timings": timings,
    }
    if stage.precision is not None:
        precision: dict[str, Any] = stage.precision.describe()
        precision.update(
            max_replications=stage.maximum,
            replications=[planned[p.index] for p in experiment.points],
            points_met=met,
        )
        manifest["precision"] = precision
    if chosen is not None:
        manifest["selection"] = chosen
    store.write_json(out / "manifest.json", manifest)
    return manifest


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
