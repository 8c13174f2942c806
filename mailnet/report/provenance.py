"""The environment section of a report page: the versions a result was produced under
beside this environment's, with a warning when regenerating it could give other numbers."""

from __future__ import annotations

from pathlib import Path

from mailnet.environment import RESULT_PACKAGES, environment, mismatch
from mailnet.report.page import Page


def add_environment(page: Page, directory: Path, manifest: dict) -> None:
    """Add an "Environment" section for the results in ``directory`` (its ``manifest``)."""
    page.heading("Environment")
    warning = mismatch(directory)
    if warning:
        page.note(f"Warning: {warning}.")
    recorded = manifest.get("environment")
    recorded = recorded if isinstance(recorded, dict) else {}
    current = environment()
    page.table(
        [
            [key, recorded.get(key, "?"), value, "yes" if key in RESULT_PACKAGES else ""]
            for key, value in current.items()
        ],
        header=["", "produced under", "this environment", "changes results"],
    )
