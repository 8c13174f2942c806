"""The ``mailnet sweep`` command, added to the main command-line app by ``register``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_FAILED_RUNS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

HELP = (
    "Run every grid point and replication of EXPERIMENT; write the tables to OUT.\n\n"
    "OUT gets runs.parquet (one row per run), points.parquet (means and 95 % confidence "
    "intervals per grid point) and manifest.json. Exit status: 0 all runs ok, 1 some runs "
    "failed or are missing, 2 bad input, 130 interrupted (complete it with --resume)."
)


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` and ``sensitivity`` commands to ``app``."""
    app.command(name="sweep", help=HELP)(sweep_command)
    app.command(name="sensitivity", help=SENSITIVITY_HELP)(sensitivity_command)


SENSITIVITY_HELP = (
    "Morris screening or Sobol' indices of the metrics over the \\[ranges] of a sensitivity "
    "file, run as a sweep into OUT.\n\n"
    "OUT gets the sweep's tables, sensitivity.parquet (one row per metric and key) and "
    "sensitivity.png. Exit status: 0 done, 1 runs failed or missing, 2 bad input, "
    "130 interrupted (complete it with --resume)."
)


def sensitivity_command(
    design: Annotated[
        Path, typer.Argument(help="Sensitivity file (an experiment with \\[ranges]).")
    ],
    *,
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: one per core).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run on the Dask cluster at this address.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Results directory (default: results/<file name>).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Run only the runs OUT does not hold yet.")] = False,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric to analyse (repeatable; default: the headline metrics)."),
    ] = None,
) -> None:
    """Sensitivity of the metrics to the [ranges] of DESIGN."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.sweep import SweepError  # noqa: PLC0415
    from mailnet.sweep.sensitivity import run_sensitivity  # noqa: PLC0415

    try:
        indices, directory = run_sensitivity(
            design, out=out, metrics=metric, workers=workers, scheduler=scheduler, resume=resume
        )
    except (ScenarioError, SweepError) as error:
        typer.echo(f"mailnet: error: {error}", err=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    if len(indices):
        first, conf, second = (
            ("mu_star", "mu_star_conf", "sigma")
            if "mu_star" in indices
            else ("ST", "ST_conf", "S1")
        )
        table = Table(title="sensitivity", show_lines=False)
        for column in ("metric", "key", first, f"± {conf}", second):
            table.add_column(column)
        for row in indices.sort_values(["metric", first], ascending=[True, False]).itertuples():
            table.add_row(
                str(row.metric),
                str(row.key),
                *(f"{getattr(row, c):.4g}" for c in (first, conf, second)),
            )
        Console().print(table)
    typer.echo(f"wrote {directory / 'sensitivity.parquet'}")


def sweep_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment TOML file.")],
    *,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local worker processes (default: one per core; 1 runs in this process)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run on the Dask cluster whose scheduler is at this address (tcp://HOST:PORT)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Results directory (default: results/<experiment name>).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Run only the runs OUT does not hold yet.")] = False,
    keep_tables: Annotated[
        bool,
        typer.Option(
            help="Also keep each run's tables under OUT/runs/<point>-<replication>/, "
            "streamed there by the worker as the run goes (one that cannot see OUT sends "
            "them back)."
        ),
    ] = False,
    run_timeout: Annotated[
        str | None,
        typer.Option(
            help="Wall-clock limit per run (e.g. 10m); a run over it is retried, then failed."
        ),
    ] = None,
    max_attempts: Annotated[
        int,
        typer.Option(
            help="Attempts per run whose worker died or that timed out, before it is failed."
        ),
    ] = 3,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Replicate each point until every target metric's 95 % half-width is "
            "within this share of its mean (0.1), or this absolute width (0.005abs); "
            "replaces the experiment's [precision] table."
        ),
    ] = None,
    max_replications: Annotated[
        int | None,
        typer.Option(
            help="With --precision (or the experiment's [precision] table): the most "
            "replications a point gets (default: the table's, else 100)."
        ),
    ] = None,
    target_metric: Annotated[
        list[str] | None,
        typer.Option(
            help="With --precision: a metric the target applies to (repeatable; default: "
            "the headline metrics)."
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Refuse a sweep whose runs at once are estimated to need more memory "
            "than this, e.g. 16GB (default: the machine's memory)."
        ),
    ] = None,
    max_time: Annotated[
        str | None,
        typer.Option(
            help="Refuse a sweep estimated to take longer than this on its workers, "
            "e.g. 30d (default: 1w)."
        ),
    ] = None,
    select_best: Annotated[
        str | None,
        typer.Option(
            help="Replicate until the point with the largest mean of this metric is "
            "selected with probability --pcs (needs --indifference)."
        ),
    ] = None,
    indifference: Annotated[
        float | None,
        typer.Option(
            help="With --select-best: the smallest difference in the metric's units "
            "worth telling apart."
        ),
    ] = None,
    pcs: Annotated[
        float, typer.Option(help="With --select-best: probability of correct selection.")
    ] = 0.95,
    minimize: Annotated[
        bool, typer.Option(help="With --select-best: the smallest mean is best.")
    ] = False,
    damage: Annotated[
        str | None,
        typer.Option(
            help="In points.parquet, the mean of this metric over the runs with and "
            "without each counted event (a listing, an expiry)."
        ),
    ] = None,
    procedure: Annotated[
        str,
        typer.Option(
            help="With --select-best: kn (fully sequential, uses common random numbers) "
            "or rinott (two-stage)."
        ),
    ] = "kn",
) -> None:
    """Run every grid point and replication of EXPERIMENT; write the tables to OUT."""
    # scipy and the sweep machinery load only when a sweep runs, not on every command
    from mailnet.admission import refuse_oversized_sweep, workers_for  # noqa: PLC0415
    from mailnet.errors import ScenarioError  # noqa: PLC0415
    from mailnet.sweep import SweepError, load_experiment, sweep  # noqa: PLC0415
    from mailnet.units import parse_duration  # noqa: PLC0415

    try:
        timeout = None if run_timeout is None else parse_duration(run_timeout)
    except ValueError as error:
        typer.echo(f"mailnet: error: --run-timeout: {error}", err=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    try:
        select = _selection(select_best, indifference, pcs, minimize, procedure)
        loaded = load_experiment(experiment)
        local = workers_for(workers, loaded.n_runs) if scheduler is None else 1
        if workers is not None and local < workers:
            typer.echo(f"mailnet: --workers {workers} capped at {local} (cores and runs)", err=True)
            workers = local
        destination = out if out is not None else Path("results") / loaded.name
        refuse_oversized_sweep(
            loaded,
            local,
            max_memory,
            keep_tables=keep_tables,
            out=destination,
            max_time=max_time,
        )
        result = sweep(
            loaded,
            workers=workers,
            scheduler=scheduler,
            out=out,
            resume=resume,
            keep_tables=keep_tables,
            run_timeout=timeout,
            max_attempts=max_attempts,
            precision=precision,
            max_replications=max_replications,
            target_metrics=target_metric,
            select=select,
            damage=damage,
        )
    except (ScenarioError, SweepError) as error:
        typer.echo(f"mailnet: error: {error}", err=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    counts = result.manifest["runs"]
    typer.echo(
        f"{result.status}: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['missing']} missing of {counts['total']} runs; wrote {result.out}"
    )
    chosen = result.manifest.get("selection")
    if chosen is not None:
        typer.echo(
            f"selected point {chosen['selected_point']} ({chosen['status']}): "
            f"{chosen['selected_params']}"
        )
    if result.status == "interrupted":
        raise typer.Exit(code=EXIT_INTERRUPTED)
    if counts["failed"] or counts["missing"]:
        raise typer.Exit(code=EXIT_FAILED_RUNS)


def _selection(
    metric: str | None, indifference: float | None, pcs: float, minimize: bool, procedure: str
) -> Any:
    """The ``Selection`` the options ask for, or ``None``; ``SweepError`` when they do
    not fit together."""
    from mailnet.sweep import SweepError  # noqa: PLC0415
    from mailnet.sweep.selection import Selection  # noqa: PLC0415

    if metric is None:
        if indifference is not None:
            raise SweepError("--indifference needs --select-best METRIC")
        return None
    if indifference is None:
        raise SweepError("--select-best needs --indifference (in the metric's units)")
    return Selection(metric, indifference, pcs, minimize, procedure)
