"""Whether a run or a sweep may start: its estimate (``mailnet.estimate``) against the
machine's memory or ``--max-memory``, against the free space of the disk its tables go to,
and against ``--max-time`` of estimated wall time, refused as a one-line
``ScenarioError`` before anything runs.

``mailnet run`` streams its tables to its run directory and a sweep with ``--keep-tables``
each run's to the results directory, so both are priced at a streamed run's memory and
their tables' size on disk; a sweep keeping no tables at a summary-only run's memory.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mailnet.errors import ScenarioError
from mailnet.estimate import (
    RunEstimate,
    SweepEstimate,
    estimate_run,
    estimate_sweep,
    format_bytes,
)
from mailnet.scenario import Scenario
from mailnet.units import format_duration, parse_duration

if TYPE_CHECKING:
    from mailnet.sweep.experiment import Experiment

MAX_TIME_S = 7 * 86400.0
"""The estimated wall time a run or sweep may take without ``--max-time``: a week. What
takes longer is nearly always a mistake (a queue run or a sample every millisecond, a
duration in days meant as hours), and it would hold the machine for that long before
anyone noticed; a deliberate one gives ``--max-time``."""

UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


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


def parse_max_time(text: str | None) -> float:
    """Seconds in ``--max-time`` (``"30d"``, ``"12h"``; ``MAX_TIME_S`` when ``None``).
    Raises ``ScenarioError`` naming ``--max-time``."""
    if text is None:
        return MAX_TIME_S
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise ScenarioError("--max-time", "", f"{error}") from None
    if seconds <= 0:
        raise ScenarioError("--max-time", "", f"must be positive, not {text!r}")
    return seconds


def check_time(seconds: float, limit: float, source: str, what: str) -> None:
    """Refuse (``ScenarioError`` naming ``source``) when the estimated wall time
    ``seconds`` exceeds ``limit`` (seconds). ``what`` is the estimate to show."""
    if seconds > limit:
        raise ScenarioError(
            source,
            "",
            f"too long to run: {what}; more than --max-time ({format_duration(limit)}) "
            f"of estimated wall time; shorten it, or give --max-time DURATION to allow more",
        )


def free_space(path: Path) -> int:
    """Bytes free for this user on the filesystem that holds, or will hold, ``path`` (its
    nearest existing ancestor); 0 when no ancestor can be read."""
    for folder in (path, *path.absolute().parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return 0


def check_disk(needed: float, out: Path, source: str, what: str) -> None:
    """Refuse (``ScenarioError`` naming ``source``) when ``needed`` bytes of tables exceed
    the free space where ``out`` is written. ``what`` is the estimate to show."""
    free = free_space(out)
    if free and needed > free:
        raise ScenarioError(
            source,
            "",
            f"too large to run: {what}; more than the free space of the disk {out} is on "
            f"({format_bytes(free)}); shorten it, or free some space",
        )


def refuse_oversized_run(
    scenario: Scenario,
    path: Path,
    max_memory: str | None = None,
    *,
    read_back: bool = False,
    out: Path | None = None,
    summary_only: bool = False,
    max_time: str | None = None,
) -> RunEstimate:
    """The estimate of ``mailnet run`` of ``scenario`` (read from ``path``), which streams
    its tables to the run directory ``out`` (``read_back``: and reads them back at the end,
    for ``--by`` or ``--maillog``), or keeps none (``summary_only``: its memory follows the
    mail in flight, so only its time is checked); ``ScenarioError`` naming ``path`` when it
    needs more memory than ``max_memory`` (``"8GB"``) or the machine, its tables more than
    the free space of ``out``'s disk, or more wall time than ``max_time`` (``"30d"``;
    default ``MAX_TIME_S``)."""
    limit = parse_size(max_memory) if max_memory is not None else None
    time_limit = parse_max_time(max_time)
    estimate = estimate_run(scenario, path.parent)
    if summary_only:
        estimate = estimate.summary_only()
        check_time(estimate.seconds, time_limit, str(path), estimate.describe())
        return estimate
    estimate = estimate.streamed(read_back=read_back)
    check_memory(estimate.peak_bytes, limit, str(path), estimate.describe())
    if out is not None:
        check_disk(estimate.disk_bytes, out, str(path), estimate.describe())
    check_time(estimate.seconds, time_limit, str(path), estimate.describe())
    return estimate


def refuse_oversized_sweep(
    experiment: Experiment,
    workers: int,
    max_memory: str | None = None,
    *,
    keep_tables: bool = True,
    out: Path | None = None,
    max_time: str | None = None,
) -> SweepEstimate:
    """The estimate of ``experiment`` on ``workers`` processes at once; ``ScenarioError``
    naming the experiment file when they would need more memory than ``max_memory`` or
    the machine. With ``keep_tables`` each run streams its tables to its directory under
    ``out``, where every run's must fit in the free space; without them it is
    summary-only, and it is priced so. Its wall time, every run spread over the workers,
    must be within ``max_time`` (default ``MAX_TIME_S``). The replications counted are the
    experiment's own: a sweep to a precision target may run more."""
    limit = parse_size(max_memory) if max_memory is not None else None
    time_limit = parse_max_time(max_time)
    base_dir = experiment.base_path.parent
    points = [
        estimate_run(Scenario.from_dict(p.scenario, experiment.source, base_dir), base_dir)
        for p in experiment.points
    ]
    estimate = estimate_sweep(
        points,
        experiment.replications,
        workers,
        summary_only=not keep_tables,
        streamed=keep_tables,
    )
    check_memory(estimate.peak_bytes, limit, experiment.source, estimate.describe())
    if out is not None and keep_tables:
        check_disk(estimate.disk_bytes, out, experiment.source, estimate.describe())
    check_time(estimate.seconds, time_limit, experiment.source, estimate.describe())
    return estimate


def workers_for(requested: int | None, runs: int, cores: int | None = None) -> int:
    """Local worker processes for ``runs`` runs: ``requested`` (default one per core),
    but never more than the cores or the runs."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(requested or cores, cores, runs))
