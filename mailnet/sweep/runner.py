"""Running an experiment: plan the runs, skip those already done, execute the rest, write
the results directory.

Runs are submitted in small chunks, at most two per execution slot at a time, so results
stream back, an interruption loses little, and a cluster is never flooded with tasks.
Chunks grow until each takes about a second, which keeps per-task dispatch overhead
(about 2 ms on Dask) small against the work.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mailnet import environment
from mailnet.output import atomic_write_parquet, write_run
from mailnet.sweep import store
from mailnet.sweep.backends import Backend, SweepError, check_options, open_backend
from mailnet.sweep.experiment import Experiment, load_experiment
from mailnet.sweep.progress import SweepProgress
from mailnet.sweep.stats import point_table
from mailnet.sweep.worker import RunOutcome, RunSpec, run_chunk
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
) -> SweepResult:
    """Run every grid point and replication of ``experiment`` (a file or an ``Experiment``).

    Execution: ``workers`` local processes (default one per core; ``1`` runs in this
    process), or a Dask cluster given as a ``Client`` (``client``) or an address
    (``scheduler``, e.g. ``"tcp://host:8786"``); results are identical on each.

    Results go to ``out`` (default ``results/<experiment name>``): ``runs.parquet``,
    ``points.parquet``, ``manifest.json``, one part file per run under ``parts/`` and,
    with ``keep_tables``, each run's tables under ``runs/<point>-<replication>/``.
    ``resume`` runs only what ``out`` lacks (a failed run stays failed; runs lost with a
    worker run again); without it, ``out`` must not hold runs yet.
    ``chunk_size`` fixes the runs per task (default: adaptive, about a second of work).
    Ctrl-C stops submitting, lets runs in flight finish (a second Ctrl-C abandons them)
    and writes the tables from what finished.

    Raises ``ScenarioError`` for a bad experiment and ``SweepError`` for bad options.
    Local worker processes import the main module, so a script that calls ``sweep``
    must do so under ``if __name__ == "__main__":`` (notebooks need nothing).
    """
    started = time.time()
    check_options(workers, client, scheduler)
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    out = Path(out) if out is not None else Path("results") / experiment.name
    if chunk_size is not None and chunk_size < 1:
        raise SweepError(f"chunk_size must be at least 1, not {chunk_size}")
    plan = _plan(experiment)
    done = _reusable(out, plan, resume, keep_tables)
    todo = [spec for spec in plan if (spec.point, spec.replication) not in done]
    out.mkdir(parents=True, exist_ok=True)

    if not todo:
        return _finish(
            out,
            experiment,
            "none (every run was done)",
            "complete",
            started=started,
            reused=len(done),
        )
    failed_before = sum(r["status"] == "failed" for r in done.values())
    label = f"{experiment.name}: {len(experiment.points)} points x {experiment.replications}"
    with (
        open_backend(workers, client, scheduler) as backend,
        SweepProgress(len(plan), len(done), failed_before, label, progress) as bar,
    ):
        _write_manifest(
            out, experiment, backend.description, "running", started=started, reused=len(done)
        )
        drive = _Drive(backend, out, keep_tables, bar, chunk_size)
        drive.run(todo)
    if drive.lost:
        bar.note(
            f"[yellow]{len(drive.lost)} runs lost ({drive.lost_reason}); --resume runs them again"
        )
    status = "interrupted" if drive.interrupted else "complete"
    return _finish(out, experiment, backend.description, status, started=started, reused=len(done))


# ------------------------------------------------------------------ planning
def _plan(experiment: Experiment) -> list[RunSpec]:
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
        )
        for p, r, seed in experiment.runs()
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
                "experiment (base, grid values or seed changed); choose "
                "another --out"
            )
        if keep_tables and not (store.tables_dir(out, *slot) / "manifest.json").exists():
            continue  # its tables were not kept: run it again
        done[slot] = record
    return done


# ------------------------------------------------------------------ executing
class _Drive:
    """Submits chunks of runs, writes each finished run, and handles Ctrl-C."""

    def __init__(
        self,
        backend: Backend,
        out: Path,
        keep_tables: bool,
        bar: SweepProgress,
        chunk_size: int | None,
    ):
        self.backend = backend
        self.out = out
        self.keep_tables = keep_tables
        self.bar = bar
        self.fixed_chunk = chunk_size
        self.run_seconds: list[float] = []
        self.pending: dict[Future[list[RunOutcome]], list[RunSpec]] = {}
        self.lost: list[RunSpec] = []
        self.lost_reason = ""
        self.interrupted = False

    def run(self, todo: list[RunSpec]) -> None:
        queue = deque(todo)
        try:
            while queue or self.pending:
                self._submit(queue)
                finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._collect(future)
        except KeyboardInterrupt:
            self.interrupted = True
            self._wind_down()

    def _submit(self, queue: deque[RunSpec]) -> None:
        slots = self.backend.slots()
        while queue and len(self.pending) < 2 * slots:
            size = min(self._chunk_size(len(queue), slots), len(queue))
            chunk = [queue.popleft() for _ in range(size)]
            try:
                future = self.backend.executor.submit(run_chunk, chunk, self.keep_tables)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # the executor itself is broken: nothing more can run
                self._lose(chunk + list(queue), exc)
                queue.clear()
                return
            self.pending[future] = chunk

    def _chunk_size(self, remaining: int, slots: int) -> int:
        if self.fixed_chunk is not None:
            return self.fixed_chunk
        if not self.run_seconds:
            return 1
        typical = sorted(self.run_seconds)[len(self.run_seconds) // 2]
        size = int(TARGET_CHUNK_S / max(typical, 1e-6))
        # near the end, smaller chunks keep every slot busy until the last run
        return max(1, min(size, self.backend.max_chunk, remaining // (2 * slots)))

    def _collect(self, future: Future[list[RunOutcome]]) -> None:
        chunk = self.pending.pop(future)
        try:
            outcomes = future.result()
        except Exception as exc:  # a lost worker, not a failed run: these run again on resume
            self._lose(chunk, exc)
            return
        for outcome in outcomes:
            self._store(outcome)

    def _store(self, outcome: RunOutcome) -> None:
        record = outcome.record
        if outcome.result is not None:
            # tables first: a part file promises that the run is complete
            write_run(
                outcome.result, store.tables_dir(self.out, record["point"], record["replication"])
            )
        store.write_part(self.out, record)
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
        self.bar.note(
            f"interrupted: finishing {sum(map(len, self.pending.values()))} runs "
            "in flight (Ctrl-C again to abandon them)"
        )
        try:
            while self.pending:
                finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    if not future.cancelled():
                        self._collect(future)
                    else:
                        self.pending.pop(future)
        except KeyboardInterrupt:
            self.backend.abandon()


# ------------------------------------------------------------------ writing
def _finish(
    out: Path, experiment: Experiment, executor: str, status: str, *, started: float, reused: int
) -> SweepResult:
    """Assemble runs.parquet and points.parquet from the part files; write the manifest."""
    wanted = {(p.index, r) for p, r, _ in experiment.runs()}
    records = [r for slot, r in store.read_parts(out).items() if slot in wanted]
    runs = store.runs_frame(experiment, records)
    points = point_table(runs, store.params_frame(experiment))
    atomic_write_parquet(runs, out / "runs.parquet")
    atomic_write_parquet(points, out / "points.parquet")
    if status == "complete" and len(records) < experiment.n_runs:
        status = "incomplete"
    manifest = _write_manifest(
        out, experiment, executor, status, started=started, reused=reused, runs=runs
    )
    return SweepResult(out, runs, points, manifest)


def _write_manifest(
    out: Path,
    experiment: Experiment,
    executor: str,
    status: str,
    *,
    started: float,
    reused: int,
    runs: pd.DataFrame | None = None,
) -> dict[str, Any]:
    now = time.time()
    counts = {"total": experiment.n_runs}
    timings = {"started": _iso(started), "updated": _iso(now), "wall_s": round(now - started, 3)}
    if runs is not None:
        ok = int((runs["status"] == "ok").sum())
        counts.update(
            ok=ok, failed=int(len(runs) - ok), missing=experiment.n_runs - len(runs), reused=reused
        )
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
    store.write_json(out / "manifest.json", manifest)
    return manifest


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
