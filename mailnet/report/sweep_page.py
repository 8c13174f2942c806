"""The report page of a sweep: the experiment, its swept parameters, a table of grid
points, each metric against the swept parameters, queueing theory where it applies, failed
runs and the base scenario."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import rtoml
from matplotlib.figure import Figure

from mailnet import metric_catalog as catalog
from mailnet.report import provenance, sweeps, theory
from mailnet.report.embed import MAX_TABLE_ROWS, Figures
from mailnet.report.inputs import SweepData
from mailnet.report.page import Page

TABLE_METRICS = 6
"""Headline metrics shown in the table of grid points."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def sweep_page(data: SweepData, out: Path, metrics: list[str] | None) -> Page:
    """The page of sweep directory ``data``; figures are written into ``out``. ``metrics``:
    the metrics to draw (default: the headline metrics present)."""
    points, manifest = data.points, data.manifest
    page = Page(f"mailnet sweep report: {data.path.resolve().name}")
    _overview(page, data)
    parameters = data.parameters or sweeps.parameter_columns(points)
    chosen = metrics or sweeps.headline_metrics(points)
    unknown = [m for m in chosen if f"{m}.mean" not in points]
    if unknown:
        page.note("Not in points.parquet, so not drawn: " + ", ".join(unknown))
    chosen = [m for m in chosen if m not in unknown]
    page.heading("Grid points")
    page.table(*points_table(points, parameters, chosen[:TABLE_METRICS]))
    runs = data.runs if "point" in data.runs.columns else None
    _metric_figures(page, out, points, parameters, chosen, runs=runs)
    baseline = manifest.get("experiment", {}).get("baseline")
    if baseline is not None:
        _difference_figures(page, out, points, parameters, chosen, baseline=baseline, runs=runs)
    base = manifest.get("base_scenario") or {}
    if theory.capacity_figure(points, base) is not None:
        page.heading("Queueing theory")
        Figures(page, out).add(
            "theory_erlang",
            lambda: theory.capacity_figure(points, base),
            "Share of connections that waited for a session (unlimited backlog) and share "
            "refused (no backlog), mean and 95 % confidence interval per grid point, "
            "against Erlang C and Erlang B for the offered load of the base scenario.",
        )
    failed = data.runs[data.runs["status"] != "ok"] if "status" in data.runs else pd.DataFrame()
    if len(failed):
        page.heading("Failed runs")
        page.table(
            [
                [r.get("point"), r.get("replication"), r.get("seed"), r.get("error")]
                for r in failed.head(MAX_TABLE_ROWS).to_dict("records")
            ],
            header=["point", "replication", "seed", "error"],
        )
    if manifest.get("base_scenario"):
        page.heading("Base scenario")
        page.pre(rtoml.dumps(manifest["base_scenario"], pretty=True, none_value=None))
    provenance.add_environment(page, data.path, manifest)
    return page


def _overview(page: Page, data: SweepData) -> None:
    """The experiment's description, a table of its facts and its swept parameters."""
    points, manifest = data.points, data.manifest
    experiment = manifest.get("experiment", {})
    if experiment.get("description"):
        page.paragraph(experiment["description"])
    counts = manifest.get("runs", {})
    page.table(
        [
            ["sweep directory", str(data.path.resolve())],
            ["experiment file", experiment.get("source", "?")],
            ["base scenario", experiment.get("base", "?")],
            ["status", manifest.get("status", "?")],
            ["grid points", len(points)],
            ["replications per point", experiment.get("replications", "?")],
            [
                "runs: ok / failed / missing",
                " / ".join(str(counts.get(k, "?")) for k in ("ok", "failed", "missing")),
            ],
        ]
    )
    page.heading("Swept parameters")
    page.table(
        [
            [
                key,
                "linked" if key in experiment.get("linked", {}) else "grid",
                ", ".join(map(str, dict.fromkeys(points[key].astype(str)))),
            ]
            for key in data.parameters or sweeps.parameter_columns(points)
        ],
        header=["key", "factor", "values"],
    )


def _metric_figures(
    page: Page,
    out: Path,
    points: pd.DataFrame,
    parameters: list[str],
    chosen: list[str],
    *,
    runs: pd.DataFrame | None,
) -> None:
    """One figure per metric; the time-average queue lengths share one figure of panels."""
    figures = Figures(page, out)
    page.heading("Metrics against the swept parameters")
    page.paragraph(
        "Each line is the mean over a grid point's replications, each faint dot one "
        "replication; the band (error bars for a categorical parameter, whose points are "
        "not joined) is the 95 % Student-t confidence interval for that mean, computed on "
        "the logit scale for rates and the log scale for durations, counts and other "
        "non-negative quantities (queue lengths, attempts), so that it "
        "stays within the metric's range without clipping."
    )
    single = [m for m in chosen if not m.startswith("queue_time_average.")]
    queues = [m for m in chosen if m.startswith("queue_time_average.")]
    for metric in single:

        def draw(metric: str = metric) -> Figure:
            return sweeps.sweep_figure(points, metric, parameters=parameters, runs=runs)

        figures.add(
            f"metric_{_slug(metric)}",
            draw,
            f"{catalog.title(metric)} ({metric}): mean and 95 % confidence interval per "
            "grid point.",
        )
    drawn = [m for m in queues if not sweeps.always_zero(points, m)]
    if drawn:
        figures.add(
            "metric_queue_time_average",
            lambda: sweeps.sweep_panels_figure(
                points,
                drawn,
                parameters=parameters,
                title="Time-average queue lengths after warm-up",
                runs=runs,
            ),
            "Time-average queue lengths after warm-up, one panel per queue: "
            + ", ".join(drawn)
            + ".",
        )
    if len(drawn) < len(queues):
        page.note(
            "Zero at every grid point, not drawn: " + ", ".join(m for m in queues if m not in drawn)
        )


def _difference_figures(
    page: Page,
    out: Path,
    points: pd.DataFrame,
    parameters: list[str],
    chosen: list[str],
    *,
    baseline: int,
    runs: pd.DataFrame | None = None,
) -> None:
    """Each metric's paired difference to the baseline point, where it was computed, with
    each replication's own difference as a faint dot."""
    drawn = [m for m in chosen if f"{m}.diff" in points.columns]
    if not drawn:
        return
    figures = Figures(page, out)
    page.heading(f"Differences to the baseline (point {baseline})")
    page.paragraph(
        "Each point's mean difference to the baseline over the replications that share a "
        "seed (common random numbers), each faint dot one replication's difference, with "
        "its 95 % paired Student-t confidence interval; for latency percentiles and "
        "ratios (skewed per-run values) points.parquet also gives a paired BCa bootstrap "
        "interval over the replications (<metric>.diff_boot_low, _high; 9,999 resamples, "
        "seeded by the experiment's seed), and for every metric the paired-t p-value "
        "adjusted by Holm over the points (<metric>.diff_p_holm)."
    )
    for metric in drawn:

        def draw(metric: str = metric) -> Figure:
            return sweeps.sweep_figure(
                points, metric, parameters=parameters, stat="diff", runs=runs, baseline=baseline
            )

        figures.add(
            f"diff_{_slug(metric)}",
            draw,
            f"{catalog.title(metric)} ({metric}): paired difference to point {baseline} "
            f"and its {sweeps.difference_interval(metric)}.",
        )


def points_table(
    points: pd.DataFrame, parameters: list[str], metrics: list[str]
) -> tuple[list[list[object]], list[str]]:
    """``(rows, header)``: per grid point its parameters, run counts and each of
    ``metrics`` as mean [95 % CI], written in the metric's unit."""
    counts = [c for c in ("runs", "ok", "failed", "n") if c in points.columns]
    header = [
        "point" if "point" in points else "#",
        *parameters,
        *counts,
        *(f"{catalog.title(m)} ({m}), mean [95 % CI]" for m in metrics),
    ]
    rows = []
    for i, row in enumerate(points.head(MAX_TABLE_ROWS).to_dict("records")):
        cells = [row.get("point", i), *(row[p] for p in parameters), *(row[c] for c in counts)]
        for m in metrics:
            mean, low, high = (
                catalog.format_metric(m, row[f"{m}.{s}"]) for s in ("mean", "ci_low", "ci_high")
            )
            cells.append(f"{mean} [{low}, {high}]")
        rows.append(cells)
    return rows, header
