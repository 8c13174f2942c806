"""The code that runs on workers: plain data in (scenario mapping, seed), plain data out.

A SimPy environment cannot be pickled, so each worker builds the scenario and world itself.
A run that raises is returned as a failed record instead of raising, so one bad run never
stops a sweep; a run over its time limit is a failed record marked ``retry``, which the
sweep may run again.

With ``--keep-tables`` (``KeptTables``) a worker streams its run's tables straight into the
run's directory of the results as the run goes, as ``mailnet run`` does, so only the
record crosses back to the sweep. A worker that cannot see the results directory (a
cluster without a shared filesystem) streams them to a local temporary directory instead
and sends them back to be written by the sweep.
"""

from __future__ import annotations

import math
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailnet.metrics import flatten
from mailnet.output import staged_run_dir, write_run
from mailnet.scenario import Scenario
from mailnet.simulate import RunResult, simulate
from mailnet.sweep.deadline import RunTimeout, deadline
from mailnet.sweep.store import SHARE_MARK, tables_dir

ERROR_CHARS = 500


@dataclass(frozen=True)
class RunSpec:
    """One run to perform: grid point ``point``, replication ``replication`` with ``seed``.

    ``scenario`` is the raw scenario mapping; ``base_dir`` resolves its relative trace
    paths (so a remote worker needs the same files at the same path); ``source`` names
    the experiment in error messages; ``key`` identifies the scenario and seed in results.
    """

    point: int
    replication: int
    seed: int
    scenario: dict[str, Any]
    base_dir: str
    source: str
    key: str
    timeout: float | None = None
    """Wall-clock seconds the run may take (``--run-timeout``), or None."""


@dataclass(frozen=True)
class KeptTables:
    """Where runs keep their tables (``--keep-tables``): under ``out``, the sweep's
    results directory (an absolute path), in ``store.tables_dir``. ``token`` is the text
    of the sweep's mark file there (``store.SHARE_MARK``): a worker that reads the same
    token sees the same directory."""

    out: str
    token: str

    def shared(self) -> bool:
        """Whether this process sees the sweep's results directory."""
        try:
            return (Path(self.out) / SHARE_MARK).read_text(encoding="ascii") == self.token
        except (OSError, ValueError):
            return False


@dataclass
class RunOutcome:
    """A run's record (plain data, see ``run_one``) and, from a worker that does not
    see the results directory, its tables for the sweep to write."""

    record: dict[str, Any]
    result: RunResult | None = None


def run_chunk(specs: list[RunSpec], tables: KeptTables | None = None) -> list[RunOutcome]:
    """Run ``specs`` one after another in this process; never raises for a failed run."""
    return [run_one(spec, tables) for spec in specs]


def run_one(spec: RunSpec, tables: KeptTables | None = None) -> RunOutcome:
    """Build and run one scenario; with ``tables``, keep its tables (``_run``).

    The record holds ``point``, ``replication``, ``seed``, ``key``, ``status`` (``"ok"`` or
    ``"failed"``), ``error`` (one line, or None), ``wall_time_s`` (seconds, build and run)
    and ``metrics`` (the flattened summary, JSON-ready; empty for a failed run). A run
    stopped by ``spec.timeout`` also has ``retry: True``.
    """
    started = time.perf_counter()
    record = {
        "point": spec.point,
        "replication": spec.replication,
        "seed": spec.seed,
        "key": spec.key,
        "status": "ok",
        "error": None,
    }
    result = None
    try:
        with deadline(spec.timeout):
            summary, result = _run(spec, tables)
        record["metrics"] = {k: _plain(v) for k, v in flatten(summary).items()}
    except RunTimeout:
        record.update(
            status="failed",
            error=f"RunTimeout: the run took longer than --run-timeout {spec.timeout:g} s",
            metrics={},
            retry=True,
        )
        result = None
    except Exception as exc:  # any failure of the model is the run's result, not the sweep's
        record.update(
            status="failed",
            error=_one_line(exc),
            metrics={},
            traceback=traceback.format_exc(limit=-8),
        )
        result = None
    record["wall_time_s"] = round(time.perf_counter() - started, 6)
    return RunOutcome(record, result)


def _run(spec: RunSpec, tables: KeptTables | None) -> tuple[dict[str, Any], RunResult | None]:
    """Run ``spec``: its summary, and its tables when they are to be sent back.

    Without ``tables`` the run is summary-only (nothing keeps the rows: they are folded as
    they come). With them its tables stream to Parquet as the run goes and the summary is
    folded, as in ``mailnet run``: into the run's directory of the results, staged beside
    it and swapped in whole once written (a worker stopped half-way leaves only a hidden
    staging directory, which the next sweep there removes), or, for a worker that does not
    see that directory, into a local temporary one read back to send.
    """
    scenario = Scenario.from_dict(spec.scenario, source=spec.source, base_dir=Path(spec.base_dir))
    options: dict[str, Any] = {
        "seed": spec.seed,
        "base_dir": spec.base_dir,
        "source": spec.source,
    }
    if tables is None:
        return simulate(scenario, summary_only=True, **options).summary, None
    if tables.shared():
        destination = tables_dir(Path(tables.out), spec.point, spec.replication)
        with staged_run_dir(destination) as stage:
            result = simulate(scenario, tables_dir=stage, **options)
            write_run(result, stage)
        return result.summary, None
    with tempfile.TemporaryDirectory(prefix="mailnet-run-") as local:
        result = simulate(scenario, tables_dir=local, **options).read_tables()
    return result.summary, result


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars become Python ones."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
