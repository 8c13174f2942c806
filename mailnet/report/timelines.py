"""Figures of a run over simulated time: queue lengths, blocklist listings and IP reputation.

Each function takes a table of a run directory (see README "Outputs") and returns a
``matplotlib.figure.Figure``, or ``None`` when the table holds nothing to draw. Given the
run's ``changes`` table, each marks the changes made during the run with dashed lines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mailnet.report.style import (
    figure_legend,
    marker_every,
    new_figure,
    new_grid,
    series_style,
    shade_warmup,
    time_label,
    time_unit,
)

BINS = 240
"""Above this many changes a queue series is drawn as time-weighted means over this many
equal bins (a change-by-change step line would be a solid block of ink)."""

QUEUE_METRICS = {
    "mta": (("active", "active queue (messages)"), ("deferred", "deferred queue (messages)")),
    "server": (("sessions", "sessions in use"), ("backlog", "connections waiting")),
}
MAX_LISTING_ROWS = 40
MAX_REPUTATION_IPS = 10


def step_means(times: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-weighted mean of a step function over each interval ``edges[i]..edges[i+1]``.

    The function is ``values[k]`` from ``times[k]`` until the next change (``times`` sorted;
    of several changes at one instant the last counts) and 0 before the first change.
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = np.append(times[1:] != times[:-1], True)
    times, values = times[keep], values[keep]
    # integral of the step function from times[0] to each change
    area = np.concatenate(([0.0], np.cumsum(values[:-1] * np.diff(times))))

    def integral(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(times, t, side="right") - 1
        inside = k >= 0
        out = np.zeros_like(t, dtype=float)
        out[inside] = area[k[inside]] + values[k[inside]] * (t[inside] - times[k[inside]])
        return out

    total = integral(np.asarray(edges, dtype=float))
    return np.diff(total) / np.diff(edges)


def queue_figure(
    queues: pd.DataFrame,
    kind: str = "mta",
    *,
    end: float | None = None,
    warmup: float | None = None,
    changes: pd.DataFrame | None = None,
) -> Figure | None:
    """Queue lengths over time for every entity of ``kind``: ``"mta"`` (active and
    deferred queues) or ``"server"`` (sessions in use and backlog), one panel per metric.

    ``queues`` is ``queues.parquet`` (a step function per entity and metric, one row per
    change); ``end`` is the end of the simulation in seconds (default: the last change) and
    ``warmup`` the warm-up period to shade. ``None`` if there is no such entity.
    """
    rows = queues[queues["kind"].astype(str) == kind]
    if rows.empty:
        return None
    end = float(end if end is not None else rows["time"].max())
    end = end if end > 0 else 1.0
    scale, _ = time_unit(end)
    metrics = [
        (m, label) for m, label in QUEUE_METRICS[kind] if (rows["metric"].astype(str) == m).any()
    ]
    entities = sorted(rows["entity"].astype(str).unique())
    figure, axes = new_grid(len(metrics), 1, height=2.3 + 2.2 * len(metrics), sharex=True)
    binned = False
    for ax, (metric, label) in zip(axes[:, 0], metrics, strict=True):
        series = rows[rows["metric"].astype(str) == metric]
        shade_warmup(ax, warmup, scale)
        binned |= _queue_panel(ax, series, entities, label, end)
        mark_changes(ax, changes, scale)
    axes[-1, 0].set_xlabel(time_label(end))
    what = "MTA queue lengths" if kind == "mta" else "MX server sessions and backlog"
    how = f" (time-weighted mean per {_bin_text(end / BINS)})" if binned else ""
    figure.suptitle(what + how)
    figure_legend(figure, *axes[0, 0].get_legend_handles_labels())
    return figure


def _queue_panel(
    ax: Axes, series: pd.DataFrame, entities: list[str], label: str, end: float
) -> bool:
    """One metric of every entity as step lines; True if a long series was binned."""
    scale, _ = time_unit(end)
    binned = False
    for i, entity in enumerate(entities):
        one = series[series["entity"].astype(str) == entity].sort_values("time", kind="stable")
        if one.empty:
            continue
        x, y, was_binned = _queue_line(one["time"].to_numpy(), one["value"].to_numpy(), end)
        binned |= was_binned
        ax.plot(
            x / scale,
            y,
            drawstyle="steps-post",
            linewidth=1.3,
            markevery=marker_every(len(x)),
            markersize=4,
            label=entity,
            **series_style(i).line(),
        )
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    if not series["value"].astype(float).any():
        ax.set_ylim(0, 1)
        ax.text(
            0.5,
            0.5,
            f"{label}: 0 throughout",
            transform=ax.transAxes,
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none"},
        )
    ax.set_xlim(0, end / scale)
    return binned


def _queue_line(
    times: np.ndarray, values: np.ndarray, end: float
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(x, y, binned)``: the exact steps, or time-weighted bin means for long series."""
    if len(times) <= 2 * BINS:
        x = np.append(times, end)
        y = np.append(values, values[-1])
        return x, y.astype(float), False
    edges = np.linspace(0.0, end, BINS + 1)
    means = step_means(times, values, edges)
    return edges, np.append(means, means[-1]), True


def _bin_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def listings_figure(
    listings: pd.DataFrame, *, end: float | None = None, changes: pd.DataFrame | None = None
) -> Figure | None:
    """Blocklist listings as Gantt bars: one row per listed key (IP, prefix or ASN) and
    list, labelled on the left with what triggered the listing, the colour naming the list
    and the hatch the scope; a bar still open at the end of the run is drawn to ``end``
    (seconds) and marked with a ▶. ``None`` if empty."""
    if listings is None or listings.empty:
        return None
    frame = listings.copy()
    for column in ("list", "scope", "key", "trigger"):
        frame[column] = frame[column].astype(str)
    end = float(
        end
        if end is not None
        else np.nanmax([frame["listed_at"].max(), frame["delisted_at"].max()])
    )
    scale, _ = time_unit(end)
    first = frame.groupby(["key", "list"])["listed_at"].min().sort_values(kind="stable")
    rows = list(first.index)
    shown = rows[:MAX_LISTING_ROWS]
    lists = sorted(frame["list"].unique())
    scopes = sorted(frame["scope"].unique())
    figure, ax = new_figure(height=1.8 + 0.32 * len(shown))
    for y, (key, name) in enumerate(shown):
        part = frame[(frame["key"] == key) & (frame["list"] == name)]
        for listing in part.itertuples():
            still = not np.isfinite(listing.delisted_at)
            stop = end if still else listing.delisted_at
            style = series_style(lists.index(name))
            ax.barh(
                y,
                (stop - listing.listed_at) / scale,
                left=listing.listed_at / scale,
                height=0.7,
                color=style.color,
                edgecolor="#222222",
                linewidth=0.6,
                hatch=series_style(scopes.index(listing.scope) + 1).hatch,
            )
            if still:
                ax.plot(stop / scale, y, marker=">", color="#222222", markersize=7, clip_on=False)
            ax.text(
                listing.listed_at / scale,
                y,
                f"{listing.trigger} ",
                fontsize="small",
                va="center",
                ha="right",
                color="#333333",
            )
    ax.set_yticks(range(len(shown)), [f"{key}  {name}" for key, name in shown], fontsize="small")
    ax.set_ylim(len(shown) - 0.4, -0.8)
    ax.set_xlim(0, end / scale * 1.02)
    mark_changes(ax, changes, scale)
    ax.set_xlabel(time_label(end))
    ax.set_ylabel("listed key and list")
    more = f" (first {len(shown)} of {len(rows)})" if len(rows) > len(shown) else ""
    ax.set_title(f"Blocklist listings over time{more}; ▶ still listed at the end")
    _listings_legend(figure, lists, scopes)
    return figure


def _listings_legend(figure: Figure, lists: list[str], scopes: list[str]) -> None:
    """Colours name the lists, hatches the scopes."""
    handles = [
        Patch(facecolor=series_style(i).color, edgecolor="#222222", label=f"list {name}")
        for i, name in enumerate(lists)
    ]
    handles += [
        Patch(
            facecolor="white",
            edgecolor="#222222",
            hatch=series_style(i + 1).hatch,
            label=f"scope {scope}",
        )
        for i, scope in enumerate(scopes)
    ]
    figure.legend(
        handles=handles,
        loc="outside right upper",
        fontsize="small",
        title="colour: list; hatch: scope",
        title_fontsize="small",
    )


def reputation_figure(
    reputation: pd.DataFrame,
    *,
    kind: str = "ip",
    end: float | None = None,
    warmup: float | None = None,
    changes: pd.DataFrame | None = None,
) -> Figure | None:
    """Each receiver's reputation score for each sending IP (``kind="ip"``) or each
    sending domain (``kind="domain"``) over time, one panel per receiver. With many keys
    only the ``MAX_REPUTATION_IPS`` that reached the lowest score are drawn. ``None`` if
    the table has no samples of that kind."""
    frame = _scores_of(reputation, kind)
    if frame.empty:
        return None
    end = float(end if end is not None else frame["time"].max()) or 1.0
    scale, _ = time_unit(end)
    receivers = sorted(frame["receiver"].unique())
    lowest = frame.groupby("key")["score"].min().sort_values(kind="stable")
    keys = sorted(lowest.index[:MAX_REPUTATION_IPS])
    figure, axes = new_grid(len(receivers), 1, height=1.6 + 2.6 * len(receivers), sharex=True)
    for ax, receiver in zip(axes[:, 0], receivers, strict=True):
        shade_warmup(ax, warmup, scale)
        part = frame[frame["receiver"] == receiver]
        for i, key in enumerate(keys):
            one = part[part["key"] == key].sort_values("time", kind="stable")
            if one.empty:
                continue
            ax.plot(
                one["time"] / scale,
                one["score"],
                drawstyle="steps-post",
                linewidth=1.3,
                markevery=marker_every(len(one)),
                markersize=4,
                label=key,
                **series_style(i).line(),
            )
        ax.set_ylabel(f"score at {receiver}")
        ax.set_xlim(0, end / scale)
        mark_changes(ax, changes, scale)
    axes[-1, 0].set_xlabel(time_label(end))
    what = "IP" if kind == "ip" else "sending domain"
    noun = "IPs" if kind == "ip" else "domains"
    more = (
        f" ({len(keys)} lowest-scoring of {len(lowest)} {noun})" if len(lowest) > len(keys) else ""
    )
    figure.suptitle(f"{what} reputation score per receiver{more}")
    figure_legend(figure, *axes[0, 0].get_legend_handles_labels())
    return figure


def _scores_of(reputation: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """The samples of ``kind`` in ``reputation.parquet`` (``time``, ``receiver``, ``key``,
    ``score``); a table from before domain samples (an ``ip`` column, no ``kind``) holds
    IP samples only."""
    if reputation is None or reputation.empty:
        return pd.DataFrame(columns=["time", "receiver", "key", "score"])
    frame = reputation
    if "kind" not in frame.columns:
        frame = frame.rename(columns={"ip": "key"}).assign(kind="ip")
    frame = frame[frame["kind"].astype(str) == kind].copy()
    frame["receiver"] = frame["receiver"].astype(str)
    frame["key"] = frame["key"].astype(str)
    return frame


def mark_changes(ax: Axes, changes: pd.DataFrame | None, scale: float) -> None:
    """A dashed vertical line at each time a ``[[changes]]`` entry was applied, labelled
    at the top with the entry's index (``#0``); ``changes`` is ``changes.parquet``."""
    if changes is None or changes.empty:
        return
    applied = changes.drop_duplicates(["time", "change"]).sort_values("time", kind="stable")
    for time, index in zip(applied["time"], applied["change"], strict=True):
        x = float(time) / scale
        ax.axvline(x, color="#222222", linestyle="--", linewidth=1.0, zorder=5)
        ax.text(
            x,
            1.0,
            f" #{index}",
            transform=ax.get_xaxis_transform(),
            fontsize="small",
            va="top",
            ha="left",
            color="#222222",
        )
