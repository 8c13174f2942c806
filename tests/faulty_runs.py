"""Tasks that stand in for the sweep's ``run_chunk`` and kill the worker process running
them, as the kernel's out-of-memory killer would: importable by worker processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from mailnet.sweep.worker import KeptTables, RunOutcome, RunSpec, run_chunk

VICTIM = (1, 0)
"""The (point, replication) whose worker dies."""


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def killed_always(specs: list[RunSpec], tables: KeptTables | None = None) -> list[RunOutcome]:
    """Kill the worker whenever the victim runs."""
    if any((s.point, s.replication) == VICTIM for s in specs):
        _die()
    return run_chunk(specs, tables)


def killed_once(specs: list[RunSpec], tables: KeptTables | None = None) -> list[RunOutcome]:
    """Kill the worker the first time the victim runs (a marker file beside the
    experiment remembers it), then run normally."""
    for spec in specs:
        marker = Path(spec.base_dir) / f"killed-{spec.point}-{spec.replication}"
        if (spec.point, spec.replication) == VICTIM and not marker.exists():
            marker.touch()
            _die()
    return run_chunk(specs, tables)
