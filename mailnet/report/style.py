"""The look shared by every report figure: a palette that stays distinct in grey, line
styles, markers and hatches per series, and axes that show simulated time and durations in
units people read (hours, days, "10 min") rather than seconds.

Figures are built as ``matplotlib.figure.Figure`` objects on the Agg canvas, never through
``pyplot``: no display is needed, no global figure registry fills up, and a notebook with the
inline backend still shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from mailnet.metric_catalog import format_seconds
from mailnet.units import DAY, HOUR, MINUTE, WEEK

# Okabe-Ito colours, ordered so that neighbours differ in lightness as well as in hue.
PALETTE = ("#000000", "#E69F00", "#0072B2", "#56B4E9", "#D55E00", "#009E73", "#CC79A7", "#999999")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")

CLASS_ORDER = ("ham", "bulk", "spam", "dsn")
"""Sender classes in the order (and so the styles) every figure uses."""

WIDTH = 9.0
"""Default figure width in inches."""


@dataclass(frozen=True)
class SeriesStyle:
    """How series number ``index`` is drawn: colour, line style, marker and bar hatch."""

    color: str
    linestyle: object
    marker: str
    hatch: str

    def line(self) -> dict[str, Any]:
        """Keyword arguments for ``Axes.plot``."""
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}

    def bar(self) -> dict[str, Any]:
        """Keyword arguments for ``Axes.bar``/``barh``: the colour, a hatch and a dark edge."""
        return {"color": self.color, "hatch": self.hatch, "edgecolor": "#222222", "linewidth": 0.6}


def series_style(index: int) -> SeriesStyle:
    """The style of the ``index``-th series; consecutive series differ in every attribute."""
    return SeriesStyle(
        PALETTE[index % len(PALETTE)],
        LINESTYLES[index % len(LINESTYLES)],
        MARKERS[index % len(MARKERS)],
        HATCHES[index % len(HATCHES)],
    )


def class_style(sender_class: str) -> SeriesStyle:
    """A sender class keeps the same style in every figure."""
    name = str(sender_class)
    index = CLASS_ORDER.index(name) if name in CLASS_ORDER else len(CLASS_ORDER) + hash_index(name)
    return series_style(index)


def hash_index(name: str) -> int:
    """A small stable number for a name outside the known classes (not ``hash()``: that
    changes between processes)."""
    return sum(name.encode()) % len(PALETTE)


def ordered_classes(values: Iterable[str | float | None]) -> list[str]:
    """The distinct sender classes in ``values``, known ones first in ``CLASS_ORDER``."""
    present = {str(v) for v in values if not pd.isna(v)}
    known = [c for c in CLASS_ORDER if c in present]
    return known + sorted(present - set(known))


def new_figure(height: float = 4.5, width: float = WIDTH) -> tuple[Figure, Axes]:
    """A figure on the Agg canvas with one set of axes."""
    figure, axes = new_grid(height=height, width=width)
    return figure, axes[0, 0]


def new_grid(
    nrows: int = 1, ncols: int = 1, *, height: float = 4.5, width: float = WIDTH, **subplots: Any
) -> tuple[Figure, np.ndarray]:
    """A figure on the Agg canvas with an ``nrows`` x ``ncols`` array of axes (always 2-D);
    ``subplots`` go to ``Figure.subplots`` (``sharex``, ``sharey``, ``gridspec_kw``...)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False, **subplots)
    for ax in axes.ravel():
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return figure, axes


def figure_legend(
    figure: Figure, handles: list[Artist], labels: list[str], title: str | None = None
) -> None:
    """One legend for the whole figure, below the axes, if there is more than one series."""
    if len(labels) > 1:
        figure.legend(
            handles,
            labels,
            title=title,
            loc="outside lower center",
            ncols=min(len(labels), 4),
            fontsize="small",
        )


def marker_every(n_points: int, markers: int = 12) -> int:
    """Draw about ``markers`` markers on a line of ``n_points`` points."""
    return max(1, n_points // markers)


# ------------------------------------------------------------------ simulated time


def time_unit(end_s: float) -> tuple[float, str]:
    """``(seconds per unit, unit name)`` for a time axis running to ``end_s`` seconds:
    hours up to three days, days beyond."""
    return (DAY, "days") if end_s > 3 * DAY else (HOUR, "hours")


def time_label(end_s: float) -> str:
    return f"simulated time ({time_unit(end_s)[1]})"


def shade_warmup(ax: Axes, warmup_s: float | None, scale: float) -> None:
    """Hatch the warm-up period, which the run's summary statistics leave out."""
    if warmup_s:
        ax.axvspan(
            0,
            warmup_s / scale,
            facecolor="#eeeeee",
            edgecolor="#bbbbbb",
            hatch="//",
            linewidth=0,
            label="warm-up (not in summary)",
            zorder=0,
        )


# ------------------------------------------------------------------ durations

_LOG_TICKS = (0.001, 0.01, 0.1, 1, 10, MINUTE, 10 * MINUTE, HOUR, 6 * HOUR, DAY, WEEK)
_DENSE_LOG_TICKS = (
    0.001,
    0.01,
    0.1,
    0.5,
    1,
    2,
    5,
    10,
    30,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    4 * DAY,
    WEEK,
)


def log_duration_axis(axis: Axis, low_s: float, high_s: float) -> None:
    """Put ticks at round durations (1 s, 1 min, 1 h, 1 d...) on a log-scaled axis of
    seconds spanning ``low_s`` to ``high_s``."""
    ticks = [t for t in _LOG_TICKS if low_s <= t <= high_s]
    if len(ticks) < 3:  # a narrow range: round values closer together
        ticks = [t for t in _DENSE_LOG_TICKS if low_s <= t <= high_s]
    if len(ticks) < 2:
        ticks = [low_s, high_s]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: format_seconds(value)))
    axis.set_minor_locator(NullLocator())
