"""Sweep figures that do not mislead: categorical factors drawn as points without lines,
every replication as a faint dot, n on the figure, intervals never clipped, and paired
differences to a baseline around a zero line. Built from synthetic runs (no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection

from mailnet.compare import Difference, Side
from mailnet.report.comparison import differences_figure, sides_figure
from mailnet.report.sensitivity import indices_figure
from mailnet.report.sweeps import sweep_figure, sweep_panels_figure
from mailnet.report.theory import capacity_figure
from mailnet.report.tick_labels import overlapping
from mailnet.scenario import read_toml
from mailnet.sweep.stats import point_table

R = 5
STRATEGIES = ["shared", "by-class", "dedicated"]
STRATEGIES_KEY = "providers.isp.pool_strategy"


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
                    # a quantity near zero whose plain t-interval goes below it (an
                    # undeclared metric: no bound known, so its interval is the plain t)
                    "gain": [0.0, 0.0, 0.0, 0.0, 3.0][r] * (point + 1),
                    "latency_s.p90": float(rng.lognormal(1 + 0.3 * point, 0.8)),
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
    assert (points["gain.ci_low"] < 0).all()  # a plain t-interval
    figure = sweep_figure(points, "gain")
    ax = figure.axes[0]
    low = min(seg[:, 1].min() for c in ax.collections for seg in getattr(c, "get_segments", list)())
    assert low == pytest.approx(points["gain.ci_low"].min())


def test_differences_to_the_baseline_are_drawn_around_zero(frames) -> None:
    _, points = frames
    assert points.loc[0, "delivery_rate.diff"] == 0.0
    figure = sweep_figure(points, "delivery_rate", stat="diff")
    ax = figure.axes[0]
    assert "paired difference to the baseline" in ax.get_title()
    zero = [line for line in ax.get_lines() if list(line.get_ydata()) == [0, 0]]
    assert zero, "no zero line"
    assert ax.get_ylabel().startswith("difference in ")


def _dot_values(ax) -> list[float]:
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    return sorted(float(y) for c in dots for y in c.get_offsets()[:, 1])


def test_difference_figures_show_each_replications_paired_difference(frames) -> None:
    runs, points = frames
    figure = sweep_figure(points, "latency_s.p90", stat="diff", runs=runs, baseline=0)
    ax = figure.axes[0]
    wide = runs.pivot(index="replication", columns="point", values="latency_s.p90")
    expected = wide.sub(wide[0], axis=0).to_numpy().ravel()
    # seconds, drawn as they are: every difference here is under two minutes
    assert max(abs(expected)) < 120
    assert _dot_values(ax) == pytest.approx(sorted(expected))
    assert "paired t interval (BCa bootstrap in points.parquet)" in ax.get_title()
    assert f"n = {R} replications per point" in ax.get_title()
    rate = sweep_figure(points, "delivery_rate", stat="diff", runs=runs, baseline=0)
    assert "paired t interval" in rate.axes[0].get_title()


def test_a_quantiles_difference_interval_is_the_bootstrap_one_as_computed(frames) -> None:
    runs, points = frames
    ax = sweep_figure(points, "latency_s.p90", stat="diff", runs=runs, baseline=0).axes[0]
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    ends = sorted((seg[:, 1].min(), seg[:, 1].max()) for c in bars for seg in c.get_segments())
    table = points[["latency_s.p90.diff_low", "latency_s.p90.diff_high"]].to_numpy()
    assert np.ravel(ends) == pytest.approx(np.ravel(sorted(map(tuple, table))))


def test_long_category_labels_never_overlap(frames) -> None:
    _, points = frames
    names = {s: f"{s} pool of addresses shared by every sender class" for s in STRATEGIES}
    wordy = points.assign(**{STRATEGIES_KEY: points[STRATEGIES_KEY].map(names)})
    for figure in (
        sweep_figure(wordy, "delivery_rate"),
        sweep_panels_figure(wordy, ["delivery_rate", "gain", "latency_s.p90"], ncols=3),
    ):
        for ax in figure.axes:
            if ax.get_visible() and ax.get_xticklabels():
                assert not overlapping(ax)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert all("\n" in t for t in labels)  # wrapped rather than overlapping
    assert [t.replace("\n", " ") for t in labels] == list(names.values())


def test_the_capacity_figure_draws_intervals_as_computed_with_n() -> None:
    base = read_toml("experiments/scenarios/capacity.toml")
    host = '"mx.dest.example"'
    points = pd.DataFrame(
        {
            f"servers.{host}.sessions": [4, 5, 4, 5],
            f"servers.{host}.backlog": ["0", "0", "unlimited", "unlimited"],
            "ok": [20] * 4,
            **{
                f"servers.mx.dest.example.{m}.{s}": values
                for m in ("p_wait", "refused_rate")
                for s, values in (
                    ("mean", [0.2, 0.1, 0.5, 0.25]),
                    ("ci_low", [-0.01, 0.05, 0.4, 0.2]),  # below 0: shown, not clipped
                    ("ci_high", [0.3, 0.2, 0.6, 0.3]),
                )
            },
        }
    )
    ax = capacity_figure(points, base).axes[0]
    lows = [seg[:, 1].min() for c in ax.collections for seg in c.get_segments()]
    assert min(lows) == pytest.approx(-1.0)  # percent
    assert "n = 20 replications per point" in ax.get_title()


def test_compare_and_sensitivity_figures_state_n() -> None:
    a = Side("A", (1, 2, 3), {"delivery_rate": np.array([0.9, 0.91, 0.92])})
    b = Side("B", (1, 2, 3), {"delivery_rate": np.array([0.8, 0.82, 0.81])})
    d = [Difference("delivery_rate", 0.91, 0.81, -0.1, -0.12, -0.08, "paired")]
    assert "(n = 3)" in sides_figure(d, a, b).texts[0].get_text()
    assert "(n = 3)" in differences_figure(d, a, b).axes[0].get_title()
    indices = pd.DataFrame(
        {"metric": ["delivery_rate"] * 2, "key": ["x", "y"], "ST": [0.5, 0.2]}
        | {"ST_conf": [0.1, 0.1], "S1": [0.4, 0.1]}
    )
    figure = indices_figure(indices, "sobol", points=64, replications=2)
    assert "n = 64 design points x 2 replications" in figure.texts[0].get_text()
