"""The ``mailnet`` command: thin wrappers that hand off to the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from mailnet.errors import ScenarioError
from mailnet.estimate import refuse_oversized_run
from mailnet.maillog import write_maillog
from mailnet.metric_catalog import format_metric, format_value, members, title
from mailnet.metrics import flatten
from mailnet.output import RunDirError, check_run_dir, staged_run_dir, write_run
from mailnet.policies.retry import presets_table
from mailnet.qshape import format_qshape, hops, qshape
from mailnet.report.cli import register as register_report
from mailnet.report.inputs import load_run
from mailnet.run_progress import CountingEnvironment, RunProgress
from mailnet.scenario import Scenario, load_scenario
from mailnet.simulate import RunResult, simulate
from mailnet.sweep.cli import register as register_sweep
from mailnet.units import format_duration, parse_duration

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
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", help="No progress bar (none either when stderr is not a terminal)."
        ),
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Refuse a run estimated to need more memory than this, e.g. 16GB "
            "(default: the machine's memory)."
        ),
    ] = None,
) -> None:
    """Simulate one scenario; print its summary and write its tables to OUT."""
    out = out or RUNS_DIR / scenario.stem
    try:
        loaded = load_scenario(scenario, overrides=set_ or [])
        refuse_oversized_run(loaded, scenario, max_memory)
        check_run_dir(out, force=force)
        result = _simulate(loaded, scenario, seed, show_progress=not quiet)
    except (ScenarioError, RunDirError) as error:
        _fail(error)
    with staged_run_dir(out) as stage:
        write_run(result, stage)
        if maillog:
            write_maillog(result, stage / "maillog")
    print_summary(result.summary, result.manifest)
    console.print(f"wrote [bold]{out}[/]")


def _simulate(loaded: Scenario, path: Path, seed: int | None, *, show_progress: bool) -> RunResult:
    """Run ``loaded`` (read from ``path``), with a progress bar on a terminal's stderr
    when ``show_progress``."""
    stderr = Console(stderr=True)
    if not (show_progress and stderr.is_terminal):
        return simulate(loaded, seed=seed, base_dir=path.parent, source=str(path))
    env = CountingEnvironment()
    bar = RunProgress(loaded.simulation.duration, env, console=stderr)
    try:
        return simulate(
            loaded,
            seed=seed,
            base_dir=path.parent,
            source=str(path),
            environment=env,
            progress=bar,
        )
    finally:
        bar.close()


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


@app.command(name="qshape")
def qshape_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (written by mailnet run).")],
    *,
    at: Annotated[
        str | None,
        typer.Option(help="Simulated time to look at, e.g. 2h (default: the end of the run)."),
    ] = None,
    hop: Annotated[
        str | None,
        typer.Option(help="One MTA's queue: a provider, backup MX or relay (default: all)."),
    ] = None,
) -> None:
    """Print the queue at a moment as Postfix's qshape does: queued recipients by domain
    and by minutes since they reached the queue (T is the total)."""
    try:
        data = load_run(run_dir)
        end = data.duration
        when = end if at is None else parse_time(at)
        if when is None:
            raise ScenarioError(str(run_dir), "", "the run's duration is unknown: give --at")
        if end is not None and when > end:
            raise ScenarioError(
                "--at", "", f"{at} is after the end of the run ({format_duration(end)})"
            )
        names = hops(data.messages, data.attempts)
        if hop is not None and hop not in names:
            raise ScenarioError(
                "--hop", "", f"no MTA {hop!r} in this run; it has {', '.join(names)}"
            )
    except ScenarioError as error:
        _fail(error)
    typer.echo(format_qshape(qshape(data.messages, data.attempts, when, hop)), nl=False)


def parse_time(text: str) -> float:
    """Seconds in an ``--at`` option; a bad one is a ``ScenarioError`` naming the option."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ScenarioError("--at", "", str(error)) from None


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
