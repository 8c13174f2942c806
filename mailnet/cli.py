"""The ``mailnet`` command: thin wrappers that hand off to the library."""

from __future__ import annotations

import gc
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from mailnet.generate_cli import register as register_generate
from mailnet.report.cli import register as register_report
from mailnet.sweep.cli import register as register_sweep
from mailnet.views_cli import register as register_views

if TYPE_CHECKING:
    from mailnet.breakdowns import Layout
    from mailnet.scenario import Scenario
    from mailnet.simulate import RunResult
    from mailnet.timeseries import Settling

# Every other import sits in the function that needs it: pandas, pydantic and SimPy load
# only when a command runs, so help, presets and argument errors answer at once.

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Simulate internet mail delivery: scenarios, sweeps and reports.",
)
console = Console()


def _fail(error: Exception) -> NoReturn:
    typer.echo(f"mailnet: error: {error}", err=True)
    raise typer.Exit(code=2)


ENDS_PROCESS = "ends-process"
"""The context object of the console script, whose process ends with its command (not
set when a test or a notebook invokes ``app`` in its own process)."""

RUNS_DIR = Path("runs")
"""Where ``mailnet run`` writes by default: ad-hoc runs, kept out of git (``results/``
holds the committed experiments)."""


@app.command()
def run(
    ctx: typer.Context,
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
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Also break the results down by provider, group (sender group), domain "
            "(recipient domain), receiver or hop; repeatable."
        ),
    ] = None,
    summary_only: Annotated[
        bool,
        typer.Option(
            "--summary-only",
            help="Fold every row into the summary as the run goes and keep no per-message "
            "tables: memory stays flat however long the run; latency quantiles within 0.5 %.",
        ),
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Refuse a run estimated to need more memory than this, e.g. 16GB "
            "(default: the machine's memory)."
        ),
    ] = None,
    max_time: Annotated[
        str | None,
        typer.Option(
            help="Refuse a run estimated to take longer than this, e.g. 30d (default: 1w)."
        ),
    ] = None,
) -> None:
    """Simulate one scenario; print its summary and write its tables to OUT."""
    from mailnet.errors import ScenarioError  # noqa: PLC0415

    try:
        check_dimensions(by or [])
        if summary_only and (by or maillog):
            raise ScenarioError("--summary-only", "", "keeps no tables: drop --by and --maillog")
        loaded = load_with_notices(scenario, set_ or [])
    except ScenarioError as error:
        _fail(error)
    out = out or RUNS_DIR / scenario.stem
    _check_run(
        loaded,
        scenario,
        out,
        force=force,
        max_memory=max_memory,
        max_time=max_time,
        summary_only=summary_only,
        read_back=bool(by) or maillog,
    )
    result = _run_and_write(
        loaded,
        scenario,
        out,
        seed=seed,
        quiet=quiet,
        summary_only=summary_only,
        maillog=maillog,
        read_back=bool(by),
        ends_process=ctx.find_root().obj == ENDS_PROCESS,
    )
    _print_run(result, out, by=by or [])


def _check_run(
    loaded: Scenario,
    path: Path,
    out: Path,
    *,
    force: bool,
    max_memory: str | None,
    summary_only: bool,
    read_back: bool = False,
    max_time: str | None = None,
) -> None:
    """Refuse an oversized run or an ``out`` that may not be written; ``read_back``: the
    run reads its tables back once written (``--by``, ``--maillog``)."""
    from mailnet.admission import refuse_oversized_run  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.output import RunDirError, check_run_dir  # noqa: PLC0415

    try:
        refuse_oversized_run(
            loaded,
            path,
            max_memory,
            read_back=read_back,
            out=out,
            summary_only=summary_only,
            max_time=max_time,
        )
        check_run_dir(out, force=force)
    except (ScenarioError, RunDirError) as error:
        _fail(error)


def _run_and_write(
    loaded: Scenario,
    path: Path,
    out: Path,
    *,
    seed: int | None,
    quiet: bool,
    summary_only: bool,
    maillog: bool,
    read_back: bool,
    ends_process: bool = False,
) -> RunResult:
    """Simulate into a staged ``out``: the tables stream into it as the run goes (a
    summary-only run keeps none), then the rest of the run (and maillog) is written.
    The tables are read back for the maillog, and for the caller with ``read_back``.
    ``ends_process``: the process ends after this command, so the world is not collected."""
    from mailnet import collector  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.maillog import write_maillog  # noqa: PLC0415
    from mailnet.output import RunDirError, staged_run_dir, write_run  # noqa: PLC0415

    try:
        with staged_run_dir(out) as stage:
            with collector.paused():
                result = _simulate(
                    loaded,
                    path,
                    seed,
                    show_progress=not quiet,
                    summary_only=summary_only,
                    tables_dir=None if summary_only else stage,
                )
                if ends_process:
                    # The finished world is garbage in reference cycles (its components
                    # hold each other's bound methods): hundreds of thousands of objects
                    # the collector would walk three times before the process ends, over
                    # a second for a generated internet. Frozen, they are left to the
                    # operating system.
                    gc.freeze()
            write_run(result, stage)
            if maillog or read_back:
                result = result.read_tables()
            if maillog:
                write_maillog(result, stage / "maillog")
    except ScenarioError as error:
        _fail(error)
    except OSError as error:  # a full or read-only disk: the previous OUT is left as it was
        _fail(RunDirError(f"{out}: cannot write the run ({error.strerror or error})"))
    return result


def _print_run(result: RunResult, out: Path, *, by: list[str]) -> None:
    """Print the run's summary and breakdowns."""
    from mailnet.breakdowns import Layout  # noqa: PLC0415
    from mailnet.timeseries import settling, with_outages  # noqa: PLC0415

    # a summary-only run settled as it went; the outages come from the loaded scenario
    settled = result.settled or settling(result.messages, result.queues)
    print_summary(result.summary, result.manifest, with_outages(settled, result.scenario))
    if by:
        layout = Layout.from_toml(result.scenario.to_toml(seed=result.seed))
        for dimension in by:
            print_breakdown(result.messages, result.attempts, layout, dimension)
    console.print(f"wrote [bold]{out}[/]")


def load_with_notices(path: Path, overrides: list[str]) -> Scenario:
    """``load_scenario``, its notices (a warm-up scaled to a shorter duration) printed on
    stderr as ``mailnet: note: ...``. A missing file is a ``ScenarioError``, as from
    ``load_scenario``, said before pandas and the scenario schema load."""
    from mailnet.errors import ScenarioError  # noqa: PLC0415

    try:
        path.stat()
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "file not found") from None
    except OSError:
        pass  # load_scenario says what else is wrong with it
    from mailnet.scenario import load_scenario  # noqa: PLC0415
    from mailnet.scenario.shortening import ScenarioNotice  # noqa: PLC0415

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScenarioNotice)
        loaded = load_scenario(path, overrides=overrides)
    for notice in caught:
        if issubclass(notice.category, ScenarioNotice):
            typer.echo(f"mailnet: note: {notice.message}", err=True)
        else:
            warnings.warn_explicit(notice.message, notice.category, notice.filename, notice.lineno)
    return loaded


def _simulate(
    loaded: Scenario,
    path: Path,
    seed: int | None,
    *,
    show_progress: bool,
    summary_only: bool,
    tables_dir: Path | None = None,
) -> RunResult:
    """Run ``loaded`` (read from ``path``), with a progress bar on a terminal's stderr
    when ``show_progress``."""
    from mailnet.run_progress import CountingEnvironment, RunProgress  # noqa: PLC0415
    from mailnet.simulate import simulate  # noqa: PLC0415

    stderr = Console(stderr=True)
    if not (show_progress and stderr.is_terminal):
        return simulate(
            loaded,
            seed=seed,
            base_dir=path.parent,
            source=str(path),
            summary_only=summary_only,
            tables_dir=tables_dir,
        )
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
            summary_only=summary_only,
            tables_dir=tables_dir,
        )
    finally:
        bar.close()


def print_summary(
    summary: dict[str, Any], manifest: dict[str, Any], settled: Settling | None = None
) -> None:
    """A compact table of the run's headline numbers, all mail and legitimate mail side by
    side, collateral damage, how the deferred queue drained (``settled``), the other
    metrics the catalogue marks ``brief`` and the run's wall time, each in its unit."""
    from rich.table import Table  # noqa: PLC0415

    from mailnet.metric_catalog import format_value  # noqa: PLC0415
    from mailnet.run_summary import summary_rows  # noqa: PLC0415

    table = Table(title="mailnet run summary", show_header=True)
    table.add_column("metric", min_width=30)
    table.add_column("all mail", justify="right", no_wrap=True)
    table.add_column("legitimate mail", justify="right", no_wrap=True)
    for row in summary_rows(summary, settled):
        table.add_row(*row)
    table.add_row("wall time", format_value("s", manifest.get("wall_time_s")), "")
    console.print(table)


def check_dimensions(dimensions: list[str]) -> None:
    """Raise ``ScenarioError`` naming ``--by`` if a dimension is not one of ``DIMENSIONS``."""
    if not dimensions:
        return
    from mailnet.breakdowns import DIMENSIONS  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415

    for dimension in dimensions:
        if dimension not in DIMENSIONS:
            raise ScenarioError(
                "--by", "", f"no dimension {dimension!r}; choose one of {', '.join(DIMENSIONS)}"
            )


def print_breakdown(
    messages: Any, attempts: Any, layout: Layout, by: str, top: int | None = 20
) -> None:
    """The breakdown of a run's tables by ``by``, its ``top`` largest groups."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from mailnet.breakdowns import (  # noqa: PLC0415
        BRIEF_CAPTION,
        DIMENSION_LABELS,
        breakdown,
        text_rows,
    )

    header, rows = text_rows(breakdown(messages, attempts, layout, by), by, top, brief=True)
    caption = BRIEF_CAPTION["hop" if by == "hop" else "message"]
    table = Table(
        title=f"by {DIMENSION_LABELS[by]}",
        caption=caption,
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),  # one space between columns: seven fit in 80 characters
        show_edge=False,
    )
    table.add_column(header[0], no_wrap=True)
    for name in header[1:]:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def presets() -> None:
    """List every retry preset with its parameters and first ten attempt offsets."""
    from rich.table import Table  # noqa: PLC0415

    from mailnet.policies.retry import presets_table  # noqa: PLC0415

    table = Table(title="retry presets (offsets for an always-failing destination)")
    table.add_column("preset")
    table.add_column("parameters")
    table.add_column("first ten attempts after submission")
    table.add_column("gives up at")
    table.add_column("SMTP client")
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
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.qshape import format_qshape, hops, qshape  # noqa: PLC0415
    from mailnet.report.inputs import load_run  # noqa: PLC0415
    from mailnet.units import format_duration  # noqa: PLC0415

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
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.units import parse_duration  # noqa: PLC0415

    try:
        return parse_duration(text)
    except ValueError as error:
        raise ScenarioError("--at", "", str(error)) from None


register_sweep(app)
register_report(app)
register_views(app)
register_generate(app)


def main() -> None:
    """Entry point of the console script."""
    try:
        app(obj=ENDS_PROCESS)
    except KeyboardInterrupt:
        typer.echo("mailnet: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
