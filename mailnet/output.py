"""Writing a run directory: tables as Parquet, the summary, the resolved scenario, a manifest.

Every table of ``RunResult.tables()`` (messages, attempts, queues, listings, reputation,
suspensions) becomes ``<name>.parquet``.

Files are written to a temporary name and renamed into place, so a directory never holds
a half-written file. The command line never overwrites by surprise: ``check_run_dir``
refuses a non-empty directory that is not a previous run, and a previous run unless asked
to replace it; ``staged_run_dir`` writes the new run beside it and swaps it in whole, so a
replaced directory never mixes files of two runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mailnet.simulate import RunResult
from mailnet.streaming_tables import STREAMED


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place; on a failure
    (a full disk, say) the temporary file is removed and ``path`` is left as it was."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path``,
    on an error it is removed and the error goes on."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (without its index) to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_run(result: RunResult, out: str | Path) -> Path:
    """Write ``result`` into directory ``out`` (created if needed) and return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    streamed = result.tables_dir
    for name, frame in result.tables().items():
        if streamed is None or name not in STREAMED:
            atomic_write_parquet(frame, out / f"{name}.parquet")
        elif streamed.resolve() != out.resolve():  # else the run wrote it there as it went
            with atomic_path(out / f"{name}.parquet") as tmp:
                shutil.copyfile(streamed / f"{name}.parquet", tmp)
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
    atomic_write_text(
        out / "scenario.toml", result.scenario.to_toml(result.seed, out, result.base_dir)
    )
    atomic_write_text(out / "manifest.json", json.dumps(result.manifest, indent=2) + "\n")
    return out


class RunDirError(Exception):
    """A run directory that must not be written: ``str(error)`` is the line to print."""


RUN_MANIFEST_KEYS = ("seed", "simulated_seconds")
"""Keys every run's ``manifest.json`` has and a sweep's has not."""


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a previous run: a ``manifest.json`` of a run (not a sweep's)."""
    try:
        manifest: Any = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and all(key in manifest for key in RUN_MANIFEST_KEYS)
        and "experiment" not in manifest
    )


def check_run_dir(out: str | Path, *, force: bool = False) -> None:
    """Raise ``RunDirError`` unless a run may be written to ``out``: it is absent or an
    empty directory, or (with ``force``) a previous run directory, which gets replaced."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory; choose another --out")
    if not any(out.iterdir()):
        return
    if not is_run_dir(out):
        raise RunDirError(
            f"{out}: not empty and not a mailnet run directory (no run manifest.json); "
            "choose another --out"
        )
    if not force:
        raise RunDirError(
            f"{out}: holds a previous run; pass --force to replace it, or choose another --out"
        )


@contextmanager
def staged_run_dir(out: str | Path) -> Iterator[Path]:
    """Yield a fresh sibling directory to write a run into; on success it becomes ``out``.

    A previous ``out`` is renamed aside, the new directory renamed into place, and the old
    one removed: ``out`` then holds the new run's files only (no stale ``maillog`` or
    report of the old run). On an error the staged directory is removed and ``out`` is
    left as it was. Call ``check_run_dir`` first.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.name}.new{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)
