"""The ``mailnet report`` command, added to the main command-line app by ``register``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2

HELP = (
    "Draw the figures of a run or sweep directory DIR and write them, with one "
    "self-contained report.html, to OUT (default DIR/report).\n\n"
    "A run directory is written by `mailnet run`, a sweep directory (recognised by its "
    "points.parquet) by `mailnet sweep`. Exit status: 0 done, 2 bad input."
)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command(name="report", help=HELP)(report_command)


def report_command(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Run or sweep directory.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for the figures and report.html (default: DIR/report)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            help="Sweep metric to draw, e.g. latency_s.p90 (repeatable; default: the "
            "headline metrics)."
        ),
    ] = None,
) -> None:
    """Draw the figures of a run or sweep directory and write report.html."""
    # matplotlib loads only when a report is drawn, not on every command
    from mailnet.environment import mismatch  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.report import make_report  # noqa: PLC0415

    try:
        page = make_report(directory, out, metrics=metric or None)
    except ScenarioError as error:
        typer.echo(f"mailnet: error: {error}", err=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    except OSError as error:  # a full or read-only disk
        typer.echo(
            f"mailnet: error: {out or directory}: cannot write the report "
            f"({error.strerror or error})",
            err=True,
        )
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    typer.echo(f"wrote {page}")
    warning = mismatch(directory)
    if warning:
        typer.echo(f"mailnet: warning: {warning}", err=True)
