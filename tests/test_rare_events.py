"""Damage given a rare event in the points table: means over the runs where it happened."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mailnet.sweep.stats import conditional_damage, point_table


def runs_frame() -> pd.DataFrame:
    # point 0: listings in runs 0 and 2 with collateral 0.10 and 0.30, none otherwise;
    # point 1: never listed
    return pd.DataFrame(
        {
            "point": [0, 0, 0, 0, 1, 1, 1, 1],
            "replication": [0, 1, 2, 3] * 2,
            "status": ["ok"] * 8,
            "listings.total": [2, 0, 1, 0, 0, 0, 0, 0],
            "collateral.rate": [0.10, 0.01, 0.30, 0.03, 0.0, 0.02, 0.0, 0.0],
        }
    )


def test_damage_given_the_event_and_without_it() -> None:
    params = pd.DataFrame({"point": [0, 1], "x": [1, 2]})
    points = point_table(runs_frame(), params, damage="collateral.rate").set_index("point")
    assert points.loc[0, "listings.total.if_any"] == pytest.approx(0.2)
    assert points.loc[0, "listings.total.if_any_n"] == 2
    assert points.loc[0, "listings.total.if_none"] == pytest.approx(0.02)
    assert points.loc[0, "listings.total.if_none_n"] == 2
    # the share interval stays inside (0, 1) and holds the mean
    low, high = points.loc[0, ["listings.total.if_any_low", "listings.total.if_any_high"]]
    assert 0 < low < 0.2 < high < 1
    # never listed: no damage given a listing to speak of
    assert np.isnan(points.loc[1, "listings.total.if_any"])
    assert points.loc[1, "listings.total.if_any_n"] == 0
    assert points.loc[1, "listings.total.if_none_n"] == 4


def test_by_default_a_count_given_that_it_happened() -> None:
    params = pd.DataFrame({"point": [0, 1], "x": [1, 2]})
    points = point_table(runs_frame(), params).set_index("point")
    # listings given any listing: (2 + 1) / 2
    assert points.loc[0, "listings.total.if_any"] == pytest.approx(1.5)
    assert "listings.total.if_none" not in points.columns
    assert "collateral.rate.if_any" not in points.columns  # a share, not a count


def test_undefined_damage_leaves_the_run_out() -> None:
    counts = np.array([[1.0, 1.0, 0.0, np.nan]])
    harm = np.array([[0.5, np.nan, 0.1, 0.9]])
    out = conditional_damage("e", counts, harm, both=True)
    assert out["e.if_any"][0] == pytest.approx(0.5)
    assert out["e.if_any_n"][0] == 1
    assert out["e.if_none_n"][0] == 1


def test_an_unknown_damage_metric_is_refused() -> None:
    params = pd.DataFrame({"point": [0, 1], "x": [1, 2]})
    with pytest.raises(KeyError, match="nope"):
        point_table(runs_frame(), params, damage="nope")
