"""Making a report: every figure of a run or sweep directory as PNG and SVG, and one
self-contained ``report.html`` with the figures, summary tables and the scenario."""

from __future__ import annotations

from pathlib import Path

from mailnet.errors import ScenarioError
from mailnet.output import atomic_write_text
from mailnet.report.embed import save_figure
from mailnet.report.inputs import kind_of, load_run, load_sweep
from mailnet.report.run_page import run_page
from mailnet.report.sweep_page import sweep_page

__all__ = ["PAGE", "make_report", "save_figure"]

PAGE = "report.html"


def make_report(
    directory: str | Path, out: str | Path | None = None, *, metrics: list[str] | None = None
) -> Path:
    """Write the figures (``<name>.png`` and ``<name>.svg``) and ``report.html`` of a run
    or sweep directory into ``out`` (default ``<directory>/report``); return the page's path.

    ``metrics`` chooses the metrics drawn for a sweep (default: ``sweeps.headline_metrics``).
    Raises ``ScenarioError`` if ``directory`` is neither a run nor a sweep directory.
    """
    directory = Path(directory)
    kind = kind_of(directory)
    out = Path(out) if out is not None else directory / "report"
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "run":
        page = run_page(load_run(directory), out)
    else:
        page = sweep_page(load_sweep(directory), out, metrics)
    path = out / PAGE
    atomic_write_text(path, page.render())
    return path


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a non-empty directory that holds no report:
    figures are never written over files of the user's."""
    if out.exists() and not out.is_dir():
        raise ScenarioError(str(out), "--out", "exists and is not a directory")
    if out.is_dir() and not (out / PAGE).exists() and any(out.iterdir()):
        raise ScenarioError(
            str(out), "--out", f"not empty and holds no {PAGE}: choose another directory"
        )
