"""Sensitivity analysis: the design and analysis against functions with known indices
(output-analysis.md §10, checks 16 and 17), bad files refused, and the command end to end."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet.errors import ScenarioError
from mailnet.sweep.sensitivity import _design, analyse, load_sensitivity
from tests.conftest import ONE_MX_TOML, sweep_app


def _runs(design, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"point": np.arange(len(y)), "status": "ok", "delivery_rate": y})


def test_morris_finds_the_effects_of_a_linear_function() -> None:
    ranges = {"a": [0.0, 1.0], "b": [0.0, 2.0], "c": [0.0, 1.0], "d": [0.0, 1.0]}
    design = _design(ranges, {"method": "morris", "trajectories": 20, "seed": 1}, "f.toml")
    x = design.sample
    assert x.shape == (20 * 5, 4)
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2]
    indices = analyse(design, _runs(design, y), ["delivery_rate"]).set_index("key")
    # effects per unit of each key's normalised range: |a_i| (u_i - l_i)
    assert indices["mu_star"].to_list() == pytest.approx([3.0, 4.0, 0.5, 0.0], abs=1e-9)
    assert indices["sigma"].to_list() == pytest.approx([0.0] * 4, abs=1e-9)


def test_sobol_indices_of_the_ishigami_function() -> None:
    pi = math.pi
    ranges = {k: [-pi, pi] for k in ("x1", "x2", "x3")}
    design = _design(ranges, {"method": "sobol", "samples": 1024, "seed": 2}, "f.toml")
    x = design.sample
    assert len(x) == 1024 * (2 * 3 + 2)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    indices = analyse(design, _runs(design, y), ["delivery_rate"]).set_index("key")
    assert indices["S1"].to_list() == pytest.approx([0.3139, 0.4424, 0.0], abs=0.05)
    assert indices["ST"].to_list() == pytest.approx([0.5576, 0.4424, 0.2437], abs=0.05)


def test_durations_rates_and_integers_are_sampled_in_their_units() -> None:
    ranges = {"w": ["1h", "4h"], "r": ["10/h", "60/h"], "n": [1, 5]}
    design = _design(ranges, {"trajectories": 4}, "f.toml")
    values = design.values()
    assert all(3600 <= v <= 4 * 3600 for v in values["w"])
    assert all(10 / 3600 - 1e-12 <= v <= 60 / 3600 + 1e-12 for v in values["r"])
    assert all(isinstance(v, int) and 1 <= v <= 5 for v in values["n"])


BASE_EXPERIMENT = 'base = "base.toml"\nseed = 3\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "ranges: give each uncertain key its [low, high] range"),
        ("[ranges]\n'senders.users.rate' = ['60/h', '10/h']\n", "low < high"),
        ("[ranges]\n'senders.users.rate' = ['10/h']\n", "must be a list [low, high]"),
        ("[ranges]\n'senders.users.rate' = ['10/h', 'soon']\n", "not a duration"),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[sensitivity]\nmethod = 'fast'\n",
            "sensitivity.method: must be one of morris, sobol",
        ),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[sensitivity]\n"
            "method = 'sobol'\nsamples = 100\n",
            "must be a power of 2",
        ),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[grid]\n"
            "'senders.users.count' = [1, 2]\n",
            "varies keys by [ranges] only",
        ),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[linked]\n"
            "'senders.users.count' = [2]\n",
            "varies keys by [ranges] only",
        ),
        (
            "[ranges]\n'senders.user.rate' = ['10/h', '60/h']\n",
            "senders.user",
        ),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[sensitivity]\n"
            "metrics = ['collateral.rate', 'colateral.rate']\n",
            "sensitivity.metrics: unknown metric 'colateral.rate'",
        ),
        (
            "[ranges]\n'senders.users.rate' = ['10/h', '60/h']\n[sensitivity]\n"
            "metrics = 'collateral.rate'\n",
            "sensitivity.metrics: must be a list of metric names",
        ),
    ],
)
def test_a_bad_sensitivity_file_is_one_clear_error(tmp_path: Path, text: str, problem: str):
    (tmp_path / "base.toml").write_text(ONE_MX_TOML)
    (tmp_path / "s.toml").write_text(BASE_EXPERIMENT + text)
    with pytest.raises(ScenarioError, match=re.escape(problem)):
        load_sensitivity(tmp_path / "s.toml")


@pytest.mark.slow
def test_sensitivity_command_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML.replace('duration = "2h"', 'duration = "30m"'))
    (tmp_path / "s.toml").write_text(
        BASE_EXPERIMENT
        + textwrap.dedent("""
            [ranges]
            'servers."mx.dest.example".sessions' = [1, 4]
            "senders.users.rate" = ["10/h", "60/h"]
            [sensitivity]
            trajectories = 2
        """)
    )
    result = CliRunner().invoke(
        sweep_app(),
        [
            "sensitivity",
            str(tmp_path / "s.toml"),
            "--workers",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--metric",
            "delivery_rate",
            "--metric",
            "messages",
        ],
    )
    assert result.exit_code == 0, result.output
    indices = pd.read_parquet(tmp_path / "o" / "sensitivity.parquet")
    assert set(indices["metric"]) == {"delivery_rate", "messages"}
    assert set(indices["key"]) == {'servers."mx.dest.example".sessions', "senders.users.rate"}
    # more users sending more mail: the rate moves the message count, sessions do not
    counts = indices[indices["metric"] == "messages"].set_index("key")["mu_star"]
    assert counts["senders.users.rate"] > 0
    assert counts['servers."mx.dest.example".sessions'] == 0
    assert (tmp_path / "o" / "sensitivity.png").stat().st_size > 1000
    assert len(pd.read_parquet(tmp_path / "o" / "runs.parquet")) == 2 * 3
