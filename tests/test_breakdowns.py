"""Breakdowns by provider, sender group, recipient domain, receiver and hop, through the
real command line: each partitions the run's rows, so the groups add up to the whole."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet.breakdowns import DIMENSIONS, Layout, breakdown, sender_groups
from mailnet.cli import app
from tests.views_world import SMALL


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("views")
    scenario = base / "small.toml"
    scenario.write_text(SMALL)
    out = base / "run"
    args = ["run", str(scenario), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, *(f"--by={d}" for d in DIMENSIONS)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_prints_legitimate_mail_beside_all_mail(run_dir: tuple[Path, str]) -> None:
    out, text = run_dir
    summary = json.loads((out / "summary.json").read_text())
    assert "legitimate mail" in text
    assert "collateral: share" in text
    # the outage of dest.example is seen in the latency, written in two units
    assert "3 h 40 min" in text
    assert summary["legitimate"]["recipients"] == summary["recipients"] == 8
    for title in ("by provider", "by sender group", "by recipient domain", "by receiver", "by hop"):
        assert title in text


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, Layout]:
    messages = pd.read_parquet(out / "messages.parquet")
    attempts = pd.read_parquet(out / "attempts.parquet")
    return messages, attempts, Layout.from_toml((out / "scenario.toml").read_text())


@pytest.mark.parametrize("by", ["provider", "group", "domain", "receiver"])
def test_message_breakdowns_add_up(run_dir: tuple[Path, str], by: str) -> None:
    messages, attempts, layout = _tables(run_dir[0])
    table = breakdown(messages, attempts, layout, by)
    mail = messages[~messages["is_dsn"]]
    assert table["recipients"].sum() == len(mail)
    assert table["delivered"].sum() == (mail["status"] == "delivered").sum()
    assert table["bounced"].sum() == mail["status"].isin(["bounced", "expired"]).sum()


def test_groups_domains_and_receivers_are_named(run_dir: tuple[Path, str]) -> None:
    messages, attempts, layout = _tables(run_dir[0])
    groups = breakdown(messages, attempts, layout, "group")
    assert groups["recipients"].to_dict() == {"users": 5, "news2": 3}
    receivers = breakdown(messages, attempts, layout, "receiver")
    # dest.example's three recipients all waited out the outage: each deferred
    assert receivers.loc["dest", "recipients"] == 3
    assert receivers.loc["dest", "deferral_rate"] == 1.0
    domains = breakdown(messages, attempts, layout, "domain")
    assert domains.loc["ok.example", "bounce_rate"] == pytest.approx(1 / 4)  # nosuch1


def test_hop_breakdown_counts_every_attempt(run_dir: tuple[Path, str]) -> None:
    messages, attempts, layout = _tables(run_dir[0])
    hops = breakdown(messages, attempts, layout, "hop")
    assert hops["attempts"].sum() == len(attempts)
    assert (
        hops[["sent", "deferred", "bounced", "held", "passed_on"]].sum(axis=1) == hops["attempts"]
    ).all()


def test_sender_addresses_map_to_their_group() -> None:
    found = sender_groups(["users12@a", "users112@a", "news20@a", "bob@a"], ["users", "news2"])
    assert found == {
        "users12@a": "users",
        "users112@a": "users",
        "news20@a": "news2",
        "bob@a": "bob",
    }


def test_breakdown_command_refuses_an_unknown_dimension(run_dir: tuple[Path, str]) -> None:
    result = CliRunner().invoke(app, ["breakdown", str(run_dir[0]), "--by", "colour"])
    assert result.exit_code == 2
    assert "--by: no dimension 'colour'" in result.output
    shown = CliRunner().invoke(app, ["breakdown", str(run_dir[0]), "--by", "group", "--top", "1"])
    assert shown.exit_code == 0, shown.output
    assert "users" in shown.output
    assert "… 1 more" in shown.output


def test_report_shows_breakdowns_and_outcomes_over_time(run_dir: tuple[Path, str]) -> None:
    out = run_dir[0]
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report" / "report.html").read_text()
    for text in (
        "legitimate mail",
        "By sender group",
        "news2",
        "By receiver",
        "Outcomes over time",
    ):
        assert text in html
    assert "after the scheduled outage that ended at 3 h" in html
    assert (out / "report" / "over_time.png").stat().st_size > 0
