"""Writing a run directory: tables as Parquet, the summary, the resolved scenario, a manifest.

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
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_run(result: RunResult, out: str | Path) -> Path:
    """Write ``result`` into directory ``out`` (created if needed) and return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(result.messages, out / "messages.parquet")
    atomic_write_parquet(result.attempts, out / "attempts.parquet")
    atomic_write_parquet(result.queues, out / "queues.parquet")
    atomic_write_parquet(result.listings, out / "listings.parquet")
    atomic_write_parquet(result.reputation, out / "reputation.parquet")
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
    atomic_write_text(out / "scenario.toml", result.scenario.to_toml())
    atomic_write_text(out / "manifest.json", json.dumps(result.manifest, indent=2) + "\n")
    return out
