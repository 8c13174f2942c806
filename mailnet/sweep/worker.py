"""The code that runs on workers: plain data in (scenario mapping, seed), plain data out.

A SimPy environment cannot be pickled, so each worker builds the scenario and world itself.
A run that raises is returned as a failed record instead of raising, so one bad run never
stops a sweep; a run over its time limit is a failed record marked ``retry``, which the
sweep may run again.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailnet.metrics import flatten
from mailnet.scenario import Scenario
from mailnet.simulate import RunResult, simulate
from mailnet.sweep.deadline import RunTimeout, deadline

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


@dataclass
class RunOutcome:
    """A run's record (plain data, see ``run_one``) and, if asked for, its tables."""

    record: dict[str, Any]
    result: RunResult | None = None


def run_chunk(specs: list[RunSpec], keep_tables: bool = False) -> list[RunOutcome]:
    """Run ``specs`` one after another in this process; never raises for a failed run."""
    return [run_one(spec, keep_tables) for spec in specs]


def run_one(spec: RunSpec, keep_tables: bool = False) -> RunOutcome:
    """Build and run one scenario.

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
            scenario = Scenario.from_dict(
                spec.scenario, source=spec.source, base_dir=Path(spec.base_dir)
            )
            result = simulate(
                scenario,
                seed=spec.seed,
                base_dir=spec.base_dir,
                source=spec.source,
                summary_only=not keep_tables,  # nothing keeps the rows: fold them as they come
            )
        record["metrics"] = {k: _plain(v) for k, v in flatten(result.summary).items()}
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
    return RunOutcome(record, result if keep_tables else None)


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
