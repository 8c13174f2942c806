"""Tick labels that never overlap: a categorical axis's labels are measured as drawn and,
where neighbours collide, wrapped onto several lines, then turned upright as a last resort.

Measured rather than guessed from the number of characters, so a label fits the axes it is
on (a narrow panel as well as a full-width figure).
"""

from __future__ import annotations

import itertools
import textwrap

from matplotlib.axes import Axes
from matplotlib.text import Text

GAP_PX = 4.0
"""Room left between neighbouring labels, in pixels at the figure's resolution: the
constrained layout may still narrow the axes a little after the labels are placed."""


def overlapping(ax: Axes) -> bool:
    """Whether any two neighbouring x tick labels of ``ax`` overlap (or come closer than
    ``GAP_PX``) as the figure draws them now."""
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    labels: list[Text] = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    return any(b.x0 - a.x1 < GAP_PX for a, b in itertools.pairwise(boxes))


def fit_x_labels(ax: Axes, texts: list[str]) -> list[str]:
    """Set the x tick labels of ``ax`` (already at their ticks) to ``texts``, wrapped to
    ever fewer characters per line while neighbours overlap; if even a word per line
    overlaps, the labels are turned upright, unwrapped. Returns the texts as set."""
    ax.set_xticklabels(texts)
    longest = max((len(t) for t in texts), default=0)
    width = longest
    while overlapping(ax) and width > 6:
        width = max(6, width * 2 // 3)
        wrapped = [textwrap.fill(t, width, break_long_words=False) for t in texts]
        ax.set_xticklabels(wrapped)
    if overlapping(ax):
        ax.set_xticklabels(texts)  # upright, one line each
        ax.tick_params(axis="x", labelrotation=90)
    return [t.get_text() for t in ax.get_xticklabels()]
