"""Erlang formulas and the capacity figure's recognition of an M/M/c sweep."""

from __future__ import annotations

import pandas as pd
import pytest

from mailnet.report.theory import capacity_figure, erlang_b, erlang_c, mmc_load
from mailnet.scenario import read_toml


def test_erlang_values():
    # textbook values: B(4, 3) = 81/8 / (1 + 3 + 9/2 + 27/6 + 81/24) = 0.20611
    assert erlang_b(4, 3.0) == pytest.approx(3.375 / 16.375)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    # C(1, a) = a for M/M/1; C(2, 1) = 1/3
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.5) == 1.0


def test_capacity_scenario_is_recognised_as_mmc():
    base = read_toml("experiments/scenarios/capacity.toml")
    assert mmc_load(base, "mx.dest.example") == pytest.approx(3.0)
    assert mmc_load(read_toml("experiments/scenarios/baseline.toml"), "mx1.bigmail.example") is None


def test_capacity_figure_needs_a_sessions_sweep():
    base = read_toml("experiments/scenarios/capacity.toml")
    host = '"mx.dest.example"'
    points = pd.DataFrame(
        {
            f"servers.{host}.sessions": [4, 5, 4, 5],
            f"servers.{host}.backlog": ["0", "0", "unlimited", "unlimited"],
            **{
                f"servers.mx.dest.example.{m}.{s}": [0.2, 0.1, 0.5, 0.25]
                for m in ("p_wait", "refused_rate")
                for s in ("mean", "ci_low", "ci_high")
            },
        }
    )
    figure = capacity_figure(points, base)
    assert figure is not None
    ax = figure.axes[0]
    assert "Erlang" in ax.get_title()
    assert ax.get_xlabel()
    assert ax.get_ylabel()
    assert capacity_figure(points.drop(columns=[f"servers.{host}.sessions"]), base) is None
