"""Figures of ``mailnet compare``: each headline metric for A and B, and the differences
B - A with their intervals, written as PNG and SVG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mailnet.compare import Difference, Side
from mailnet.metric_catalog import axis_scale, lookup, unit_of
from mailnet.report.embed import save_figure
from mailnet.report.style import HATCHES, PALETTE, new_grid

PANEL_COLUMNS = 4


def _scale(metric: str, values: list[float]) -> tuple[float, str]:
    return axis_scale(unit_of(metric), [abs(v) for v in values if math.isfinite(v)])


def _panel_title(metric: str) -> str:
    found = lookup(metric)
    return found.panel_title(metric) if found is not None else metric


def sides_figure(differences: list[Difference], a: Side, b: Side) -> Figure:
    """One panel per metric: the value of A and of B (the mean as a bar, each replication
    as a faint dot), with each side's number of replications in the title."""
    rows = max(1, math.ceil(len(differences) / PANEL_COLUMNS))
    figure, axes = new_grid(rows, PANEL_COLUMNS, height=2.4 * rows + 0.8)
    for ax, d in zip(axes.ravel(), differences, strict=False):
        values = [a.values[d.metric], b.values[d.metric]]
        divide, unit = _scale(d.metric, [d.a, d.b, *np.concatenate(values)])
        for i, (mean, each) in enumerate(zip((d.a, d.b), values, strict=True)):
            ax.bar(i, mean / divide, color=PALETTE[i + 1], hatch=HATCHES[i], edgecolor="black")
            if each.size > 1:
                ax.plot(
                    np.full(each.size, i),
                    each / divide,
                    "o",
                    color="black",
                    markersize=3,
                    alpha=0.35,
                )
        ax.set_xticks([0, 1], ["A", "B"])
        ax.set_title(_panel_title(d.metric) + (f" ({unit})" if unit else ""), fontsize="small")
    for ax in axes.ravel()[len(differences) :]:
        ax.set_visible(False)
    figure.suptitle(_sides_note(a, b), fontsize="small")
    return figure


def _sides_note(a: Side, b: Side) -> str:
    """``A: name (n = 10)   B: name (n = 10)``: the sides and their replications."""
    return f"A: {a.name} (n = {len(a.seeds)})   B: {b.name} (n = {len(b.seeds)})"


def differences_figure(differences: list[Difference], a: Side, b: Side) -> Figure:
    """Each metric's difference B - A relative to A, with its interval where there is one."""
    figure, axes = new_grid(height=0.35 * len(differences) + 1.6)
    ax = axes[0, 0]
    for y, d in enumerate(differences):
        base = abs(d.a) if d.a else math.nan
        ax.plot(100 * d.diff / base, y, "o", color=PALETTE[2])
        if math.isfinite(d.low):
            ax.plot([100 * d.low / base, 100 * d.high / base], [y, y], color=PALETTE[2])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(differences)), [_panel_title(d.metric) for d in differences])
    ax.invert_yaxis()
    ax.set_xlabel("B - A, % of A (95 % interval where both sides have replications)")
    ax.set_title(_sides_note(a, b), fontsize="small")
    return figure


def write_figures(differences: list[Difference], a: Side, b: Side, out: Path) -> list[Path]:
    """Write ``compare_sides`` and ``compare_differences`` (PNG and SVG) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (
        ("compare_sides", sides_figure),
        ("compare_differences", differences_figure),
    ):
        save_figure(draw(differences, a, b), out, name)
        written += [out / f"{name}.png", out / f"{name}.svg"]
    return written
