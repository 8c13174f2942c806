"""The software environment a result was produced under, and whether it still holds.

Every ``manifest.json`` (runs and sweeps) records ``environment()``. NumPy does not promise
that a ``Generator`` draws the same stream in its next release (NEP 19), and SimPy, pandas
and SciPy shape event order and summary statistics, so a result regenerates bit for bit only
under the same versions of ``RESULT_PACKAGES``; ``uv.lock`` pins them.
"""

from __future__ import annotations

import json
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mailnet", "numpy", "simpy", "pandas", "pyarrow", "scipy")
"""The distributions whose versions a manifest records, besides Python and the platform."""

RESULT_PACKAGES = ("mailnet", "numpy", "simpy", "pandas", "scipy")
"""Those whose version can change a run's numbers. pyarrow only stores the tables, and
Python's own arithmetic does not change between releases, so neither is compared."""

UNKNOWN = "unknown"
INSTALL_HINT = "make demo and make test install the versions pinned in uv.lock"


def environment() -> dict[str, str]:
    """Versions of Python and of ``PACKAGES`` (``"unknown"`` if not installed), and the
    platform, as a JSON-ready dict: ``{"python": "3.11.7", "mailnet": "0.1.0", ...,
    "platform": "Linux-6.1-x86_64-with-glibc2.36"}``."""
    return dict(_environment())


@cache
def _environment() -> tuple[tuple[str, str], ...]:
    # read once per process: a sweep worker records it with every run
    versions = [("python", platform.python_version())]
    versions += [(name, _version(name)) for name in PACKAGES]
    versions.append(("platform", platform.platform()))
    return tuple(versions)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # e.g. mailnet run from a source tree, not installed
        return UNKNOWN


def differences(
    recorded: dict[str, Any] | None, current: dict[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """The ``RESULT_PACKAGES`` whose version in ``recorded`` (a manifest's ``environment``;
    ``None`` for a manifest written before environments were recorded) is not the one in
    ``current`` (default: this process), as ``{name: (recorded, current)}``."""
    recorded = recorded or {}
    current = current if current is not None else environment()
    found = {name: (str(recorded.get(name, UNKNOWN)), current[name]) for name in RESULT_PACKAGES}
    return {name: pair for name, pair in found.items() if pair[0] != pair[1]}


def describe(changed: dict[str, tuple[str, str]]) -> str:
    """``"numpy 2.4.6 (now 2.5.0), simpy unknown (now 4.1.2)"``."""
    return ", ".join(f"{name} {old} (now {new})" for name, (old, new) in changed.items())


def recorded_in(directory: Path) -> dict[str, Any] | None:
    """The environment recorded in ``directory/manifest.json``; ``None`` when the manifest
    is missing, unreadable or predates environment records."""
    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = manifest.get("environment") if isinstance(manifest, dict) else None
    return found if isinstance(found, dict) else None


def mismatch(directory: Path) -> str | None:
    """One sentence saying that ``directory`` was produced under other versions of the
    ``RESULT_PACKAGES`` than this process has, or under versions it does not record;
    ``None`` if the versions agree or there is no manifest at all to compare."""
    found = _compare(Path(directory))
    if found is None:
        return None
    return f"{found}; regenerating it may give other numbers ({INSTALL_HINT})"


def resume_refusal(directory: Path) -> str | None:
    """Why the runs already in sweep directory ``directory`` must not be completed in this
    process (their versions differ from these, or are not recorded), or ``None``."""
    found = _compare(Path(directory))
    if found is None:
        return None
    return f"{found}; resuming could mix runs of different versions: choose another --out"


def _compare(directory: Path) -> str | None:
    if not (directory / "manifest.json").is_file():
        return None
    recorded = recorded_in(directory)
    if recorded is None:
        return f"{directory} does not record the versions it was produced under"
    changed = differences(recorded)
    if not changed:
        return None
    return f"{directory} was produced under other versions: {describe(changed)}"
