"""Commands that look at finished runs: ``mailnet breakdown``, ``mailnet outcomes`` and
``mailnet compare``. Thin wrappers; pandas, SciPy and matplotlib are imported inside the
commands, so the command line starts fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console()


def _fail(error: Exception) -> NoReturn:
    typer.echo(f"mailnet: error: {error}", err=True)
    raise typer.Exit(code=2)


def breakdown_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (written by mailnet run).")],
    *,
    by: Annotated[
        list[str],
        typer.Option(help="provider, group (sender group), domain, receiver or hop; repeatable."),
    ],
    top: Annotated[int, typer.Option(min=1, help="Show the largest N groups.")] = 20,
) -> None:
    """Break a run's results down by provider, sender group, recipient domain, receiver
    or hop: recipients, bounce, deferral and spam-folder rates, p90 latency and the
    collateral damage of each group."""
    from mailnet.breakdowns import Layout  # noqa: PLC0415 (pandas: import when used)
    from mailnet.cli import check_dimensions, print_breakdown  # noqa: PLC0415 (a cycle)
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.report.inputs import load_run  # noqa: PLC0415

    try:
        check_dimensions(by)
        data = load_run(run_dir)
    except ScenarioError as error:
        _fail(error)
    layout = Layout.from_toml(data.scenario_toml)
    for dimension in by:
        print_breakdown(data.messages, data.attempts, layout, dimension, top)


def outcomes_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (written by mailnet run).")],
    *,
    every: Annotated[
        str | None,
        typer.Option(help="Bin width, e.g. 30m (default: an hour up to 3 days, else a day)."),
    ] = None,
) -> None:
    """What happened to the mail in each hour (or day): submitted, delivered, deferred
    attempts, bounced, spam folder, collateral damage, and recipients not yet settled."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.humanize import count, duration, share  # noqa: PLC0415
    from mailnet.report.inputs import load_run  # noqa: PLC0415
    from mailnet.timeseries import outcomes_over_time, settling  # noqa: PLC0415

    try:
        data = load_run(run_dir)
        width = _every(every)
        if data.duration is None:
            raise ScenarioError(str(run_dir), "", "the run's duration is unknown")
    except ScenarioError as error:
        _fail(error)
    table = outcomes_over_time(data.messages, data.attempts, data.duration, width)
    shown = Table(
        box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False, caption=_OUTCOMES_CAPTION
    )
    rows = [
        [duration(r["start"]), *(count(r[c]) for c in _COUNTS), share(r["collateral_rate"])]
        for r in table.to_dict("records")
    ]
    for i, name in enumerate(("from", *_COUNTS.values(), "share\nhurt")):
        widest = max([len(line) for line in name.split("\n")] + [len(r[i]) for r in rows])
        shown.add_column(name, justify="right", no_wrap=True, min_width=widest)
    for row in rows:
        shown.add_row(*row)
    console.print(shown)
    settled = settling(data.messages, data.queues, data.scenario_toml)
    console.print(f"maximum delivery latency: {duration(settled.max_latency_s)}")


_COUNTS = {
    "submitted": "submitted",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounced": "bounced",
    "spam_folder": "spam\nfolder",
    "collateral": "legit.\nhurt",
    "unsettled": "unsettled",
}
"""The count columns of ``timeseries.outcomes_over_time`` in the order printed, and their
headers."""

_OUTCOMES_CAPTION = (
    "deferred: deferred attempts, every hop; legit. hurt: legitimate recipients hurt by "
    "others' reputation, by submission time, and their share of the legitimate mail "
    "submitted then; unsettled: not yet delivered or bounced at the end of the row"
)


def _every(text: str | None) -> float | None:
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.units import parse_duration  # noqa: PLC0415

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise ScenarioError("--every", "", str(error)) from None
    if seconds <= 0:
        raise ScenarioError("--every", "", "must be positive")
    return seconds


def compare_command(
    a: Annotated[str, typer.Argument(help="A: a run directory, or SWEEP_DIR@POINT.")],
    b: Annotated[str, typer.Argument(help="B: a run directory, or SWEEP_DIR@POINT.")],
    *,
    out: Annotated[
        Path | None, typer.Option(help="Also write the comparison figures (PNG, SVG) here.")
    ] = None,
) -> None:
    """Compare two runs or two sweep points: each headline metric side by side, the
    difference B - A and, for sweep points of the same seeds, its paired 95 % interval.
    A sweep point is SWEEP_DIR@NUMBER, SWEEP_DIR@LABEL or SWEEP_DIR@KEY=VALUE[,KEY=VALUE]."""
    from rich.table import Table  # noqa: PLC0415

    from mailnet import compare  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415

    try:
        side_a, side_b = compare.load_side(a), compare.load_side(b)
    except ScenarioError as error:
        _fail(error)
    differences = compare.compare(side_a, side_b)
    if not differences:
        _fail(ScenarioError(f"{a} and {b}", "", "no headline metric in common"))
    table = Table(title=f"A: {a}\nB: {b}", caption=compare.method_note(differences, side_a, side_b))
    for name, justify in (("metric", "left"), ("A", "right"), ("B", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("B - A", justify="right", no_wrap=True)
    table.add_column("95 % interval", justify="right", no_wrap=True)
    for row in compare.table_rows(differences):
        table.add_row(*row)
    console.print(table)
    if out is not None:
        from mailnet.report.comparison import write_figures  # noqa: PLC0415 (matplotlib)

        for path in write_figures(differences, side_a, side_b, out):
            console.print(f"wrote [bold]{path}[/]")


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command(name="breakdown")(breakdown_command)
    app.command(name="outcomes")(outcomes_command)
    app.command(name="compare")(compare_command)
