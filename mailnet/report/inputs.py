"""Reading the directories a report is made from: a run directory (``mailnet run``) or a
sweep directory (``mailnet sweep``, recognised by its ``points.parquet``).

Bad input (a missing directory, one that is neither kind, an unreadable table) raises
``ScenarioError`` naming the directory, which the command line prints as one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mailnet.errors import ScenarioError

RUN_TABLES = (
    "messages",
    "attempts",
    "queues",
    "listings",
    "reputation",
    "suspensions",
    "changes",
)
OPTIONAL_RUN_TABLES = ("listings", "reputation", "suspensions", "changes")

CORE_COLUMNS = {
    "messages": ("message_id", "recipient", "is_dsn", "created_at", "delivered_at", "status"),
    "attempts": ("message_id", "recipient", "hop", "started_at", "ended_at", "outcome"),
    "queues": ("time", "kind", "entity", "metric", "value"),
}
"""Columns every run directory's tables have had since the first release: a table without
them is not a mailnet table."""
"""Tables older run directories lack: read as empty."""


@dataclass
class RunData:
    """A run directory, loaded: its six tables, ``summary.json``, ``manifest.json`` and the
    resolved scenario as text (empty if a file is absent)."""

    path: Path
    messages: pd.DataFrame
    attempts: pd.DataFrame
    queues: pd.DataFrame
    listings: pd.DataFrame
    reputation: pd.DataFrame
    suspensions: pd.DataFrame = field(default_factory=pd.DataFrame)
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    scenario_toml: str = ""

    @property
    def duration(self) -> float | None:
        """Simulated seconds of the run, or ``None`` if the summary does not say."""
        value = self.summary.get("duration_s", self.manifest.get("simulated_seconds"))
        return float(value) if value is not None else None

    @property
    def warmup(self) -> float | None:
        value = self.summary.get("warmup_s")
        return float(value) if value is not None else None


@dataclass
class SweepData:
    """A sweep directory, loaded: ``points.parquet``, ``runs.parquet`` (empty if absent)
    and ``manifest.json``."""

    path: Path
    points: pd.DataFrame
    runs: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> list[str]:
        """The swept keys from the manifest (grid, then linked), or ``[]`` if unknown.
        Linked rows with names (the experiment's ``labels``) are one parameter, ``label``."""
        experiment = self.manifest.get("experiment", {})
        linked = ["label"] if experiment.get("labels") else list(experiment.get("linked", {}))
        keys = [*experiment.get("grid", {}), *linked]
        return [k for k in keys if k in self.points.columns]


def kind_of(path: str | Path) -> str:
    """``"sweep"`` if ``path`` holds ``points.parquet``, ``"run"`` if it holds
    ``messages.parquet``; otherwise raises ``ScenarioError``."""
    path = Path(path)
    if not path.is_dir():
        problem = "no such directory" if not path.exists() else "not a directory"
        raise ScenarioError(str(path), "", problem)
    if (path / "points.parquet").is_file():
        return "sweep"
    if (path / "messages.parquet").is_file():
        return "run"
    raise ScenarioError(
        str(path),
        "",
        "neither a run directory (no messages.parquet) nor a sweep directory (no points.parquet)",
    )


def _parquet(path: Path, required: bool = True) -> pd.DataFrame:
    from mailnet.streaming_spool import read_table  # noqa: PLC0415  # with the categories a run had

    if not path.is_file():
        if required:
            raise ScenarioError(str(path.parent), "", f"{path.name} is missing")
        return pd.DataFrame()
    try:
        frame = read_table(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise ScenarioError(str(path), "", f"cannot read this table: {error}") from None
    missing = [c for c in CORE_COLUMNS.get(path.stem, ()) if c not in frame.columns]
    if missing:
        problem = f"not a mailnet {path.stem} table: no column {', '.join(missing)}"
        raise ScenarioError(str(path), "", problem)
    return frame


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ScenarioError(str(path), "", f"cannot read this file: {error}") from None
    return data if isinstance(data, dict) else {}


def load_run(path: str | Path) -> RunData:
    """Read a run directory written by ``mailnet run`` (``listings``, ``reputation``,
    ``suspensions`` and ``changes`` may be absent: older runs have none)."""
    path = Path(path)
    tables = {
        name: _parquet(path / f"{name}.parquet", name not in OPTIONAL_RUN_TABLES)
        for name in RUN_TABLES
    }
    scenario = path / "scenario.toml"
    return RunData(
        path,
        **tables,
        summary=_json(path / "summary.json"),
        manifest=_json(path / "manifest.json"),
        scenario_toml=scenario.read_text(encoding="utf-8") if scenario.is_file() else "",
    )


def load_sweep(path: str | Path) -> SweepData:
    """Read a sweep directory written by ``mailnet sweep``."""
    path = Path(path)
    return SweepData(
        path,
        _parquet(path / "points.parquet"),
        _parquet(path / "runs.parquet", required=False),
        _json(path / "manifest.json"),
    )
