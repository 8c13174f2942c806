"""The sections of a run's page that answer an operator's first questions: the summary
with legitimate mail beside all mail, the breakdowns by provider, sender group, recipient
domain, receiver and hop, and the outcomes over time with how the queue drained."""

from __future__ import annotations

from pathlib import Path

from mailnet.breakdowns import DIMENSION_LABELS, DIMENSIONS, Layout, breakdown, text_rows
from mailnet.humanize import count, duration, share
from mailnet.report import delivery
from mailnet.report.embed import MAX_TABLE_ROWS, Figures
from mailnet.report.inputs import RunData
from mailnet.report.page import Page
from mailnet.run_summary import summary_rows
from mailnet.timeseries import COLUMNS as TIME_COLUMNS
from mailnet.timeseries import outcomes_over_time, settling

OVER_TIME_COLUMNS = tuple(c for c in TIME_COLUMNS if c != "collateral_rate")


def summary_section(page: Page, run: RunData) -> None:
    """The run's summary table: all mail and legitimate mail side by side."""
    settled = settling(run.messages, run.queues, run.scenario_toml)
    page.table(
        [list(row) for row in summary_rows(run.summary, settled)],
        header=["metric", "all mail", "legitimate mail"],
    )


def breakdown_section(page: Page, run: RunData) -> None:
    """One table per dimension, the largest groups first."""
    page.heading("Breakdowns")
    page.paragraph(
        "Recipients (delivery status notifications excluded) by provider, sender group, "
        "recipient domain and receiving organisation, and attempts by sending MTA (hop). "
        "Deferral rate: share of remote recipients deferred at least once; spam folder: "
        "share of the delivered; collateral: share of the group's legitimate recipients hurt "
        "by a reputation others earned. mailnet breakdown RUN_DIR --by group prints them."
    )
    layout = Layout.from_toml(run.scenario_toml)
    for by in DIMENSIONS:
        table = breakdown(run.messages, run.attempts, layout, by)
        if by != "hop" and len(table) < 2:  # one group is the summary again
            continue
        page.heading(f"By {DIMENSION_LABELS[by]}", level=3)
        header, rows = text_rows(table, by, MAX_TABLE_ROWS)
        page.table(rows, header=header)


def over_time_section(page: Page, out: Path, run: RunData) -> None:
    """Outcomes per hour or day, as a figure and a table, and how the queue drained."""
    if run.duration is None:
        return
    page.heading("Outcomes over time")
    table = outcomes_over_time(run.messages, run.attempts, run.duration)
    settled = settling(run.messages, run.queues, run.scenario_toml)
    drained = (
        "was never used"
        if settled.deferred_peak_at is None
        else f"peaked at {settled.deferred_peak:,} at {duration(settled.deferred_peak_at)} "
        + (
            "and was not empty again by the end of the run"
            if settled.drained_at is None
            else f"and was empty again at {duration(settled.drained_at)}"
        )
    )
    after = settled.drain_after_outage_s
    if after is not None and settled.outage_ended_at is not None:
        drained += (
            f", {duration(after)} after the scheduled outage that ended at "
            f"{duration(settled.outage_ended_at)}"
        )
    page.paragraph(
        f"Maximum delivery latency {duration(settled.max_latency_s)}; "
        f"{settled.in_queue_at_end:,} recipients still in a queue at the end. The deferred "
        f"queue of every MTA together {drained}."
    )
    Figures(page, out).add(
        "over_time",
        lambda: delivery.over_time_figure(table, run.warmup),
        "Top: recipients delivered, bounced or filed as spam in each bin, deferred attempts "
        "(every hop), and legitimate recipients hurt by others' reputation by submission "
        "time. Bottom: recipients submitted and not yet delivered or bounced; a run that "
        "does not settle keeps a rising line.",
        missing="No outcomes to draw.",
    )
    rows = [
        [
            duration(r["start"]),
            *(count(r[c]) for c in OVER_TIME_COLUMNS),
            share(r["collateral_rate"]),
        ]
        for r in table.head(MAX_TABLE_ROWS).to_dict("records")
    ]
    header = ["from", *(c.replace("_", " ") for c in OVER_TIME_COLUMNS), "collateral share"]
    page.table(rows, header=header)
