"""The results directory of a sweep: one part file per finished run, and the tables built
from them.

Each run's record is written atomically to ``parts/<point>-<replication>.json`` as soon as
it finishes, so a killed sweep loses only the runs in flight and ``--resume`` knows what is
left. ``runs.parquet`` is always assembled from the part files, so a resumed sweep gives
the same table as one never interrupted.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mailnet.metric_catalog import unit_of
from mailnet.output import atomic_write_text
from mailnet.sweep.backends import SweepError
from mailnet.sweep.experiment import Experiment, Factor

PARTS = "parts"
TABLES = "runs"
FIXED_COLUMNS = ("point", "replication", "seed", "status", "error", "wall_time_s")
LOCK = ".sweep.lock"


def is_sweep_dir(out: Path) -> bool:
    """Whether ``out`` holds a sweep's results (its manifest, or part files)."""
    if (out / PARTS).is_dir():
        return True
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "experiment" in manifest


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Create ``out`` if needed and hold its lock for the block.

    Refuses (``SweepError``) a path that is a file, a non-empty directory that is not a
    sweep's (nothing of the user's is ever overwritten), and a directory another sweep
    is writing: the lock is an ``flock`` on ``out/.sweep.lock``, released by the kernel
    when its holder ends, however it ends.
    """
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and not is_sweep_dir(out) and any(p.name != LOCK for p in out.iterdir()):
        raise SweepError(
            f"{out}: not empty and not a sweep's results directory; choose another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SweepError(f"{out}: cannot write there ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise SweepError(
                f"{out}: another sweep (process {holder}) is writing there; "
                "wait for it to end or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def part_path(out: Path, point: int, replication: int) -> Path:
    return out / PARTS / f"{point}-{replication}.json"


def tables_dir(out: Path, point: int, replication: int) -> Path:
    """Where ``--keep-tables`` writes one run's tables."""
    return out / TABLES / f"{point}-{replication}"


def write_part(out: Path, record: dict[str, Any]) -> None:
    """Write one run's record atomically (a reader never sees half a file)."""
    path = part_path(out, record["point"], record["replication"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record) + "\n")


def read_parts(out: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """Every readable part file as ``{(point, replication): record}``.

    Temporary files of interrupted writes start with a dot and are ignored, as is a part
    that cannot be parsed (its run counts as missing and runs again on resume).
    """
    records: dict[tuple[int, int], dict[str, Any]] = {}
    folder = out / PARTS
    if not folder.is_dir():
        return records
    for path in folder.glob("[!.]*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            records[(int(record["point"]), int(record["replication"]))] = record
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records


def runs_frame(experiment: Experiment, records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run, sorted by (point, replication).

    Columns: ``point``, one per swept key (named by its key path), ``replication``,
    ``seed``, ``status``, ``error``, ``wall_time_s`` (seconds), then every flattened summary
    metric in order of first appearance. A count missing from an ok run's summary is 0;
    other missing or undefined values are NaN/None.
    """
    records = sorted(records, key=lambda r: (r["point"], r["replication"]))
    converters = {f.key: _column_converter(f) for f in experiment.factors}
    metric_names = list(dict.fromkeys(name for r in records for name in r.get("metrics", {})))
    rows = []
    for record in records:
        point = experiment.points[record["point"]]
        params = point.params
        row = {"point": record["point"]}
        if experiment.labels:
            row["label"] = point.label
        row.update({key: converters[key](value) for key, value in params.items()})
        row.update({name: record.get(name) for name in FIXED_COLUMNS[1:]})
        metrics = record.get("metrics", {})
        row.update({name: metrics.get(name) for name in metric_names})
        rows.append(row)
    label = ["label"] if experiment.labels else []
    columns = ["point", *label, *converters, *FIXED_COLUMNS[1:], *metric_names]
    frame = pd.DataFrame(rows, columns=columns)
    # a count a run's summary leaves out (no listing on that list, no bounce with that
    # code) is zero in that run, not unknown: averages over replications must count it
    ok = frame["status"] == "ok"
    for name in metric_names:
        if unit_of(name) == "count":
            frame.loc[ok, name] = frame.loc[ok, name].fillna(0)
    return frame


def params_frame(experiment: Experiment) -> pd.DataFrame:
    """One row per grid point: ``point`` and the swept values, typed as in ``runs_frame``."""
    converters = {f.key: _column_converter(f) for f in experiment.factors}
    label = ["label"] if experiment.labels else []
    rows = [
        {
            "point": p.index,
            **({"label": p.label} if label else {}),
            **{k: converters[k](v) for k, v in p.params.items()},
        }
        for p in experiment.points
    ]
    return pd.DataFrame(rows, columns=["point", *label, *converters])


def _column_converter(factor: Factor) -> Callable[[Any], Any]:
    """Keep a factor's values as they are if they share one scalar type (ints and floats
    together become floats); otherwise store every value as text, so the column has one
    Parquet type."""
    kinds = {_kind(v) for v in factor.values}
    if kinds == {"int", "float"}:
        return float
    if len(kinds) == 1 and kinds <= {"bool", "int", "float", "str"}:
        return _identity
    return _as_text


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "other"


def _identity(value: Any) -> Any:
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
