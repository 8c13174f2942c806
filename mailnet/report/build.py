"""Making a report: every figure of a run or sweep directory as PNG and SVG, and one
self-contained ``report.html`` with the figures, summary tables and the scenario."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from matplotlib.figure import Figure

from mailnet.output import atomic_write_bytes, atomic_write_text
from mailnet.report import delivery, provenance, sweeps, theory, timelines
from mailnet.report.inputs import RunData, SweepData, kind_of, load_run, load_sweep
from mailnet.report.page import Page
from mailnet.report.style import format_seconds

DPI = 120
PAGE = "report.html"
TABLE_METRICS = 6
"""Headline metrics shown in the table of grid points."""
MAX_TABLE_ROWS = 60


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
    out.mkdir(parents=True, exist_ok=True)
    if kind == "run":
        page = _run_page(load_run(directory), out)
    else:
        page = _sweep_page(load_sweep(directory), out, metrics)
    path = out / PAGE
    atomic_write_text(path, page.render())
    return path


def save_figure(figure: Figure, out: Path, name: str) -> bytes:
    """Write ``figure`` as ``out/name.png`` and ``out/name.svg``; return the PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    png = buffer.getvalue()
    atomic_write_bytes(out / f"{name}.png", png)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    atomic_write_bytes(out / f"{name}.svg", buffer.getvalue())
    return png


def _add(
    page: Page,
    out: Path,
    name: str,
    make: Callable[[], Figure | None],
    caption: str,
    missing: str = "",
) -> bool:
    """Draw one figure into the page, or a note saying why there is none."""
    figure = make()
    if figure is None:
        page.note(missing)
        return False
    title = figure.get_suptitle() or figure.axes[0].get_title()
    page.figure(
        name,
        save_figure(figure, out, name),
        caption,
        alt=" ".join(title.split()),
        svg_file=f"{name}.svg",
    )
    return True


# ------------------------------------------------------------------ run


def _run_page(run: RunData, out: Path) -> Page:
    page = Page(f"mailnet run report: {run.path.resolve().name}")
    summary, end, warmup = run.summary, run.duration, run.warmup
    page.paragraph(
        f"Run directory {run.path.resolve()}: seed {run.manifest.get('seed', '?')}, "
        f"{format_seconds(end) if end else '?'} simulated"
        f"{f', warm-up {format_seconds(warmup)}' if warmup else ''}; mailnet "
        f"{run.manifest.get('mailnet_version', '?')}."
    )
    if summary:
        page.heading("Summary")
        page.table(_summary_rows(summary), header=["metric", "value"])
        page.heading("Outcomes by sender class", level=3)
        page.table(*_class_table(summary))
    page.heading("Delivery")
    _add(
        page,
        out,
        "outcomes",
        lambda: delivery.outcomes_figure(run.messages),
        "Final outcome of every recipient (delivery status notifications excluded), as a "
        "share of its sender class.",
    )
    _add(
        page,
        out,
        "latency",
        lambda: delivery.latency_figure(run.messages),
        "Cumulative distribution of latency per sender class, log time axis. Left: until the "
        "message is stored in the recipient's mailbox; right: until the recipient's client "
        "fetches it.",
    )
    _add(
        page,
        out,
        "attempts",
        lambda: delivery.attempts_figure(run.messages),
        "Delivery attempts per recipient over every hop (0: delivered locally or never "
        "attempted), as a share of the sender class, log scale.",
    )
    _add(
        page,
        out,
        "reasons",
        lambda: delivery.reasons_figure(run.attempts, run.messages),
        "Deferred attempts by 4xx reply and bounced recipients by final reply, with the RFC 3463 "
        "meaning of the enhanced status code, stacked by sender class.",
    )
    page.heading("Queues")
    for kind, name, text in (
        ("mta", "queues_mta", "Each MTA's active and deferred queue"),
        ("server", "queues_servers", "Each MX server's sessions in use and connections waiting"),
    ):
        _add(
            page,
            out,
            name,
            lambda kind=kind: timelines.queue_figure(run.queues, kind, end=end, warmup=warmup),
            f"{text} over simulated time (step functions; long series as time-weighted means "
            "per bin). Hatched: the warm-up, left out of the summary.",
            missing=f"No {kind} queue series in this run.",
        )
    if summary.get("queue_time_average"):
        page.table(
            [[k, v] for k, v in summary["queue_time_average"].items()],
            header=["queue (after warm-up)", "time average"],
        )
    page.heading("Blocklists and reputation")
    if _add(
        page,
        out,
        "listings",
        lambda: timelines.listings_figure(run.listings, end=end),
        "Blocklist listings over time: one row per listed key and list; colour: list, "
        "hatch: scope (ip, prefix, asn); the trigger is written before each bar.",
        missing="No blocklist listings in this run: no listings figure.",
    ):
        page.table(
            _listing_rows(run.listings),
            header=["list", "scope", "key", "listed at", "delisted at", "trigger"],
        )
    _add(
        page,
        out,
        "reputation",
        lambda: timelines.reputation_figure(run.reputation, end=end, warmup=warmup),
        "Reputation score of each sending IP as kept by each receiver, over simulated time.",
        missing="No reputation samples in this run (no receiver keeps IP reputation): "
        "no reputation figure.",
    )
    page.heading("Scenario")
    page.paragraph("The resolved scenario, every default written out (scenario.toml):")
    page.pre(run.scenario_toml or "(scenario.toml is missing)")
    if run.manifest:
        page.heading("Manifest")
        rows = [[k, _plain(v)] for k, v in run.manifest.items() if k != "environment"]
        page.table(rows, header=["key", "value"])
    provenance.add_environment(page, run.path, run.manifest)
    return page


def _summary_rows(s: dict) -> list[list]:
    def get(*keys):
        value = s
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def pct(value):
        return "–" if value is None else f"{100 * value:.2f} %"

    rows = [["messages (recipients)", f"{get('messages') or 0:,} ({get('recipients') or 0:,})"]]
    rows += [
        [f"recipients {status.replace('_', ' ')}", count]
        for status, count in (get("status") or {}).items()
    ]
    rows += [
        ["delivery rate", pct(get("delivery_rate"))],
        ["bounce rate", pct(get("bounce_rate"))],
        ["deferral rate", pct(get("deferral_rate"))],
    ]
    for label, key in (
        ("delivery latency", "latency_s"),
        ("end-to-end latency", "end_to_end_latency_s"),
    ):
        rows.append(
            [
                f"{label} p50 / p90 / p99",
                " / ".join(
                    format_seconds(get(key, p)) if get(key, p) is not None else "–"
                    for p in ("p50", "p90", "p99")
                ),
            ]
        )
    rows += [
        ["attempts per remote recipient", get("attempts_per_remote_recipient")],
        ["DSNs sent", get("dsn", "messages")],
        [
            "mean wait for a session",
            format_seconds(get("session_wait_s", "mean"))
            if get("session_wait_s", "mean") is not None
            else "–",
        ],
        ["legitimate mail: bounce rate", pct(get("legitimate", "bounce_rate"))],
        ["collateral damage rate (legitimate recipients)", pct(get("collateral", "rate"))],
        ["blocklist listings", get("listings", "total")],
    ]
    return [[k, "–" if v is None else v] for k, v in rows]


def _class_table(s: dict) -> tuple[list[list], list[str]]:
    header = [
        "class",
        "recipients",
        "delivered",
        "inbox",
        "spam folder",
        "bounced",
        "bounce rate",
        "deferral rate",
        "latency p50",
        "latency p90",
    ]
    rows = []
    for name, c in (s.get("classes") or {}).items():
        lat = c.get("latency_s") or {}
        rows.append(
            [
                name,
                c.get("recipients"),
                c.get("delivered"),
                c.get("inbox"),
                c.get("spam_folder"),
                c.get("bounced"),
                *(
                    f"{100 * c[k]:.2f} %" if c.get(k) is not None else "–"
                    for k in ("bounce_rate", "deferral_rate")
                ),
                *(
                    format_seconds(lat[p]) if lat.get(p) is not None else "–"
                    for p in ("p50", "p90")
                ),
            ]
        )
    return [[("–" if v is None else v) for v in row] for row in rows], header


def _listing_rows(listings: pd.DataFrame) -> list[list]:
    rows = []
    for r in listings.sort_values("listed_at").head(MAX_TABLE_ROWS).itertuples():
        delisted = format_seconds(r.delisted_at) if np.isfinite(r.delisted_at) else "still listed"
        rows.append([r.list, r.scope, r.key, format_seconds(r.listed_at), delisted, r.trigger])
    return rows


def _plain(value) -> str:
    return value if isinstance(value, str) else str(value)


# ------------------------------------------------------------------ sweep


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _sweep_page(data: SweepData, out: Path, metrics: list[str] | None) -> Page:
    points, manifest = data.points, data.manifest
    experiment = manifest.get("experiment", {})
    page = Page(f"mailnet sweep report: {data.path.resolve().name}")
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
    parameters = data.parameters or sweeps.parameter_columns(points)
    page.heading("Swept parameters")
    page.table(
        [
            [
                key,
                "linked" if key in experiment.get("linked", {}) else "grid",
                ", ".join(map(str, dict.fromkeys(points[key].astype(str)))),
            ]
            for key in parameters
        ],
        header=["key", "factor", "values"],
    )
    chosen = metrics or sweeps.headline_metrics(points)
    unknown = [m for m in chosen if f"{m}.mean" not in points]
    if unknown:
        page.note("Not in points.parquet, so not drawn: " + ", ".join(unknown))
    chosen = [m for m in chosen if m not in unknown]
    page.heading("Grid points")
    page.table(*_points_table(points, parameters, chosen[:TABLE_METRICS]))
    page.heading("Metrics against the swept parameters")
    page.paragraph(
        "Each line is the mean over a grid point's replications; the band (error "
        "bars for a categorical parameter) is the 95 % Student-t confidence "
        "interval for that mean."
    )
    single = [m for m in chosen if not m.startswith("queue_time_average.")]
    queues = [m for m in chosen if m.startswith("queue_time_average.")]
    for metric in single:
        _add(
            page,
            out,
            f"metric_{_slug(metric)}",
            lambda metric=metric: sweeps.sweep_figure(points, metric, parameters=parameters),
            f"{metric}: mean and 95 % confidence interval per grid point.",
        )
    drawn = [m for m in queues if not sweeps.always_zero(points, m)]
    if drawn:
        _add(
            page,
            out,
            "metric_queue_time_average",
            lambda: sweeps.sweep_panels_figure(
                points,
                drawn,
                parameters=parameters,
                title="Time-average queue lengths after warm-up",
            ),
            "Time-average queue lengths after warm-up, one panel per queue: "
            + ", ".join(drawn)
            + ".",
        )
    if len(drawn) < len(queues):
        page.note(
            "Zero at every grid point, not drawn: " + ", ".join(m for m in queues if m not in drawn)
        )
    base = manifest.get("base_scenario") or {}
    if theory.capacity_figure(points, base) is not None:
        page.heading("Queueing theory")
        _add(
            page,
            out,
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
        page.pre(tomli_w.dumps(manifest["base_scenario"]))
    provenance.add_environment(page, data.path, manifest)
    return page


def _points_table(points: pd.DataFrame, parameters: list[str], metrics: list[str]):
    counts = [c for c in ("runs", "ok", "failed", "n") if c in points.columns]
    header = [
        "point" if "point" in points else "#",
        *parameters,
        *counts,
        *(f"{m} (mean [95 % CI])" for m in metrics),
    ]
    rows = []
    for i, row in enumerate(points.head(MAX_TABLE_ROWS).to_dict("records")):
        cells = [row.get("point", i), *(row[p] for p in parameters), *(row[c] for c in counts)]
        for m in metrics:
            mean, low, high = (row[f"{m}.{s}"] for s in ("mean", "ci_low", "ci_high"))
            cells.append(f"{_g(mean)} [{_g(low)}, {_g(high)}]")
        rows.append(cells)
    return rows, header


def _g(value) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4g}"
