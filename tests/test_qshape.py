"""The qshape view: qshape's age buckets and layout, and which recipients a hop holds at a
moment, checked against hand-worked timelines of an MX that refuses mail for three hours."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.output import write_run
from mailnet.qshape import (
    COLUMNS,
    bucket,
    deferred_peak,
    format_qshape,
    hops,
    qshape,
    residence,
)
from mailnet.report import make_report
from mailnet.scenario import load_scenario
from mailnet.simulate import RunResult, simulate
from mailnet.units import parse_duration

# dest.example's only MX refuses every connection for the first three hours; ok.example's
# MX is always up. Submission times are chosen away from bucket edges.
REFUSING = textwrap.dedent("""
    [simulation]
    duration = "6h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 1
    messages = [
      { at = "0s", to = ["a@dest.example"] },
      { at = "1h", to = ["b@dest.example", "c@dest.example"] },
      { at = "1h30m", to = ["h@ok.example"] },
      { at = "1h45m", to = ["d@dest.example"] },
      { at = "1h53m", to = ["e@dest.example"] },
      { at = "1h58m", to = ["f@dest.example", "g@ok.example"] },
    ]
    [domains."dest.example"]
    mx = [ { host = "mx1.dest.example", preference = 10 } ]
    [domains."ok.example"]
    mx = [ { host = "mx1.ok.example", preference = 10 } ]
    [servers."mx1.dest.example"]
    sessions = 5
    outages = [ { start = "0s", end = "3h", mode = "refuse" } ]
    [servers."mx1.ok.example"]
    sessions = 5
""")

BACKUP = REFUSING.replace(
    'mx = [ { host = "mx1.dest.example", preference = 10 } ]',
    'mx = [ { host = "mx1.dest.example", preference = 10 }, '
    '{ host = "backup.dest.example", preference = 20 } ]',
) + textwrap.dedent("""
    [servers."backup.dest.example"]
    sessions = 5
    role = "backup"
""")

# At 2h, by hand: a waited 120 min (bucket 160), b and c 60 (80), d 15 (20), e 7 (10) and
# f 2 (5); h and g were delivered within seconds.
AT_2H = "".join(
    line + "\n"
    for line in (
        " " * 39 + "  T  5 10 20 40 80 160 320 640 1280 1280+",
        " " * 34 + "TOTAL  6  1  1  1  0  2   1   0   0    0     0",
        " " * 27 + "dest.example  6  1  1  1  0  2   1   0   0    0     0",
    )
)


def _run(text: str, tmp_path: Path) -> RunResult:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return simulate(load_scenario(path), seed=1)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return _run(REFUSING, tmp_path_factory.mktemp("refusing"))


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return _run(BACKUP, tmp_path_factory.mktemp("backup"))


def test_buckets_are_qshapes() -> None:
    assert COLUMNS == ("T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+")
    minutes = np.array([0, 4.99, 5, 9.99, 10, 20, 40, 80, 160, 320, 640, 1279.9, 1280, 1e6])
    expected = [1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 10]
    assert bucket(minutes * 60).tolist() == expected


def test_the_provider_queue_at_2h(refusing: RunResult) -> None:
    table = qshape(refusing.messages, refusing.attempts, parse_duration("2h"))
    assert format_qshape(table) == AT_2H
    assert table.loc["dest.example", "T"] == 6  # b and c: one message, two recipients


def test_sorting_and_a_recipient_arriving_at_that_instant(refusing: RunResult) -> None:
    # at 1h30m: a waited 90 min, b and c 30; h reaches the queue at that very second
    table = qshape(refusing.messages, refusing.attempts, parse_duration("1h30m"))
    assert list(table.index) == ["TOTAL", "dest.example", "ok.example"]
    expected = dict.fromkeys(COLUMNS, 0) | {"T": 3, "40": 2, "160": 1}
    assert table.loc["dest.example"].to_dict() == expected
    assert table.loc["ok.example", "5"] == 1


def test_the_queue_empties_once_the_mx_is_back(refusing: RunResult) -> None:
    messages = refusing.messages
    assert (messages["status"] == "delivered").all()
    assert (
        messages.loc[messages["recipient_domain"] == "dest.example", "delivered_at"] > 3 * 3600
    ).all()
    table = qshape(messages, refusing.attempts, parse_duration("6h"))
    assert list(table.index) == ["TOTAL"]
    assert (table.loc["TOTAL"] == 0).all()


def test_a_backup_mx_holds_what_the_provider_handed_it(backup: RunResult) -> None:
    messages, attempts = backup.messages, backup.attempts
    assert hops(messages, attempts) == ["isp", "backup.dest.example"]
    at = parse_duration("2h")
    provider = qshape(messages, attempts, at, hop="isp")
    assert (provider.loc["TOTAL"] == 0).all()
    held = qshape(messages, attempts, at, hop="backup.dest.example")
    assert format_qshape(held) == AT_2H
    assert qshape(messages, attempts, at).equals(held)
    # the backup's stay begins when the provider's attempt to it ended
    stays = residence(messages, attempts)
    at_backup = stays[stays["hop"] == "backup.dest.example"].set_index("recipient")
    sent = attempts[attempts["outcome"] == "sent"]
    handed = sent[sent["mx_host"] == "backup.dest.example"].set_index(
        sent.loc[sent["mx_host"] == "backup.dest.example", "recipient"].astype(str)
    )
    assert np.allclose(at_backup["arrived"], handed.loc[at_backup.index, "ended_at"])
    assert np.allclose(
        at_backup["left"], messages.set_index("recipient").loc[at_backup.index, "delivered_at"]
    )


def _synthetic(domains: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` recipients per domain, released at 0 and still queued, never attempted."""
    names = [d for d, n in domains.items() for _ in range(n)]
    messages = pd.DataFrame(
        {
            "message_id": range(len(names)),
            "recipient": [f"u{i}@{d}" for i, d in enumerate(names)],
            "provider": "isp",
            "recipient_domain": names,
            "released_at": 0.0,
            "status": "in_queue",
            "delivered_at": np.nan,
        }
    )
    attempts = pd.DataFrame(
        columns=["message_id", "recipient", "hop", "mx_host", "started_at", "ended_at", "outcome"]
    )
    return messages, attempts


def test_ties_go_to_the_shorter_name_and_long_names_keep_their_end() -> None:
    long = "a-very-long-subdomain.of-an-example.example"
    messages, attempts = _synthetic({"bb.example": 2, "a.example": 2, long: 3, "z.example": 1})
    table = qshape(messages, attempts, 3600.0)
    assert list(table.index) == ["TOTAL", long, "a.example", "bb.example", "z.example"]
    lines = format_qshape(table).splitlines()
    assert {len(line) for line in lines} == {80}
    assert lines[2].startswith("+" + long[-38:])
    assert lines[1].split() == ["TOTAL", "8", "0", "0", "0", "0", "8", "0", "0", "0", "0", "0"]


def test_wide_counts_widen_their_column() -> None:
    messages, attempts = _synthetic({"x.example": 1234})
    lines = format_qshape(qshape(messages, attempts, 0.0)).splitlines()
    # the T and 5 columns are four digits plus a space
    assert lines[0].endswith("    T    5 10 20 40 80 160 320 640 1280 1280+")
    assert lines[1].endswith("TOTAL 1234 1234  0  0  0  0   0   0   0    0     0")


def test_deferred_peak_adds_the_mtas_up() -> None:
    queues = pd.DataFrame(
        {
            "time": [0.0, 10.0, 20.0, 20.0, 30.0, 40.0],
            "kind": "mta",
            "entity": ["a", "b", "a", "b", "a", "b"],
            "metric": "deferred",
            "value": [3, 2, 1, 4, 5, 0],
        }
    )
    # totals: 3, 5, (2 then) 5 at 20, 9 at 30, 5 at 40
    assert deferred_peak(queues) == (30.0, 9)
    assert deferred_peak(queues.iloc[:0]) is None


def test_the_command_and_the_report(backup: RunResult, tmp_path: Path) -> None:
    run_dir = write_run(backup, tmp_path / "run")
    cli = CliRunner()
    result = cli.invoke(app, ["qshape", str(run_dir), "--at", "2h"])
    assert result.exit_code == 0, result.output
    assert result.output == AT_2H
    result = cli.invoke(app, ["qshape", str(run_dir), "--at", "2h", "--hop", "isp"])
    assert result.output.splitlines()[1].split()[1] == "0"
    for args, words in (
        (["--at", "7h"], "after the end of the run"),
        (["--at", "soon"], "not a duration"),
        (["--hop", "mx9.example"], "no MTA 'mx9.example'"),
    ):
        result = cli.invoke(app, ["qshape", str(run_dir), *args])
        assert result.exit_code == 2
        assert len(result.output.strip().splitlines()) == 1
        assert words in result.output
    html = make_report(run_dir).read_text(encoding="utf-8")
    assert "Queue shape at the deferred peak" in html
    assert "dest.example" in html.split("Queue shape at the deferred peak")[1]
