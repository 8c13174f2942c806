"""The ``mailnet sweep`` command, added to the main command-line app by ``register``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailnet.errors import ScenarioError

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
    """Add the ``sweep`` command to ``app``."""
    app.command(name="sweep", help=HELP)(sweep_command)


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
        typer.Option(help="Also keep each run's tables under OUT/runs/<point>-<replication>/."),
    ] = False,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Refuse a sweep whose runs at once are estimated to need more memory "
            "than this, e.g. 16GB (default: the machine's memory)."
        ),
    ] = None,
) -> None:
    """Run every grid point and replication of EXPERIMENT; write the tables to OUT."""
    # scipy and the sweep machinery load only when a sweep runs, not on every command
    from mailnet.estimate import refuse_oversized_sweep, workers_for  # noqa: PLC0415
    from mailnet.sweep import SweepError, load_experiment, sweep  # noqa: PLC0415

    try:
        loaded = load_experiment(experiment)
        local = workers_for(workers, loaded.n_runs) if scheduler is None else 1
        if workers is not None and local < workers:
            typer.echo(f"mailnet: --workers {workers} capped at {local} (cores and runs)", err=True)
            workers = local
        refuse_oversized_sweep(loaded, local, max_memory)
        result = sweep(
            loaded,
            workers=workers,
            scheduler=scheduler,
            out=out,
            resume=resume,
            keep_tables=keep_tables,
        )
    except (ScenarioError, SweepError) as error:
        typer.echo(f"mailnet: error: {error}", err=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None
    counts = result.manifest["runs"]
    typer.echo(
        f"{result.status}: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['missing']} missing of {counts['total']} runs; wrote {result.out}"
    )
    if result.status == "interrupted":
        raise typer.Exit(code=EXIT_INTERRUPTED)
    if counts["failed"] or counts["missing"]:
        raise typer.Exit(code=EXIT_FAILED_RUNS)
