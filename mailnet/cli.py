"""The ``mailnet`` command: thin wrappers that hand off to the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailnet.errors import ScenarioError
from mailnet.policies.retry import presets_table

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Simulate internet mail delivery: scenarios, sweeps and reports.",
)
console = Console()


def _fail(error: Exception) -> None:
    typer.echo(f"mailnet: error: {error}", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to write.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: KEY=VALUE (TOML dotted key and value)."),
    ] = None,
    maillog: Annotated[bool, typer.Option(help="Also write a Postfix-format maillog.")] = False,
) -> None:
    """Simulate one scenario; print its summary and write its tables to OUT."""
    from mailnet.output import write_run
    from mailnet.scenario import load_scenario
    from mailnet.simulate import simulate

    try:
        loaded = load_scenario(scenario, overrides=set_ or [])
        result = simulate(loaded, seed=seed, base_dir=scenario.parent, source=str(scenario))
    except ScenarioError as error:
        _fail(error)
    out = out or Path("results") / scenario.stem
    write_run(result, out)
    if maillog:
        from mailnet.maillog import write_maillog

        write_maillog(result, out / "maillog")
    print_summary(result.summary, result.manifest)
    console.print(f"wrote [bold]{out}[/]")


def print_summary(summary: dict, manifest: dict) -> None:
    """A compact table of the run's headline numbers."""
    table = Table(title="mailnet run summary", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")

    def fmt(value, unit=""):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.4g}{unit}"
        return f"{value:,}{unit}"

    table.add_row("messages (recipients)", f"{summary['messages']:,} ({summary['recipients']:,})")
    for status, count in summary["status"].items():
        table.add_row(f"  {status}", fmt(count))
    table.add_row("delivery rate", fmt(summary["delivery_rate"]))
    table.add_row("bounce rate", fmt(summary["bounce_rate"]))
    table.add_row("deferral rate", fmt(summary["deferral_rate"]))
    for name, key in (
        ("delivery latency", "latency_s"),
        ("end-to-end latency", "end_to_end_latency_s"),
    ):
        lat = summary[key]
        table.add_row(
            f"{name} p50 / p90 / p99", " / ".join(fmt(lat[p], " s") for p in ("p50", "p90", "p99"))
        )
    table.add_row("attempts per remote recipient", fmt(summary["attempts_per_remote_recipient"]))
    table.add_row("DSNs sent", fmt(summary["dsn"]["messages"]))
    table.add_row("mean session wait", fmt(summary["session_wait_s"]["mean"], " s"))
    for key, value in summary["queue_time_average"].items():
        if key.startswith("mta:"):
            table.add_row(f"avg queue {key[4:]}", fmt(value))
    table.add_row("wall time", fmt(manifest.get("wall_time_s"), " s"))
    table.add_row("simulated events", fmt(manifest.get("simulated_events")))
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


from mailnet.sweep.cli import register as _register_sweep  # noqa: E402, I001

_register_sweep(app)
from mailnet.report.cli import register as _register_report  # noqa: E402, I001

_register_report(app)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("mailnet: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
