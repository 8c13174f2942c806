"""The resolved scenario.toml of a run reproduces the run exactly: every number to full
precision, and the seed the run used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailnet.scenario import Scenario, load_scenario
from mailnet.scenario.fields import exact_duration, exact_rate
from mailnet.scenario.schema import dumps
from mailnet.units import parse_duration, parse_rate

# values that 12 significant digits or a unit rounded to a whole count would change
SCENARIO = textwrap.dedent("""
    [simulation]
    duration = "3h"
    seed = 11
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    smtp_connect_timeout = "30.0000000000001s"
    [senders.users]
    provider = "isp"
    count = 7
    rate = "13.3333333333333337/h"
    recipients = 1.1234567890123456
    domains = { "dest.example" = 0.1234567890123456, "other.example" = 0.3 }
    [domains."dest.example"]
    mx = [ { host = "mx.dest.example", preference = 10 } ]
    [domains."other.example"]
    mx = [ { host = "mx.other.example", preference = 10 } ]
    [servers."mx.dest.example"]
    sessions = 2
    service_time = { dist = "exponential", mean = "4.00000000001s" }
    outages = { mtbf = "1.0000000001h", mttr = "10m" }
    [servers."mx.other.example"]
    service_time = { dist = "constant", mean = "1.0000000000002s" }
""")

TABLES = ("messages", "attempts", "queues")
SCENARIOS = Path(__file__).parent.parent / "experiments" / "scenarios"


def _run(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailnet.cli", "run", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def _tables(out) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLES}


def _assert_same(a, b) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(_tables(a)[name], _tables(b)[name], check_exact=True)


@pytest.mark.parametrize("seed", [None, "5"])
def test_rerun_of_the_resolved_scenario_gives_identical_tables(tmp_path, seed):
    path = tmp_path / "odd.toml"
    path.write_text(SCENARIO)
    first, again = tmp_path / "first", tmp_path / "again"
    _run(str(path), "--out", str(first), *(["--seed", seed] if seed else []))
    resolved = first / "scenario.toml"
    given = load_scenario(path)
    used = given.simulation.model_copy(update={"seed": int(seed or 11)})
    assert load_scenario(resolved) == given.model_copy(update={"simulation": used})
    _run(str(resolved), "--out", str(again))
    _assert_same(first, again)
    assert len(_tables(first)["messages"]) > 10


def test_resolved_seed_is_the_seed_used():
    scenario = Scenario.from_dict(tomllib.loads(SCENARIO))
    assert "seed = 42" in scenario.to_toml(seed=42)
    assert "seed = 11" in scenario.to_toml()


@pytest.mark.parametrize(
    "seconds", [0.0, 300.0, 1.0000000001, 30.0000000000001, 1e-7, 86400 * 365.25, 0.1 + 0.2]
)
def test_durations_are_written_exactly(seconds):
    assert parse_duration(exact_duration(seconds)) == seconds
    assert parse_rate(exact_rate(seconds)) == seconds
    assert exact_duration(300.0) == "5m"
    assert exact_rate(20 / 86400) == "20/d"


def test_a_relative_trace_path_resolves_from_the_run_directory(tmp_path):
    from mailnet.output import write_run
    from mailnet.simulate import simulate

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "trace.csv").write_text("at,sender,recipients\n10s,0,a@dest.example\n")
    path = tmp_path / "in" / "traced.toml"
    path.write_text(
        SCENARIO.replace('rate = "13.3333333333333337/h"', 'trace = "trace.csv"').replace(
            'domains = { "dest.example" = 0.1234567890123456, "other.example" = 0.3 }\n', ""
        )
    )
    result = simulate(load_scenario(path), base_dir=path.parent)
    out = write_run(result, tmp_path / "runs" / "deep" / "r1")
    resolved = tomllib.loads((out / "scenario.toml").read_text())
    assert resolved["senders"]["users"]["trace"] == "../../../in/trace.csv"
    again = simulate(load_scenario(out / "scenario.toml"), base_dir=out)
    pd.testing.assert_frame_equal(again.messages, result.messages)


@settings(max_examples=500, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 2**63 - 1))
def test_every_number_reads_back_exactly(value, whole):
    raw = {"simulation": {"rate": value, "seed": whole}, 'domains."d.example"': {"x": [value]}}
    assert tomllib.loads(dumps(raw)) == raw


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_each_shipped_scenario_reads_back_from_its_resolved_file(path):
    scenario = load_scenario(path)
    assert tomllib.loads(scenario.to_toml()) == scenario.to_dict()
