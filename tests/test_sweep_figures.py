"""Sweep figures that do not mislead: categorical factors drawn as points without lines,
every replication as a faint dot, n on the figure, intervals never clipped, and paired
differences to a baseline around a zero line. Built from synthetic runs (no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from mailnet.report.sweeps import sweep_figure
from mailnet.sweep.stats import point_table

R = 5
STRATEGIES = ["shared", "by-class", "dedicated"]


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    rows = []
    for point, strategy in enumerate(STRATEGIES):
        for r in range(R):
            rows.append(
                {
                    "point": point,
                    "providers.isp.pool_strategy": strategy,
                    "replication": r,
                    "seed": r,
                    "status": "ok",
                    "error": None,
                    "wall_time_s": 0.1,
                    "delivery_rate": 0.9 + 0.02 * point + 0.01 * rng.normal(),
                    # a quantity near zero whose plain t-interval goes below it
                    "attempts_per_message": [0.0, 0.0, 0.0, 0.0, 3.0][r] * (point + 1),
                }
            )
    runs = pd.DataFrame(rows)
    params = runs[["point", "providers.isp.pool_strategy"]].drop_duplicates()
    points = point_table(runs, params.reset_index(drop=True), baseline=0)
    return runs, points


def test_a_categorical_factor_is_drawn_as_points_with_each_replication(frames) -> None:
    runs, points = frames
    figure = sweep_figure(points, "delivery_rate", runs=runs)
    ax = figure.axes[0]
    means = [line for line in ax.get_lines() if line.get_label() == "mean"]
    assert len(means) == 1
    assert means[0].get_linestyle() == "None"  # no line joins categories
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == len(runs)
    assert f"n = {R} replications per point" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == STRATEGIES


def test_an_interval_below_zero_is_drawn_as_computed(frames) -> None:
    _, points = frames
    assert (points["attempts_per_message.ci_low"] < 0).all()  # a plain t-interval
    figure = sweep_figure(points, "attempts_per_message")
    ax = figure.axes[0]
    low = min(seg[:, 1].min() for c in ax.collections for seg in getattr(c, "get_segments", list)())
    assert low == pytest.approx(points["attempts_per_message.ci_low"].min())


def test_differences_to_the_baseline_are_drawn_around_zero(frames) -> None:
    _, points = frames
    assert points.loc[0, "delivery_rate.diff"] == 0.0
    figure = sweep_figure(points, "delivery_rate", stat="diff")
    ax = figure.axes[0]
    assert "paired difference to the baseline" in ax.get_title()
    zero = [line for line in ax.get_lines() if list(line.get_ydata()) == [0, 0]]
    assert zero, "no zero line"
    assert ax.get_ylabel().startswith("difference in ")
