"""The results directory of a sweep: one part file per finished run, and the tables built
from them.

Each run's record is written atomically to ``parts/<point>-<replication>.json`` as soon as
it finishes, so a killed sweep loses only the runs in flight and ``--resume`` knows what is
left. ``runs.parquet`` is always assembled from the part files, so a resumed sweep gives
the same table as one never interrupted. A results directory kept without its part files
(committed results keep only the tables) gets them back from ``runs.parquet`` on resume
(``restore_parts``), so a finished sweep's points are recomputed without running again.

With ``--keep-tables`` each run's tables go to ``runs/<point>-<replication>/``, written by
the worker that runs it (``worker.KeptTables``) before the sweep writes its part file:
a part file of a run whose directory lacks ``manifest.json`` (written last) does not count
as done when tables are asked for.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.metric_catalog import unit_of
from mailnet.output import atomic_write_text
from mailnet.sweep.backends import SweepError
from mailnet.sweep.experiment import Experiment, Factor, replication_seed

PARTS = "parts"
TABLES = "runs"
FIXED_COLUMNS = ("point", "replication", "seed", "status", "error", "wall_time_s")
LOCK = ".sweep.lock"
SHARE_MARK = f"{TABLES}/.sweep-id"
"""The file (under the results directory) whose token tells a worker that it sees the
results directory of the sweep that sent it (``worker.KeptTables``)."""


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


def keep_tables_in(out: Path) -> str:
    """Make ``out`` ready for runs that write their tables there; returns the token its
    ``SHARE_MARK`` now holds (new for each sweep).

    Removes what runs stopped half-way left (their staging directories, hidden names under
    ``runs/``): call it holding the lock, before any worker starts.
    """
    folder = out / TABLES
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob(".*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    token = secrets.token_hex(16)
    atomic_write_text(out / SHARE_MARK, token)
    return token


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


def restore_parts(out: Path, experiment: Experiment) -> int:
    """Write the part files of ``out`` back from its ``runs.parquet`` when it has none
    (results kept without ``parts/``), so that ``--resume`` finds every recorded run done
    and only rebuilds ``points.parquet`` and the manifest; returns how many were written.

    Nothing happens if ``out`` already has part files or lacks ``runs.parquet`` or its
    manifest. Refuses (``SweepError``) tables from another experiment: the manifest's
    experiment (its file paths aside) and base scenario must be this one's, and every row
    its point's values and its replication's seed. Each record is the run's row as the
    worker wrote it: a metric the table leaves undefined is ``None``, as it was absent.
    """
    table, manifest_path = out / "runs.parquet", out / "manifest.json"
    if read_parts(out) or not table.is_file() or not manifest_path.is_file():
        return 0
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        runs = pd.read_parquet(table)
    except (OSError, ValueError) as exc:
        raise SweepError(f"{out}: cannot read its tables to resume from ({exc})") from None
    _check_same_experiment(out, experiment, manifest, runs)
    metrics = [c for c in runs.columns if c not in _row_columns(experiment)]
    for row in runs.to_dict("records"):
        record = {name: _plain(row[name]) for name in ("point", "replication", "seed")}
        point = experiment.points[record["point"]]
        record["key"] = f"{point.fingerprint}-{record['seed']}"
        record.update({name: _plain(row[name]) for name in ("status", "error")})
        record["metrics"] = {m: _plain(row[m]) for m in metrics}
        record["wall_time_s"] = _plain(row["wall_time_s"])
        write_part(out, record)
    return len(runs)


def _row_columns(experiment: Experiment) -> set[str]:
    label = {"label"} if experiment.labels else set()
    return {*FIXED_COLUMNS, *label, *(f.key for f in experiment.factors)}


def _check_same_experiment(
    out: Path, experiment: Experiment, manifest: dict[str, Any], runs: pd.DataFrame
) -> None:
    """Refuse ``runs`` (read from ``out``) unless they are runs of ``experiment``."""
    recorded = manifest.get("experiment") if isinstance(manifest, dict) else None
    mine = _as_json(experiment.to_dict())
    if not isinstance(recorded, dict):
        raise SweepError(f"{out}/manifest.json: records no experiment; choose another --out")
    # the file paths depend on where the sweep was started from; the base's content counts
    changed = [k for k in mine if k not in {"source", "base"} and recorded.get(k) != mine[k]]
    if manifest.get("base_scenario") != _as_json(experiment.base_scenario.to_dict()):
        changed.append("base scenario")
    expected = params_frame(experiment).set_index("point")
    for values in runs.to_dict("records"):
        point, replication = int(values["point"]), int(values["replication"])
        if point not in expected.index or values["seed"] != replication_seed(
            experiment.seed, replication
        ):
            changed.append(f"run {point}-{replication}")
        elif any(values[k] != v for k, v in expected.loc[point].items()):
            changed.append(f"point {point}'s values")
        if changed:
            break
    if changed:
        raise SweepError(
            f"{out}/runs.parquet: comes from a different experiment ({changed[0]} changed); "
            "choose another --out"
        )


def _as_json(data: Any) -> Any:
    """``data`` as a manifest records it (tuples become lists, other objects text)."""
    return json.loads(json.dumps(data, default=str))


def _plain(value: Any) -> Any:
    """A table cell as the JSON of a part file: NaN and missing become ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
