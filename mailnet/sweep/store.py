"""The results directory of a sweep: one part file per finished run, and the tables built
from them.

Each run's record is written atomically to ``parts/<point>-<replication>.json`` as soon as
it finishes, so a killed sweep loses only the runs in flight and ``--resume`` knows what is
left. ``runs.parquet`` is always assembled from the part files, so a resumed sweep gives
the same table as one never interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mailnet.output import atomic_write_text
from mailnet.sweep.experiment import Experiment, Factor

PARTS = "parts"
TABLES = "runs"
FIXED_COLUMNS = ("point", "replication", "seed", "status", "error", "wall_time_s")


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
    metric in order of first appearance (missing or undefined values are NaN/None).
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
    return pd.DataFrame(rows, columns=columns)


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
