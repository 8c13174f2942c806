"""The ``mailnet`` command: thin wrappers that hand off to the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from mailnet.errors import ScenarioError
from mailnet.maillog import write_maillog
from mailnet.metric_catalog import format_metric, format_value, members, title
from mailnet.metrics import flatten
from mailnet.output import RunDirError, check_run_dir, staged_run_dir, write_run
from mailnet.policies.retry import presets_table
from mailnet.report.cli import register as register_report
from mailnet.scenario import load_scenario
from mailnet.simulate import simulate
from mailnet.sweep.cli import register as register_sweep

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Simulate internet mail delivery: scenarios, sweeps and reports.",
)
console = Console()


def _fail(error: Exception) -> NoReturn:
    typer.echo(f"mailnet: error: {error}", err=True)
    raise typer.Exit(code=2)


RUNS_DIR = Path("runs")
"""Where ``mailnet run`` writes by default: ad-hoc runs, kept out of git (``results/``
holds the committed experiments)."""


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    *,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help=f"Run directory to write (default: {RUNS_DIR}/<scenario file name>); "
            "must be absent, empty, or a previous run (replaced only with --force)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: KEY=VALUE (TOML dotted key and value)."),
    ] = None,
    maillog: Annotated[bool, typer.Option(help="Also write a Postfix-format maillog.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUT if it holds a previous run.")
    ] = False,
) -> None:
    """Simulate one scenario; print its summary and write its tables to OUT."""
    out = out or RUNS_DIR / scenario.stem
    try:
        loaded = load_scenario(scenario, overrides=set_ or [])
        check_run_dir(out, force=force)
        result = simulate(loaded, seed=seed, base_dir=scenario.parent, source=str(scenario))
    except (ScenarioError, RunDirError) as error:
        _fail(error)
    with staged_run_dir(out) as stage:
        write_run(result, stage)
        if maillog:
            write_maillog(result, stage / "maillog")
    print_summary(result.summary, result.manifest)
    console.print(f"wrote [bold]{out}[/]")


def print_summary(summary: dict[str, Any], manifest: dict[str, Any]) -> None:
    """A compact table of the run's headline numbers: the metrics the catalogue marks
    ``brief``, each written in its unit, and the run's wall time."""
    table = Table(title="mailnet run summary", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    flat = flatten(summary)
    for key in members(flat, brief=True):
        table.add_row(title(key), format_metric(key, flat[key]))
    table.add_row("wall time", format_value("s", manifest.get("wall_time_s")))
    console.print(table)


@app.command()
def presets() -> None:
    """List every retry preset with its parameters and first ten attempt offsets."""
    table = Table(title="retry presets (offsets for an always-failing destination)")
    table.add_column("preset")
    table.add_column("parameters")
    table.add_column("first ten attempts after submission")
    table.add_column("gives up at")
    for row in presets_table():
        table.add_row(*row)
    console.print(table)


register_sweep(app)
register_report(app)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("mailnet: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
