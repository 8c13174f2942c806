"""Figures of what happened to a run's mail: outcomes, latency distributions, attempts and
the replies behind deferrals and bounces, by sender class.

Each function takes tables of a run directory (see README "Outputs") and returns a
``matplotlib.figure.Figure``. Rows for delivery status notifications (``is_dsn``) are left
out, as in the run summary, except in ``reasons_figure`` where they form a class ``dsn``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from mailnet.metric_catalog import format_seconds
from mailnet.report.style import (
    class_style,
    figure_legend,
    log_duration_axis,
    marker_every,
    new_figure,
    new_grid,
    ordered_classes,
    series_style,
    shade_warmup,
    time_unit,
)

CDF_POINTS = 400
"""Points per CDF line (evaluated on a log-spaced grid, so the figure stays small)."""
MIN_LATENCY_S = 0.01
"""Latencies below this (local delivery can take 0 s) are drawn at this value on log axes."""
MAX_ATTEMPT_BAR = 10
"""Recipients with more attempts than this share one bar."""
MAX_REASONS = 15

OUTCOMES = (  # (label, test on a messages frame)
    ("delivered, inbox", lambda m: (m["status"] == "delivered") & (m["folder"] != "spam")),
    ("delivered, spam folder", lambda m: (m["status"] == "delivered") & (m["folder"] == "spam")),
    ("bounced", lambda m: m["status"] == "bounced"),
    ("expired", lambda m: m["status"] == "expired"),
    ("dropped", lambda m: m["status"] == "dropped"),
    ("still queued at the end", lambda m: m["status"] == "in_queue"),
)

ENHANCED_CODES = {  # RFC 3463 §3 subject.detail
    "0.0": "other or undefined status",
    "1.1": "bad destination mailbox",
    "1.2": "bad destination system",
    "2.0": "other or undefined mailbox status",
    "2.1": "mailbox disabled / rate limited",
    "2.2": "mailbox full",
    "3.2": "system not accepting messages",
    "4.1": "no answer from host",
    "4.3": "directory server failure",
    "4.7": "delivery time expired",
    "7.0": "security or policy",
    "7.1": "delivery not authorized",
}
"""Meanings of the details the model's replies use; any other detail is named by its
subject (``ENHANCED_SUBJECTS``), so a policy with a new reply needs nothing here."""

ENHANCED_SUBJECTS = {  # RFC 3463 §3: the subject alone
    "0": "other or undefined status",
    "1": "addressing status",
    "2": "mailbox status",
    "3": "mail system status",
    "4": "network and routing status",
    "5": "mail delivery protocol status",
    "6": "message content or media status",
    "7": "security or policy status",
}


def _mail(messages: pd.DataFrame) -> pd.DataFrame:
    """Non-DSN rows with plain string columns for the class, status and folder."""
    mail = messages[~messages["is_dsn"].astype(bool)]
    out = pd.DataFrame(
        {
            "sender_class": mail["sender_class"].astype(str),
            "status": mail["status"].astype(str),
            "folder": mail["folder"].astype(object).where(mail["folder"].notna(), None),
        }
    )
    for column in ("created_at", "delivered_at", "retrieved_at", "attempts"):
        out[column] = mail[column].to_numpy(dtype=float)
    return out


def outcomes_figure(messages: pd.DataFrame) -> Figure:
    """Share of each sender class's recipients by final outcome (stacked horizontal bars)."""
    mail = _mail(messages)
    classes = ordered_classes(mail["sender_class"])
    figure, ax = new_figure(height=1.8 + 0.55 * max(len(classes), 1))
    left = np.zeros(len(classes))
    for i, (label, test) in enumerate(OUTCOMES):
        share = np.array([test(mail[mail["sender_class"] == c]).mean() for c in classes]) * 100
        share = np.nan_to_num(share)
        if not share.any():
            continue
        ax.barh(
            range(len(classes)), share, left=left, height=0.6, label=label, **series_style(i).bar()
        )
        left += share
    counts = mail["sender_class"].value_counts()
    ax.set_yticks(range(len(classes)), [f"{c}\n({counts.get(c, 0):,} recipients)" for c in classes])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("share of the class's recipients (%)")
    ax.set_ylabel("sender class")
    ax.set_title("Final outcome by sender class")
    figure_legend(figure, *ax.get_legend_handles_labels())
    return figure


def _cdf(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    ordered = np.sort(values)
    return np.searchsorted(ordered, grid, side="right") / len(ordered)


def latency_figure(messages: pd.DataFrame) -> Figure:
    """Cumulative distributions of delivery latency (created → stored in the mailbox) and
    end-to-end latency (created → fetched by the recipient's client) per sender class, on a
    log time axis. Each curve is over the class's recipients that got that far."""
    mail = _mail(messages)
    classes = ordered_classes(mail["sender_class"])
    kinds = (
        ("delivery latency (created → in mailbox)", "delivered_at"),
        ("end-to-end latency (created → fetched by client)", "retrieved_at"),
    )
    latencies = {
        (column, c): (part[column] - part["created_at"]).dropna().to_numpy()
        for _, column in kinds
        for c in classes
        for part in [mail[mail["sender_class"] == c]]
    }
    everything = np.concatenate([v for v in latencies.values() if v.size] or [np.ones(1)])
    low = max(
        MIN_LATENCY_S,
        float(everything[everything > 0].min()) if (everything > 0).any() else MIN_LATENCY_S,
    )
    high = max(float(everything.max()), low * 10)
    grid = np.geomspace(low, high, CDF_POINTS)
    figure, axes = new_grid(1, 2, height=4.2, sharey=True)
    for ax, (title, column) in zip(axes[0], kinds, strict=True):
        for c in classes:
            values = np.maximum(latencies[(column, c)], low)
            if not values.size:
                continue
            style = class_style(c)
            ax.plot(
                grid,
                _cdf(values, grid),
                drawstyle="steps-post",
                linewidth=1.5,
                markevery=CDF_POINTS // 10,
                markersize=5,
                label=f"{c} (n={values.size:,})",
                **style.line(),
            )
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        log_duration_axis(ax.xaxis, low, high)
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("latency (log scale)")
        if len(ax.get_legend_handles_labels()[1]) > 1:
            ax.legend(loc="lower right", fontsize="small")
    axes[0, 0].set_ylabel("fraction of recipients with latency ≤ x")
    figure.suptitle("Latency distribution by sender class")
    return figure


def attempts_figure(messages: pd.DataFrame) -> Figure:
    """Share of each sender class's recipients by number of delivery attempts (over every
    hop; 0 = delivered locally or never tried), grouped bars."""
    mail = _mail(messages)
    classes = ordered_classes(mail["sender_class"])
    counts = mail["attempts"].fillna(0).clip(upper=MAX_ATTEMPT_BAR + 1).astype(int)
    top = int(counts.max()) if len(counts) else 1
    bins = np.arange(0, top + 1)
    width = 0.8 / max(len(classes), 1)
    figure, ax = new_figure(height=4.2)
    for i, c in enumerate(classes):
        of_class = counts[mail["sender_class"] == c]
        share = of_class.value_counts(normalize=True).reindex(bins, fill_value=0) * 100
        ax.bar(
            bins + (i - (len(classes) - 1) / 2) * width,
            share.to_numpy(),
            width=width,
            label=f"{c} (n={len(of_class):,})",
            **class_style(c).bar(),
        )
    labels = [str(b) for b in bins]
    if top > MAX_ATTEMPT_BAR:
        labels[-1] = f"≥{MAX_ATTEMPT_BAR + 1}"
    ax.set_xticks(bins, labels)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}%"))
    ax.set_xlabel("delivery attempts per recipient (all hops)")
    ax.set_ylabel("share of the class's recipients (%, log scale)")
    ax.set_title("Delivery attempts per recipient by sender class")
    if len(classes) > 1:
        ax.legend(fontsize="small")
    return figure


def reply_label(code: float | None, enhanced: str | None) -> str:
    """``"451 4.7.1 delivery not authorized"``: the reply codes and what RFC 3463 calls them
    (``"450 4.7.25 security or policy status"`` for a detail without its own meaning)."""
    enhanced_text = "" if pd.isna(enhanced) else str(enhanced)
    code_text = "" if code is None or pd.isna(code) else str(int(code))
    detail = enhanced_text.partition(".")[2]
    meaning = ENHANCED_CODES.get(detail) or ENHANCED_SUBJECTS.get(detail.partition(".")[0], "")
    return " ".join(part for part in (code_text, enhanced_text, meaning) if part) or "unknown"


def _with_class(frame: pd.DataFrame, messages: pd.DataFrame) -> pd.Series:
    """The sender class of each row of ``frame`` (``dsn`` for notifications)."""
    lookup = messages[["message_id", "recipient", "sender_class", "is_dsn"]].copy()
    lookup["cls"] = np.where(
        lookup["is_dsn"].astype(bool), "dsn", lookup["sender_class"].astype(str)
    )
    lookup["recipient"] = lookup["recipient"].astype(str)
    keys = pd.DataFrame(
        {
            "message_id": frame["message_id"].to_numpy(),
            "recipient": frame["recipient"].astype(str).to_numpy(),
        }
    )
    merged = keys.merge(
        lookup[["message_id", "recipient", "cls"]].drop_duplicates(["message_id", "recipient"]),
        how="left",
        on=["message_id", "recipient"],
    )
    return merged["cls"].fillna("unknown")


def reasons_figure(attempts: pd.DataFrame, messages: pd.DataFrame) -> Figure:
    """Deferred attempts and bounced recipients by reply (SMTP code, enhanced status code
    and its RFC 3463 meaning), stacked by sender class. Deferrals come from
    ``attempts.parquet`` (every 4xx reply counts), bounces from ``messages.parquet`` (one
    per bounced or expired recipient, by its final reply)."""
    deferrals, bounces = _reasons(attempts, messages)
    panels = (
        ("Deferred attempts (4xx replies)", "deferred attempts", deferrals),
        ("Bounced recipients (final 5xx reply or expiry)", "bounced recipients", bounces),
    )
    sizes = [max(1, min(MAX_REASONS, frame["reason"].nunique())) for *_, frame in panels]
    figure, grid = new_grid(
        2,
        1,
        height=2.8 + 0.42 * sum(sizes),
        gridspec_kw={"height_ratios": [s + 1.2 for s in sizes]},
    )
    axes = grid[:, 0]
    classes = ordered_classes(pd.concat([deferrals["cls"], bounces["cls"]]))
    for ax, (title, unit, frame) in zip(axes, panels, strict=True):
        _reasons_panel(ax, frame, classes, title, unit)
    figure.suptitle("Deferrals and bounces by reply code and sender class")
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    figure_legend(figure, handles, labels, title="sender class")
    return figure


def _reasons(attempts: pd.DataFrame, messages: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(deferrals, bounces)``: one row per deferred attempt and per bounced or expired
    recipient, with its ``reason`` (reply label) and sender class ``cls``."""
    deferred = attempts[attempts["outcome"].astype(str) == "deferred"]
    deferrals = pd.DataFrame(
        {
            "reason": [
                reply_label(c, e)
                for c, e in zip(deferred["code"], deferred["enhanced_code"], strict=True)
            ],
            "cls": _with_class(deferred, messages).to_numpy(),
        }
    )
    failed = messages[messages["status"].astype(str).isin(["bounced", "expired"])]
    bounces = pd.DataFrame(
        {
            "reason": [
                reply_label(c, e)
                for c, e in zip(failed["final_code"], failed["final_enhanced_code"], strict=True)
            ],
            "cls": np.where(
                failed["is_dsn"].astype(bool), "dsn", failed["sender_class"].astype(str)
            ),
        }
    )
    return deferrals, bounces


def _reasons_panel(
    ax: Axes, frame: pd.DataFrame, classes: list[str], title: str, unit: str
) -> None:
    """The ``MAX_REASONS`` most frequent replies in ``frame`` as bars stacked by class."""
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(f"number of {unit}")
    ax.set_ylabel("SMTP reply")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if frame.empty:
        ax.text(0.5, 0.5, f"no {unit}", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
        return
    table = frame.groupby(["reason", "cls"]).size().unstack(fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index[:MAX_REASONS]]
    left = np.zeros(len(table))
    for c in classes:
        if c not in table.columns:
            continue
        ax.barh(
            range(len(table)),
            table[c].to_numpy(),
            left=left,
            height=0.65,
            label=c,
            **class_style(c).bar(),
        )
        left += table[c].to_numpy()
    for y, total in enumerate(left):
        ax.text(total, y, f" {int(total):,}", va="center", fontsize="small")
    ax.set_xlim(0, left.max() * 1.15)
    ax.set_yticks(range(len(table)), table.index, fontsize="small")
    ax.invert_yaxis()


OVER_TIME_SERIES = (
    ("delivered", "delivered"),
    ("deferred", "deferred attempts"),
    ("bounced", "bounced or expired"),
    ("spam_folder", "spam folder"),
    ("collateral", "collateral damage"),
)
"""The counts of ``timeseries.outcomes_over_time`` drawn, and their legend labels."""


def over_time_figure(table: pd.DataFrame, warmup: float | None = None) -> Figure | None:
    """Outcomes per bin (top) and the recipients not yet settled at the end of each bin
    (bottom), over simulated time; ``None`` for an empty table."""
    if table.empty:
        return None
    end = float(table["end"].iloc[-1])
    scale, unit = time_unit(end)
    width = float(table["end"].iloc[0] - table["start"].iloc[0])
    figure, axes = new_grid(2, 1, height=6.0, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top, bottom = axes[0, 0], axes[1, 0]
    middle = (table["start"] + table["end"]).to_numpy() / 2 / scale
    for i, (column, label) in enumerate(OVER_TIME_SERIES):
        style = series_style(i)
        top.plot(
            middle, table[column], label=label, markevery=marker_every(len(table)), **style.line()
        )
    top.set_ylabel(f"recipients per {format_seconds(width)}")
    top.set_title("Outcomes over time")
    bottom.step(table["end"] / scale, table["unsettled"], where="post", color="black")
    bottom.set_ylabel("not yet settled")
    bottom.set_xlabel(f"simulated time ({unit})")
    for ax in (top, bottom):
        shade_warmup(ax, warmup, scale)
        ax.set_xlim(0, end / scale)
    figure_legend(figure, *top.get_legend_handles_labels())
    return figure
