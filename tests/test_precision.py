"""Replicating until the answer is tight: the stopping rule against its known coverage,
and a sequential sweep that stays identical on every backend."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mailnet.errors import ScenarioError
from mailnet.sweep import SweepError, load_experiment, sweep
from mailnet.sweep.precision import GROWTH, MIN_REPLICATIONS, Precision, half_width
from tests.conftest import ONE_MX_TOML


def test_precision_is_relative_or_absolute() -> None:
    assert Precision.parse("0.1") == Precision(0.1, absolute=False)
    assert Precision.parse("0.005abs") == Precision(0.005, absolute=True)
    for bad in ("0", "-0.1", "abs", "0.1rel", "inf", "nan"):
        with pytest.raises(SweepError, match="--precision must be a positive number"):
            Precision.parse(bad)
    relative = Precision(0.1)
    # the corrected target g/(1+g) keeps the realised relative error within g
    assert relative.met(0.0909, 1.0)
    assert not relative.met(0.0910, 1.0)
    assert Precision(0.01, absolute=True).met(0.01, 1000.0)
    assert not relative.met(math.nan, 1.0)


def _sequential(draw, precision: Precision, n0: int = MIN_REPLICATIONS) -> np.ndarray:
    """The sweep's rule on one stream of replications: grow by GROWTH until met."""
    values = draw(n0)
    while not precision.met(half_width(values), float(values.mean())):
        values = np.concatenate([values, draw(max(1, math.ceil(GROWTH * values.size)))])
    return values


def test_sequential_rule_covers_the_mean_near_its_level() -> None:
    # output-analysis.md §10 check 13: Exp(1), relative 0.1, n0 = 10: coverage about 0.946
    # and median n about 463 (one run at a time); batches of 10 % stop a little later
    rng = np.random.default_rng(11)
    m = 400
    covered, sizes = 0, []
    for _ in range(m):
        values = _sequential(lambda k: rng.exponential(1.0, k), Precision(0.1))
        sizes.append(values.size)
        hw = half_width(values)
        covered += abs(values.mean() - 1.0) <= hw
    coverage = covered / m
    tolerance = 3 * math.sqrt(0.95 * 0.05 / m)
    assert abs(coverage - 0.95) <= tolerance
    assert 400 <= np.median(sizes) <= 560


def _experiment(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML.replace('duration = "2h"', 'duration = "40m"'))
    (tmp_path / "exp.toml").write_text(
        f'{extra}base = "base.toml"\nreplications = 4\nseed = 5\n'
        "[grid]\n'servers.\"mx.dest.example\".sessions' = [1, 3]\n"
    )
    return tmp_path / "exp.toml"


@pytest.mark.slow
def test_a_sequential_sweep_adds_replications_until_met_or_capped(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path, "baseline = 0\n")
    kwargs = {"progress": False, "precision": "0.01", "max_replications": 12}
    one = sweep(experiment, workers=1, out=tmp_path / "one", **kwargs)
    points = one.points.set_index("point")
    assert (points["replications"] >= MIN_REPLICATIONS).all()
    assert (points["replications"] <= 12).all()
    # a 1 % relative half-width is out of reach in 12 runs: capped, and said so
    assert not points["target_met"].any()
    assert (points["replications"] == 12).all()
    assert set(one.runs.groupby("point")["replication"].max()) == {11}
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["precision"]["target"] == "0.01 relative"
    assert manifest["precision"]["points_met"] == 0
    assert manifest["runs"]["total"] == 24
    # the same on two worker processes, and resumable to the same tables
    two = sweep(experiment, workers=2, out=tmp_path / "two", **kwargs)
    wall = ["wall_time_s"]
    pd.testing.assert_frame_equal(one.runs.drop(columns=wall), two.runs.drop(columns=wall))
    pd.testing.assert_frame_equal(one.points, two.points)
    again = sweep(experiment, workers=1, out=tmp_path / "two", resume=True, **kwargs)
    assert again.manifest["runs"]["reused"] == 24


@pytest.mark.slow
def test_a_loose_target_stops_at_the_minimum(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    result = sweep(
        experiment,
        workers=1,
        out=tmp_path / "out",
        progress=False,
        precision="1e6abs",
        target_metrics=["delivery_rate"],
    )
    assert (result.points["replications"] == MIN_REPLICATIONS).all()
    assert result.points["target_met"].all()
    assert len(result.runs) == 2 * MIN_REPLICATIONS


def test_max_replications_below_the_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="--max-replications must be between 10"):
        sweep(
            _experiment(tmp_path),
            workers=1,
            out=tmp_path / "o",
            precision="0.1",
            max_replications=5,
            progress=False,
        )


def _with_table(tmp_path: Path, table: str) -> Path:
    path = _experiment(tmp_path)
    path.write_text(path.read_text() + "[precision]\n" + table)
    return path


@pytest.mark.slow
def test_the_experiment_files_precision_table_sets_each_metrics_target(tmp_path: Path) -> None:
    path = _with_table(
        tmp_path,
        'max_replications = 11\nmetrics = { delivery_rate = "1e6abs", "latency_s.p50" = "0.5" }\n',
    )
    result = sweep(path, workers=1, out=tmp_path / "out", progress=False)
    assert (result.points["replications"] == MIN_REPLICATIONS).all()
    assert result.points["target_met"].all()
    precision = result.manifest["precision"]
    assert precision["target"] == "per metric"
    assert precision["metrics"] == {
        "delivery_rate": "1e+06 absolute",
        "latency_s.p50": "0.5 relative",
    }
    assert precision["max_replications"] == 11
    assert result.manifest["experiment"]["precision"]["max_replications"] == 11
    # the command line's target replaces the table
    tight = sweep(
        path,
        workers=1,
        out=tmp_path / "tight",
        progress=False,
        precision="1e-9abs",
        target_metrics=["delivery_rate"],
    )
    assert tight.manifest["precision"]["metrics"] == {"delivery_rate": "1e-09 absolute"}
    assert (tight.points["replications"] == 11).all()


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ('metrics = { "no.such" = "0.1" }\n', 'precision.metrics."no.such"', "no summary metric"),
        ('metrics = { delivery_rate = "tight" }\n', "precision.metrics.delivery_rate", "0.005abs"),
        ("metrics = {}\n", "precision.metrics", "names no metric"),
        (
            """metrics = { 'servers."mx.dest.example".p_wait' = "0.1" }\n""",
            "precision.metrics",
            "without quotes",
        ),
        ('metrics = { delivery_rate = "0.1" }\nmax_replications = 5\n', "max_replications", "10"),
        ('metrics = { delivery_rate = "0.1" }\nmost = 5\n', "precision.most", "expected one of"),
    ],
)
def test_a_bad_precision_table_names_its_key(
    tmp_path: Path, table: str, key: str, words: str
) -> None:
    with pytest.raises(ScenarioError, match=words) as caught:
        load_experiment(_with_table(tmp_path, table))
    assert key in str(caught.value)
