"""Writing a run directory: tables as Parquet, the summary, the resolved scenario, a manifest.

Every table of ``RunResult.tables()`` (messages, attempts, queues, listings, reputation,
suspensions) becomes ``<name>.parquet``.

Files are written to a temporary name and renamed into place, so a directory never holds
a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from mailnet.simulate import RunResult


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (without its index) to ``path`` through a temporary file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_run(result: RunResult, out: str | Path) -> Path:
    """Write ``result`` into directory ``out`` (created if needed) and return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in result.tables().items():
        atomic_write_parquet(frame, out / f"{name}.parquet")
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
    atomic_write_text(out / "scenario.toml", result.scenario.to_toml(seed=result.seed))
    atomic_write_text(out / "manifest.json", json.dumps(result.manifest, indent=2) + "\n")
    return out
