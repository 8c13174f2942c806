"""The report page of one run: summary tables, delivery, queue, blocklist and reputation
figures, sender suspensions, the resolved scenario and the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mailnet import metric_catalog as catalog
from mailnet.metric_catalog import format_seconds, format_value
from mailnet.metrics import flatten
from mailnet.qshape import deferred_peak, format_qshape, qshape
from mailnet.report import delivery, provenance, timelines, views
from mailnet.report.embed import MAX_TABLE_ROWS, Figures
from mailnet.report.inputs import RunData
from mailnet.report.page import Page


def run_page(run: RunData, out: Path) -> Page:
    """The page of run directory ``run``; its figures are written into ``out``."""
    page = Page(f"mailnet run report: {run.path.resolve().name}")
    end, warmup = run.duration, run.warmup
    page.paragraph(
        f"Run directory {run.path.resolve()}: seed {run.manifest.get('seed', '?')}, "
        f"{format_seconds(end) if end else '?'} simulated"
        f"{f', warm-up {format_seconds(warmup)}' if warmup else ''}; mailnet "
        f"{run.manifest.get('mailnet_version', '?')}."
    )
    if run.summary:
        page.heading("Summary")
        views.summary_section(page, run)
        page.heading("Outcomes by sender class", level=3)
        page.table(*class_table(run.summary))
    views.breakdown_section(page, run)
    views.over_time_section(page, out, run)
    _delivery_section(page, out, run)
    _queue_section(page, out, run)
    _reputation_section(page, out, run)
    page.heading("Scenario")
    page.paragraph("The resolved scenario, every default written out (scenario.toml):")
    page.pre(run.scenario_toml or "(scenario.toml is missing)")
    if run.manifest:
        page.heading("Manifest")
        rows = [[k, _plain(v)] for k, v in run.manifest.items() if k != "environment"]
        page.table(rows, header=["key", "value"])
    provenance.add_environment(page, run.path, run.manifest)
    return page


def _delivery_section(page: Page, out: Path, run: RunData) -> None:
    figures = Figures(page, out)
    page.heading("Delivery")
    figures.add(
        "outcomes",
        lambda: delivery.outcomes_figure(run.messages),
        "Final outcome of every recipient (delivery status notifications excluded), as a "
        "share of its sender class.",
    )
    figures.add(
        "latency",
        lambda: delivery.latency_figure(run.messages),
        "Cumulative distribution of latency per sender class, log time axis. Left: until the "
        "message is stored in the recipient's mailbox; right: until the recipient's client "
        "fetches it.",
    )
    figures.add(
        "attempts",
        lambda: delivery.attempts_figure(run.messages),
        "Delivery attempts per recipient over every hop (0: delivered locally or never "
        "attempted), as a share of the sender class, log scale.",
    )
    figures.add(
        "reasons",
        lambda: delivery.reasons_figure(run.attempts, run.messages),
        "Deferred attempts by 4xx reply and bounced recipients by final reply, with the RFC 3463 "
        "meaning of the enhanced status code, stacked by sender class.",
    )


def _queue_section(page: Page, out: Path, run: RunData) -> None:
    figures = Figures(page, out)
    page.heading("Queues")
    end, warmup = run.duration, run.warmup
    for kind, name, text in (
        ("mta", "queues_mta", "Each MTA's active and deferred queue"),
        ("server", "queues_servers", "Each MX server's sessions in use and connections waiting"),
    ):

        def draw(kind: str = kind) -> Figure | None:
            return timelines.queue_figure(
                run.queues, kind, end=end, warmup=warmup, changes=run.changes
            )

        figures.add(
            name,
            draw,
            f"{text} over simulated time (step functions; long series as time-weighted means "
            "per bin). Hatched: the warm-up, left out of the summary.",
            missing=f"No {kind} queue series in this run.",
        )
    averages = {
        f"queue_time_average.{k}": v for k, v in run.summary.get("queue_time_average", {}).items()
    }
    if averages:
        page.table(
            [[catalog.title(k), catalog.format_metric(k, v)] for k, v in averages.items()],
            header=["queue (after warm-up)", "time average"],
        )
    _qshape_section(page, run)


def _qshape_section(page: Page, run: RunData) -> None:
    """The queues as Postfix's qshape shows them, at the peak of the deferred queue."""
    peak = deferred_peak(run.queues)
    if peak is None:
        return
    at, size = peak
    page.heading("Queue shape at the deferred peak", level=3)
    page.paragraph(
        f"The deferred queue of every MTA together peaked at {size} deliveries (a message's "
        f"recipients at one domain) at {format_seconds(at)}. The queued recipients then, as Postfix's qshape shows them "
        "(mailnet qshape RUN_DIR --at TIME): by recipient domain and by minutes since they "
        "reached the queue (column T: the total; 5: under 5 minutes; 10: 5 to 10 minutes; "
        "1280+: over 1280 minutes)."
    )
    page.pre(format_qshape(qshape(run.messages, run.attempts, at)))


def _reputation_section(page: Page, out: Path, run: RunData) -> None:
    figures = Figures(page, out)
    page.heading("Blocklists and reputation")
    end, warmup = run.duration, run.warmup
    if figures.add(
        "listings",
        lambda: timelines.listings_figure(run.listings, end=end, changes=run.changes),
        "Blocklist listings over time: one row per listed key and list; colour: list, "
        "hatch: scope (ip, prefix, asn); the trigger is written before each bar.",
        missing="No blocklist listings in this run: no listings figure.",
    ):
        page.table(
            _listing_rows(run.listings),
            header=["list", "scope", "key", "listed at", "delisted at", "trigger"],
        )
    figures.add(
        "reputation",
        lambda: timelines.reputation_figure(
            run.reputation, end=end, warmup=warmup, changes=run.changes
        ),
        "Reputation score of each sending IP as kept by each receiver, over simulated time.",
        missing="No reputation samples in this run (no receiver keeps IP reputation): "
        "no reputation figure.",
    )
    figures.add(
        "domain_reputation",
        lambda: timelines.reputation_figure(
            run.reputation, kind="domain", end=end, warmup=warmup, changes=run.changes
        ),
        "Reputation score of each authenticated sending domain (DKIM d=) as kept by each "
        "receiver, over simulated time: a customer on the provider's shared domain shares "
        "its score.",
        missing="No domain reputation samples in this run (no receiver keeps domain "
        "reputation): no domain reputation figure.",
    )
    if len(run.suspensions):
        page.heading("Sender suspensions", level=3)
        page.paragraph(
            "Senders their provider suspended: when, and the volume and rates in the "
            "provider's window that crossed its threshold."
        )
        page.table(
            _suspension_rows(run.suspensions),
            header=["sender", "suspended at", "sent in window", "bounce rate", "complaint rate"],
        )


CLASS_COLUMNS = (
    "recipients",
    "delivered",
    "inbox",
    "spam_folder",
    "bounced",
    "bounce_rate",
    "deferral_rate",
    "latency_s.p50",
    "latency_s.p90",
)
"""The per-class outcomes (``classes.<class>.<key>``) in the table of sender classes."""


def class_table(summary: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """``(rows, header)``: one row per sender class, the ``CLASS_COLUMNS`` in their units."""
    labels = {key: label for key, label, _ in catalog.OUTCOME_FIELDS}
    header = ["class", *(labels[key] for key in CLASS_COLUMNS)]
    rows = []
    for name, outcomes in (summary.get("classes") or {}).items():
        flat = flatten(outcomes)
        rows.append(
            [
                name,
                *(
                    catalog.format_metric(f"classes.{name}.{key}", flat.get(key))
                    for key in CLASS_COLUMNS
                ),
            ]
        )
    return rows, header


def _listing_rows(listings: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in listings.sort_values("listed_at").head(MAX_TABLE_ROWS).to_dict("records"):
        delisted = r["delisted_at"]
        shown = format_seconds(delisted) if np.isfinite(delisted) else "still listed"
        rows.append(
            [r["list"], r["scope"], r["key"], format_seconds(r["listed_at"]), shown, r["trigger"]]
        )
    return [[str(cell) for cell in row] for row in rows]


def _suspension_rows(suspensions: pd.DataFrame) -> list[list[str]]:
    return [
        [
            str(r["sender"]),
            format_seconds(r["at"]),
            format_value("count", r["sent"]),
            format_value("share", r["bounce_rate"]),
            format_value("share", r["complaint_rate"]),
        ]
        for r in suspensions.sort_values("at").head(MAX_TABLE_ROWS).to_dict("records")
    ]


def _plain(value: object) -> str:
    return value if isinstance(value, str) else str(value)
