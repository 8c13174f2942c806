"""Figures of a sweep: each metric's mean over replications against a swept parameter, with
its 95 % confidence interval and every replication's value as a faint dot, one line per
value of the other swept parameters (points without connecting lines on a categorical
axis); and, with a baseline point, each point's paired difference to it.

The input is ``points.parquet`` of a sweep directory: one row per grid point, a column per
swept key (named by its TOML key path), and ``<metric>.mean``, ``.ci_low``, ``.ci_high``
(and ``.diff``, ``.diff_low``, ``.diff_high`` with a baseline) for every metric; the dots
come from ``runs.parquet``. Intervals are drawn as computed, never clipped: rates and
durations have theirs on a bounded scale already (``mailnet.sweep.stats``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mailnet import metric_catalog as catalog
from mailnet.report.style import new_figure, new_grid, series_style
from mailnet.report.tick_labels import fit_x_labels
from mailnet.units import HOUR, parse_duration, parse_rate

STATS = (
    ".mean",
    ".ci_low",
    ".ci_high",
    ".median",
    ".runs_with",
    ".runs_with_low",
    ".runs_with_high",
    ".diff",
    ".diff_low",
    ".diff_high",
    ".diff_p_holm",
    ".if_any",
    ".if_any_low",
    ".if_any_high",
    ".if_any_n",
    ".if_none",
    ".if_none_low",
    ".if_none_high",
    ".if_none_n",
)
BOOKKEEPING = {
    "point",
    "n",
    "runs",
    "ok",
    "failed",
    "replication",
    "seed",
    "status",
    "error",
    "wall_time_s",
    "replications",
    "target_met",
    "target_worst_metric",
    "target_worst_ratio",
    "selected",
    "selection_replications",
    "selection_eliminated_at",
}


def point_metrics(points: pd.DataFrame) -> list[str]:
    """Every metric with a mean and a confidence interval in ``points``, in column order."""
    return [
        c[: -len(".mean")]
        for c in points.columns
        if c.endswith(".mean") and f"{c[:-5]}.ci_low" in points and f"{c[:-5]}.ci_high" in points
    ]


def headline_metrics(points: pd.DataFrame) -> list[str]:
    """The default metrics to draw: those present that the metric catalogue marks
    ``headline``, in its order (every ``queue_time_average.*`` series last)."""
    return catalog.members(point_metrics(points), headline=True)


def parameter_columns(points: pd.DataFrame, keys: Sequence[str] | None = None) -> list[str]:
    """The swept-parameter columns: ``keys`` (from the manifest's grid and linked tables)
    where present, else every column that is neither bookkeeping nor a metric statistic."""
    if keys:
        return [k for k in keys if k in points.columns]
    return [c for c in points.columns if c not in BOOKKEEPING and not c.endswith(STATS)]


@dataclass(frozen=True)
class Axis:
    """A swept parameter as plot coordinates: ``values`` (floats), ``label`` with its unit,
    and ``ticks``: text per distinct value for a categorical parameter, else ``None``."""

    values: np.ndarray
    label: str
    ticks: dict[int, str] | None = None
    names: dict[float, str] | None = None


def parameter_axis(column: pd.Series) -> Axis:
    """Numbers stay numbers; durations (``"4h"``) become hours, rates (``"20/h"``) events per
    hour; anything else is categorical, in order of first appearance."""
    name = str(column.name)
    values = list(column)
    if pd.api.types.is_bool_dtype(column):
        return _categorical(name, values)
    if pd.api.types.is_numeric_dtype(column):
        return Axis(column.to_numpy(dtype=float), name)
    texts = [str(v) for v in values]
    # a column mixing "20/h" and 0.01 is stored as text; bare numbers are seconds (or per
    # second), as in a scenario file
    if any(re.search(r"[0-9](ms|s|m|min|h|d|w)\s*$", t) for t in texts):
        try:
            hours = np.array([parse_duration(_number_or_text(t)) for t in texts]) / HOUR
            return Axis(hours, f"{name} (hours)", names=dict(zip(hours, texts, strict=True)))
        except ValueError:
            pass
    if any("/" in t for t in texts):
        try:
            rates = np.array([parse_rate(_number_or_text(t)) for t in texts]) * HOUR
            return Axis(rates, f"{name} (per hour)", names=dict(zip(rates, texts, strict=True)))
        except ValueError:
            pass
    try:
        return Axis(np.array([float(t) for t in texts]), name)
    except ValueError:
        return _categorical(name, texts)


def short_value(value: object) -> str:
    """A parameter value short enough for a legend: a JSON list of tables (``mx = [...]``)
    becomes the first value of each table joined by "+" (``mx1.example+backup.example``)."""
    text = str(value)
    if text.startswith("[{"):
        try:
            items = json.loads(text)
            return "+".join(str(next(iter(item.values()), "")) for item in items)
        except (ValueError, AttributeError, TypeError):
            pass
    return text


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _categorical(name: str, values: Sequence[object]) -> Axis:
    order = list(dict.fromkeys(str(v) for v in values))
    return Axis(
        np.array([order.index(str(v)) for v in values], dtype=float),
        name,
        dict(enumerate(order)),
    )


def swept_groups(points: pd.DataFrame, columns: list[str]) -> list[list[str]]:
    """The parameters that vary, grouped: columns whose values change together (linked keys)
    form one group, named by its first column. Columns with a single value are dropped."""
    groups: list[list[str]] = []
    codes: list[np.ndarray] = []
    for column in columns:
        code = pd.factorize(points[column].astype(str))[0]
        if code.max(initial=0) == 0:
            continue
        for i, other in enumerate(codes):
            if np.array_equal(code, other):
                groups[i].append(column)
                break
        else:
            groups.append([column])
            codes.append(code)
    return groups


def metric_title(metric: str) -> str:
    """A readable name from the metric catalogue: ``"legitimate.latency_s.p90"`` ->
    ``"legitimate mail: delivery latency, 90th percentile"``."""
    return catalog.title(metric)


def panel_title(metric: str) -> str:
    """A short title for a small panel; the y-axis label carries the quantity."""
    declared = catalog.lookup(metric)
    return declared.panel_title(metric) if declared is not None else metric_title(metric)


def always_zero(points: pd.DataFrame, metric: str) -> bool:
    """True if ``metric`` is 0 (or undefined) at every grid point: nothing to draw."""
    values = points[f"{metric}.mean"].to_numpy(dtype=float)
    return bool(np.all(np.nan_to_num(values) == 0))


def metric_scale(metric: str, values: np.ndarray) -> tuple[float, str]:
    """``(divide by, axis label)`` for a metric, from its unit in the metric catalogue:
    shares in %, seconds in a unit that suits ``values``, anything else as it is."""
    declared = catalog.lookup(metric)
    scale, symbol = catalog.axis_scale(catalog.unit_of(metric), values.astype(float).tolist())
    quantity = declared.axis_quantity(metric) if declared is not None else metric_title(metric)
    return scale, f"{quantity} ({symbol})" if symbol else quantity


@dataclass(frozen=True)
class _Layout:
    """Where each grid point goes: x coordinates, the line it belongs to, and the labels."""

    axis: Axis
    xlabel: str
    lines: np.ndarray
    series: list[str]
    legend_title: str


def _layout(points: pd.DataFrame, parameters: Sequence[str] | None, x: str | None) -> _Layout:
    groups = swept_groups(points, parameter_columns(points, parameters))
    if x is not None:
        groups.sort(key=lambda g: x not in g)
    else:
        groups.sort(key=lambda g: -points[g[0]].astype(str).nunique())
    if not groups:
        axis = Axis(np.zeros(len(points)), "single grid point", {0: "all runs"})
        return _Layout(axis, axis.label, np.full(len(points), ""), [""], "")
    axis = parameter_axis(points[groups[0][0]])
    xlabel = axis.label + "".join(f"\n(linked: {k})" for k in groups[0][1:])
    others = groups[1:]
    if not others:
        return _Layout(axis, xlabel, np.full(len(points), ""), [""], "")
    # lines in the order of their parameter values (numeric where possible)
    keys = np.column_stack([parameter_axis(points[g[0]]).values for g in others])
    order = np.lexsort(keys.T[::-1])
    text = points[[g[0] for g in others]].map(short_value).agg(", ".join, axis=1).to_numpy()
    series = list(dict.fromkeys(text[order]))
    title = ", ".join(g[0] + "".join(f" (linked: {k})" for k in g[1:]) for g in others)
    return _Layout(axis, xlabel, text, series, title)


def _draw(
    ax: Axes,
    points: pd.DataFrame,
    metric: str,
    layout: _Layout,
    *,
    runs: pd.DataFrame | None = None,
    stat: str = "mean",
    baseline: int | None = None,
) -> None:
    """``stat`` (``mean`` or ``diff``) of ``metric`` with its interval, one series per line;
    the replications' own values as faint dots when ``runs`` is given (for ``diff``, each
    replication's difference to the ``baseline`` point's run with the same seed)."""
    lows = {"mean": "ci_low", "diff": "diff_low"}
    highs = {"mean": "ci_high", "diff": "diff_high"}
    mean = points[f"{metric}.{stat}"].to_numpy(dtype=float)
    low = points[f"{metric}.{lows[stat]}"].to_numpy(dtype=float)
    high = points[f"{metric}.{highs[stat]}"].to_numpy(dtype=float)
    scale, ylabel = metric_scale(metric, np.abs(mean))
    axis = layout.axis
    series = layout.series
    dodge = 0.06 * (len(series) - 1) if axis.ticks else 0.0
    alpha = 0.18 if len(series) <= 2 else 0.1
    for i, label in enumerate(series):
        rows = np.flatnonzero(layout.lines == label)
        rows = rows[np.argsort(axis.values[rows], kind="stable")]
        xs = axis.values[rows] + (i * 0.12 - dodge if axis.ticks else 0.0)
        style = series_style(i)
        ys, lo, hi = mean[rows] / scale, low[rows] / scale, high[rows] / scale
        if runs is not None and (stat == "mean" or baseline is not None):
            at = (points["point"].to_numpy()[rows], xs)
            _dots(
                ax,
                replication_values(runs, metric, None if stat == "mean" else baseline),
                at,
                scale=scale,
                color=style.color,
                categorical=bool(axis.ticks),
            )
        line = style.line()
        if axis.ticks:
            line["linestyle"] = "none"  # categories are not a continuum: no lines between
        ax.plot(xs, ys, linewidth=1.5, markersize=6, label=label or stat, **line)
        if axis.ticks:
            ax.errorbar(
                xs,
                ys,
                yerr=[ys - lo, hi - ys],
                fmt="none",
                ecolor=style.color,
                capsize=4,
                linewidth=1.1,
            )
        else:
            ax.fill_between(
                xs,
                lo,
                hi,
                facecolor=style.color,
                alpha=alpha,
                linewidth=0,
                hatch=style.hatch,
                edgecolor=style.color,
            )
    if stat == "diff":
        ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--")
    _x_ticks(ax, axis)
    ax.set_ylabel(("difference in " if stat == "diff" else "") + ylabel)


def replication_values(
    runs: pd.DataFrame, metric: str, baseline: int | None = None
) -> dict[int, np.ndarray]:
    """Each point's values of ``metric`` over its ok replications; with ``baseline``, each
    replication's paired difference to the baseline point's run of the same replication
    (pairs where either run failed or left the metric undefined are dropped)."""
    if metric not in runs.columns:
        return {}
    ok = runs[runs["status"] == "ok"] if "status" in runs.columns else runs
    wide = ok.pivot(index="replication", columns="point", values=metric)
    if baseline is not None:
        if baseline not in wide.columns:
            return {}
        wide = wide.sub(wide[baseline], axis=0)
    return {
        int(point): values[np.isfinite(values)]
        for point, values in ((p, wide[p].to_numpy(dtype=float)) for p in wide.columns)
    }


def _dots(
    ax: Axes,
    values_at: dict[int, np.ndarray],
    at: tuple[np.ndarray, np.ndarray],
    *,
    scale: float,
    color: str,
    categorical: bool,
) -> None:
    """Each replication's value (``values_at``, by point) at its point, faint, with a small
    horizontal jitter; ``at`` gives the points' ids and their x positions."""
    point_ids, xs = at
    for point, x in zip(point_ids, xs, strict=True):
        values = values_at.get(int(point), np.empty(0)) / scale
        if values.size:
            # a small spread so that equal values stay visible: additive on a categorical
            # axis, proportional on a numeric one (which may become logarithmic)
            offset = (np.arange(values.size) % 7 - 3) / 3
            spread = x + 0.05 * offset if categorical else x * (1 + 0.012 * offset)
            ax.scatter(
                spread,
                values,
                s=7,
                color=color,
                alpha=0.25,
                linewidths=0,
                zorder=1,
            )


def _x_ticks(ax: Axes, axis: Axis) -> None:
    if axis.ticks:
        ax.set_xticks(list(axis.ticks))
        ax.set_xlim(-0.5, len(axis.ticks) - 0.5)
        fit_x_labels(ax, list(axis.ticks.values()))  # long labels would overlap
        return
    distinct = np.unique(axis.values[np.isfinite(axis.values)])
    if distinct.size and distinct.min() > 0 and distinct.max() >= 30 * distinct.min():
        ax.set_xscale("log")
    if 0 < distinct.size <= 8:
        # the values as the experiment file wrote them ("15m", "2000/d") where known
        names = axis.names or {}
        ax.set_xticks(distinct)
        fit_x_labels(ax, [names.get(v, f"{v:g}") for v in distinct])
        ax.minorticks_off()


def replications_note(points: pd.DataFrame) -> str:
    """``n = 20 replications per point`` (or a range, when points differ)."""
    column = "ok" if "ok" in points.columns else "runs" if "runs" in points.columns else None
    if column is None or not len(points):
        return ""
    low, high = int(points[column].min()), int(points[column].max())
    n = f"{low}" if low == high else f"{low}-{high}"
    return f"n = {n} replications per point"


def sweep_figure(
    points: pd.DataFrame,
    metric: str,
    *,
    parameters: Sequence[str] | None = None,
    x: str | None = None,
    runs: pd.DataFrame | None = None,
    stat: str = "mean",
    baseline: int | None = None,
) -> Figure:
    """``metric`` against a swept parameter: the mean over replications as a line with
    markers and its 95 % confidence interval as a band (points with error bars on a
    categorical axis), every replication's value from ``runs`` as a faint dot, and the
    number of replications in the title. ``stat="diff"`` draws each point's paired
    difference to the ``baseline`` point instead, around a zero line, with each
    replication's own difference as a dot and the interval's method in the title.

    ``parameters`` lists the swept keys (default: every non-metric column); the x-axis is
    ``x`` or the varying parameter with the most values, and there is one line per
    combination of the other varying parameters. Linked keys that change together are
    named together. With nothing varying, the single point is drawn.
    """
    layout = _layout(points, parameters, x)
    figure, ax = new_figure(height=4.6, width=8.0)
    _draw(ax, points, metric, layout, runs=runs, stat=stat, baseline=baseline)
    ax.set_xlabel(layout.xlabel)
    title = metric_title(metric)
    what = (
        f"paired difference to the baseline point, {difference_interval(metric)}"
        if stat == "diff"
        else "mean and 95 % confidence interval"
    )
    ax.set_title(
        f"{title[:1].upper()}{title[1:]}\n{what}; {replications_note(points)}",
        fontsize="medium",
    )
    _legend(ax, layout)
    return figure


def difference_interval(metric: str) -> str:
    """How ``metric``'s paired-difference interval is computed (``mailnet.sweep.stats``):
    the paired t for every metric; quantiles and ratios have a BCa bootstrap interval
    beside it in points.parquet."""
    if catalog.kind_of(metric) == "value":
        return "95 % paired t interval"
    return "95 % paired t interval (BCa bootstrap in points.parquet)"


def _legend(ax: Axes, layout: _Layout) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if len(layout.series) > 1:
        ax.figure.legend(
            handles,
            labels,
            fontsize="small",
            title=layout.legend_title,
            title_fontsize="small",
            loc="outside lower center",
            ncols=min(len(labels), 4 if max(map(len, labels)) < 24 else 2),
        )
    else:
        what = "bars" if layout.axis.ticks else "band"
        ax.legend(
            handles[:1], [f"{labels[0] if labels else 'mean'} ({what}: 95 % CI)"], fontsize="small"
        )


def sweep_panels_figure(
    points: pd.DataFrame,
    metrics: list[str],
    *,
    parameters: Sequence[str] | None = None,
    x: str | None = None,
    title: str = "",
    ncols: int = 3,
    runs: pd.DataFrame | None = None,
) -> Figure:
    """Several metrics against the same swept parameter, one small panel each (as
    ``sweep_figure``), with one legend for the figure."""
    layout = _layout(points, parameters, x)
    nrows = -(-len(metrics) // ncols)
    figure, axes = new_grid(nrows, ncols, height=1.2 + 2.7 * nrows, width=4.0 * ncols)
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        _draw(ax, points, metric, layout, runs=runs)
        ax.set_title(panel_title(metric), fontsize="small")
        ax.yaxis.label.set_size("small")
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    for i in range(min(ncols, len(metrics))):  # label the lowest panel of each column
        axes[(len(metrics) - 1 - i) // ncols, (len(metrics) - 1 - i) % ncols].set_xlabel(
            layout.xlabel, fontsize="small"
        )
    figure.suptitle(
        (title + "\n" if title else "")
        + f"mean and 95 % confidence interval; {replications_note(points)}"
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if len(layout.series) > 1:
        figure.legend(
            handles,
            labels,
            title=layout.legend_title,
            loc="outside lower center",
            ncols=min(len(labels), 4),
            fontsize="small",
        )
    return figure
