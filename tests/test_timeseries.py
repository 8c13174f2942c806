"""Outcomes over time and how a run settled: each bin's counts add up to the run's, and
the deferred queue drains after the scheduled outage of the small world."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.scenario import Scenario
from mailnet.simulate import RunResult, simulate
from mailnet.timeseries import (
    bin_width,
    deferred_total,
    outcomes_over_time,
    settling,
    with_outages,
)
from mailnet.units import DAY, HOUR
from tests.views_world import OUTAGE_END_S, SMALL


@pytest.fixture(scope="module")
def result() -> RunResult:
    return simulate(Scenario.from_dict(tomllib.loads(SMALL)))


def test_bins_follow_the_duration() -> None:
    assert bin_width(6 * HOUR) == HOUR
    assert bin_width(3 * DAY) == HOUR
    assert bin_width(5 * DAY) == DAY


def test_bins_add_up_to_the_run(result: RunResult) -> None:
    messages, attempts = result.messages, result.attempts
    table = outcomes_over_time(messages, attempts, 6 * HOUR)
    mail = messages[~messages["is_dsn"]]
    assert list(table["start"]) == [i * HOUR for i in range(6)]
    assert table["submitted"].sum() == len(mail)
    assert table["delivered"].sum() == (mail["status"] == "delivered").sum()
    assert table["bounced"].sum() == mail["status"].isin(["bounced", "expired"]).sum()
    mail_ids = set(mail["message_id"])
    deferred = attempts[(attempts["outcome"] == "deferred") & attempts["message_id"].isin(mail_ids)]
    assert table["deferred"].sum() == len(deferred)
    assert table["unsettled"].iloc[-1] == (mail["status"] == "in_queue").sum() == 0
    # nothing reaches dest.example before its MX is back at 3 h: three rows wait till then
    assert table.loc[table["end"] <= OUTAGE_END_S, "unsettled"].iloc[-1] == 3
    assert table.loc[table["start"] == OUTAGE_END_S, "delivered"].item() == 3


def test_queue_drains_after_the_outage(result: RunResult) -> None:
    settled = settling(result.messages, result.queues, SMALL)
    delivered = result.messages[result.messages["status"] == "delivered"]
    latency = delivered["delivered_at"] - delivered["created_at"]
    assert settled.max_latency_s == pytest.approx(latency.max())
    assert settled.outage_ended_at == OUTAGE_END_S
    assert settled.drained_at is not None
    last_dest = delivered.loc[delivered["recipient_domain"] == "dest.example", "delivered_at"]
    # the last deferred entry leaves the deferred queue before its delivery completes
    assert OUTAGE_END_S <= settled.drained_at <= last_dest.max()
    assert settled.drain_after_outage_s == pytest.approx(settled.drained_at - OUTAGE_END_S)
    times, levels = deferred_total(result.queues)
    assert levels.max() == settled.deferred_peak
    assert np.all(levels[times >= settled.drained_at] == 0)


def test_the_loaded_scenario_gives_the_outage_its_toml_gives(result: RunResult) -> None:
    """The CLI reads the last outage's end from the loaded scenario, not its TOML: the
    same end, and none when the queues drained before it."""
    from_toml = settling(result.messages, result.queues, SMALL)
    without = settling(result.messages, result.queues)
    assert without.outage_ended_at is None
    assert with_outages(without, result.scenario) == from_toml
    early = replace(without, drained_at=OUTAGE_END_S - 1.0)
    assert with_outages(early, result.scenario).outage_ended_at is None


def test_outcomes_command_prints_the_hours(tmp_path: Path) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    out = tmp_path / "run"
    ran = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert ran.exit_code == 0, ran.output
    assert "after the outage that ended at 3 h" in ran.output
    shown = CliRunner().invoke(app, ["outcomes", str(out), "--every", "2h"])
    assert shown.exit_code == 0, shown.output
    assert [line.split()[0:2] for line in shown.output.splitlines() if " h " in line[:6]] == [
        ["2", "h"],
        ["4", "h"],
    ]
    assert "maximum delivery latency: 3 h 40 min" in shown.output
    bad = CliRunner().invoke(app, ["outcomes", str(out), "--every", "soon"])
    assert bad.exit_code == 2
    assert bad.output.startswith("mailnet: error: --every:")
