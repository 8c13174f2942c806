"""Changes during a run (``[[changes]]``): applied at their time or trigger to the live
components, recorded in ``changes.parquet``, and refused at load time when a key cannot
change during a run or a value fails the scenario's own validation."""

from __future__ import annotations

import math
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet import simulate
from mailnet.cli import app
from mailnet.errors import ScenarioError
from mailnet.scenario import Scenario, load_scenario
from mailnet.scenario.changes import MUTABLE
from tests.conftest import one_mx_world

SHARED = ("198.51.100.1", "198.51.100.2")
OWN = "203.0.113.10"

# One provider whose spammer shares the two addresses of its users (pools by class, the
# spam pool being the ham pool) until a change gives it an address of its own. SpamCop
# lists an address on one trap hit for 24 h after the last; bigmail rejects listed
# clients. About 600 messages a day: a few seconds per run.
SPAM_WORLD = textwrap.dedent(f"""
    [simulation]
    duration = "2d"
    seed = 1

    [providers.isp]
    ips = ["{SHARED[0]}", "{SHARED[1]}", "{OWN}"]
    local_domains = ["isp.example"]
    pool_strategy = "by-class"
    pools = {{ ham = {list(SHARED)}, spam = {list(SHARED)} }}

    [senders.users]
    provider = "isp"
    count = 40
    rate = "10/d"
    domains = {{ "bigmail.example" = 1.0 }}

    [senders.spammer]
    provider = "isp"
    class = "spam"
    rate = "200/d"
    traps = 0.05
    domains = {{ "bigmail.example" = 1.0 }}

    [blocklists.spamcop]
    preset = "spamcop"

    [receivers.bigmail]
    blocklists = {{ spamcop = "reject" }}

    [domains."bigmail.example"]
    mx = [ {{ host = "mx.bigmail.example", preference = 10 }} ]

    [servers."mx.bigmail.example"]
    receiver = "bigmail"
    sessions = 20
    service_time = {{ dist = "constant", mean = "1s" }}
""").replace("'", '"')

MOVE = '{ "providers.isp.pools.spam" = ["203.0.113.10"] }'

IN_FLIGHT = 60.0
"""Seconds an attempt begun before a change may still run after it (1 s sessions)."""


def run_cli(tmp_path: Path, text: str) -> Path:
    scenario = tmp_path / "world.toml"
    scenario.write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def legitimate(out: Path) -> pd.DataFrame:
    messages = pd.read_parquet(out / "messages.parquet")
    return messages[(messages["sender_class"].astype(str) != "spam") & ~messages["is_dsn"]]


def test_moving_the_spammer_at_24h_ends_shared_listings_and_collateral(tmp_path) -> None:
    out = run_cli(tmp_path, SPAM_WORLD + f'\n[[changes]]\nat = "24h"\nset = {MOVE}\n')
    changes = pd.read_parquet(out / "changes.parquet")
    assert changes.to_dict("records") == [
        {
            "time": 86400.0,
            "change": 0,
            "trigger": "at",
            "key": "providers.isp.pools.spam",
            "old": '["198.51.100.1", "198.51.100.2"]',
            "new": '["203.0.113.10"]',
        }
    ]
    listings = pd.read_parquet(out / "listings.parquet")
    shared = listings[listings["key"].isin(SHARED)]
    assert len(shared) >= 1, "the world must list a shared address before the change"
    assert (shared["listed_at"] < 86400 + IN_FLIGHT).all()
    attempts = pd.read_parquet(out / "attempts.parquet")
    messages = pd.read_parquet(out / "messages.parquet")
    spam_ids = messages.loc[messages["sender_class"].astype(str) == "spam", "message_id"]
    spam = attempts[attempts["message_id"].isin(spam_ids)]
    assert set(spam.loc[spam["started_at"] >= 86400, "source_ip"].astype(str)) == {OWN}
    # collateral damage per day: day 1 pays for the listings, day 2 only while a listing
    # from day 1 lasts (24 h after its last trap hit)
    mail = legitimate(out)
    per_day = mail.groupby(mail["created_at"] // 86400)["collateral"].mean()
    assert per_day[0] > 0.5
    assert per_day[1] < per_day[0] / 4


def test_the_first_listing_moves_the_spammer(tmp_path) -> None:
    change = '[[changes]]\nwhen = { event = "listed", provider = "isp" }\n'
    out = run_cli(tmp_path, SPAM_WORLD + f"\n{change}set = {MOVE}\n")
    listings = pd.read_parquet(out / "listings.parquet").sort_values("listed_at")
    first = listings.iloc[0]
    changes = pd.read_parquet(out / "changes.parquet")
    assert len(changes) == 1  # once, although later listings fire the trigger again
    row = changes.iloc[0]
    assert row["time"] == first["listed_at"]
    assert row["trigger"] == f"listed spamcop {first['key']}"
    shared = listings[listings["key"].isin(SHARED)]
    assert (shared["listed_at"] <= row["time"] + IN_FLIGHT).all()
    assert (listings.loc[listings["listed_at"] > row["time"] + IN_FLIGHT, "key"] == OWN).all()


def test_a_delay_and_once_false(tmp_path) -> None:
    """With ``delay`` the change comes that long after its trigger; with ``once = false``
    each listing of the provider's addresses fires it again."""
    text = SPAM_WORLD.replace('duration = "2d"', 'duration = "12h"') + textwrap.dedent(f"""
        [[changes]]
        when = {{ event = "listed", provider = "isp", list = "spamcop" }}
        delay = "1h"
        once = false
        set = {MOVE}
    """)
    result = simulate(Scenario.from_dict(_toml(text)))
    listed = result.listings.sort_values("listed_at", kind="stable")
    covered = listed[listed["key"].isin([*SHARED, OWN])]
    fired = covered[covered["listed_at"] + 3600 < 12 * 3600]
    assert list(result.changes["time"]) == list(fired["listed_at"] + 3600)
    assert len(result.changes) >= 2


def test_a_deep_queue_raises_the_sessions() -> None:
    """``queue_above``: the deferred queue of hop ``isp`` passes 5 while the MX refuses
    connections; the MX gets 40 sessions at that moment."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "1h", "mode": "refuse"}])
    raw["senders"]["users"] = {
        "provider": "isp",
        "count": 10,
        "rate": "20/h",
        "domains": {"dest.example": 1.0},
    }
    raw["simulation"]["duration"] = "3h"
    raw["changes"] = [
        {
            "when": {"event": "queue_above", "hop": "isp", "threshold": 5},
            "set": {'servers."mx.dest.example".sessions': 40},
        }
    ]
    result = simulate(Scenario.from_dict(raw))
    queues = result.queues
    deferred = queues[(queues["entity"] == "isp") & (queues["metric"] == "deferred")]
    first = deferred.loc[deferred["value"] > 5, "time"].iloc[0]
    assert result.changes[["time", "trigger", "old", "new"]].to_dict("records") == [
        {"time": first, "trigger": "queue_above isp 6", "old": "10", "new": "40"}
    ]


def test_a_rate_stops_and_resumes() -> None:
    raw = one_mx_world()
    raw["senders"]["users"] = {
        "provider": "isp",
        "count": 2,
        "rate": "30/h",
        "domains": {"dest.example": 1.0},
    }
    raw["changes"] = [
        {"at": "6h", "set": {"senders.users.rate": "0/d"}},
        {"at": "12h", "set": {"senders.users.rate": "60/h"}},
    ]
    result = simulate(Scenario.from_dict(raw))
    created = result.messages["created_at"]
    hour = 3600
    assert not ((created >= 6 * hour) & (created < 12 * hour)).any()
    before = int((created < 6 * hour).sum())  # Poisson, mean 2 * 30 * 6 = 360
    after = int((created >= 12 * hour).sum())  # Poisson, mean 2 * 60 * 12 = 1440
    for count, mean in ((before, 360), (after, 1440)):
        assert abs(count - mean) < 4 * math.sqrt(mean)  # 4 sd: fails 1 in 16,000 seeds
    assert list(result.changes["new"]) == ['"0/d"', '"1/m"']


def test_a_backup_mx_added_at_hour_6_takes_the_mail() -> None:
    """The primary refuses for 12 h; from hour 6 a backup MX is in the domain's records:
    senders hand it the mail, and it relays to the primary (never to itself)."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "12h", "mode": "refuse"}])
    raw["senders"]["users"]["messages"] = [
        {"at": f"{h}h", "to": ["alice@dest.example"]} for h in (1, 7)
    ]
    raw["servers"]["backup.dest.example"] = {"role": "backup", "sessions": 5}
    records = [
        {"host": "mx.dest.example", "preference": 10},
        {"host": "backup.dest.example", "preference": 20},
    ]
    raw["changes"] = [{"at": "6h", "set": {'domains."dest.example".mx': records}}]
    result = simulate(Scenario.from_dict(raw))
    attempts = result.attempts
    to_backup = attempts[attempts["mx_host"] == "backup.dest.example"]
    assert (to_backup["started_at"] >= 6 * 3600).all()
    assert set(to_backup.loc[to_backup["outcome"] == "sent", "message_id"]) == {0, 1}
    relayed = attempts[attempts["hop"] == "backup.dest.example"]
    assert set(relayed["mx_host"].astype(str)) == {"mx.dest.example"}
    assert (result.messages["status"] == "delivered").all()
    assert (result.messages["delivered_at"] >= 12 * 3600).all()


def test_an_outbound_filter_from_hour_6() -> None:
    raw = one_mx_world()
    raw["senders"]["users"] = {
        "provider": "isp",
        "class": "spam",
        "rate": "10/h",
        "domains": {"dest.example": 1.0},
    }
    raw["changes"] = [{"at": "6h", "set": {"providers.isp.outbound_filter.catch_rate": 1.0}}]
    result = simulate(Scenario.from_dict(raw))
    late = result.messages[result.messages["created_at"] > 6 * 3600]
    assert len(late) > 0
    assert (late["status"] == "bounced").all()
    early = result.messages[result.messages["created_at"] < 6 * 3600]
    assert (early["status"] == "delivered").all()
    assert result.changes.iloc[0][["old", "new"]].tolist() == ["null", "1.0"]


def test_changes_survive_the_resolved_scenario() -> None:
    raw = one_mx_world()
    raw["changes"] = [
        {"at": "1h", "set": {"servers": {"mx.dest.example": {"sessions": 3}}}},
        {"when": {"event": "listed", "provider": "isp"}, "delay": "5m", "set": {}},
    ]
    raw["changes"][1]["set"] = {"providers.isp.ip_selection": "random"}
    scenario = Scenario.from_dict(raw)
    assert scenario.changes[0].set == {'servers."mx.dest.example".sessions': 3}
    again = Scenario.from_dict(tomllib.loads(scenario.to_toml()))
    assert again == scenario
    assert "changes" not in Scenario.from_dict(one_mx_world()).to_dict()


BAD = [
    # (the change, expected key, expected words)
    ({"at": "1h", "set": {"providers.isp.ips": ["192.0.2.1"]}}, "providers.isp.ips", "fixed"),
    ({"at": "1h", "set": {"simulation.duration": "2d"}}, "simulation.duration", "fixed before"),
    ({"at": "1h", "set": {"receivers.r.blocklists": {}}}, "receivers.r.blocklists", "receivers"),
    ({"at": "1h", "set": {"senders.nobody.rate": "1/h"}}, "senders.nobody.rate", "no sender"),
    ({"at": "1h", "set": {"senders.users.rate": "1/h"}}, "senders.users.rate", "at a rate"),
    (
        {"at": "1h", "set": {'servers."mx.dest.example".sessions': 0}},
        'servers."mx.dest.example".sessions',
        "greater than or equal to 1",
    ),
    (
        {"at": "1h", "set": {"providers.isp.pools": {"ham": ["192.0.2.9"]}}},
        "providers.isp.pools",
        "not in ips",
    ),
    (
        {"at": "1h", "set": {"providers.isp.pool_strategy": "by-reputation"}},
        "providers.isp.pool_strategy",
        "per-sender counts",
    ),
    (
        {"at": "1h", "set": {'domains."dest.example".mx': [{"host": "nohost"}]}},
        'domains."dest.example".mx',
        "no [servers] entry",
    ),
]


@pytest.mark.parametrize(("change", "key", "words"), BAD)
def test_a_change_that_cannot_be_made_is_refused_at_load(change, key, words) -> None:
    raw = one_mx_world()
    raw["changes"] = [{"at": "1h", "set": {"servers.other.sessions": 1}}, change]
    raw["servers"]["other"] = {"sessions": 2}
    with pytest.raises(ScenarioError) as error:
        Scenario.from_dict(raw, source="world.toml")
    assert error.value.key == f"changes[1].set.{key}"
    assert words in error.value.problem


TRIGGERS = [
    ({"set": {}}, "changes[0].set", "at least 1"),
    ({"at": "1h", "when": {"event": "listed", "provider": "isp"}}, "changes[0]", "exactly one"),
    ({"when": {"event": "listed", "provider": "nope"}}, "changes[0].when.provider", "nope"),
    ({"when": {"event": "listed", "provider": "isp", "list": "x"}}, "changes[0].when.list", "x"),
    ({"when": {"event": "queue_above", "hop": "mx.dest.example", "threshold": 3}}, "hop", "relay"),
    ({"when": {"event": "queue_above", "hop": "isp"}}, "changes[0].when", "threshold"),
    ({"at": "1h", "delay": "5m"}, "changes[0]", "go with when"),
]


@pytest.mark.parametrize(("fields", "key", "words"), TRIGGERS)
def test_a_broken_change_entry_is_one_clear_error(fields, key, words) -> None:
    raw = one_mx_world()
    raw["changes"] = [{"set": {"providers.isp.ip_selection": "random"}, **fields}]
    with pytest.raises(ScenarioError) as error:
        Scenario.from_dict(raw, source="world.toml")
    assert key in error.value.key
    assert words in error.value.problem


def test_the_command_line_refuses_an_immutable_key(tmp_path) -> None:
    scenario = tmp_path / "world.toml"
    scenario.write_text(SPAM_WORLD + '\n[[changes]]\nat = "1h"\nset.providers.isp.asn = 1\n')
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert "Traceback" not in line
    assert f"{scenario}: changes[0].set.providers.isp.asn: cannot change" in line


def test_every_mutable_key_is_documented_in_the_readme() -> None:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    start = text.index("\n### Changes during a run\n")
    section = text[start : text.index("\n## ", start)]
    for section_name, field in MUTABLE:
        assert f"`{section_name}.NAME.{field}`" in section


def test_load_scenario_reads_changes_from_a_file(tmp_path) -> None:
    path = tmp_path / "world.toml"
    path.write_text(SPAM_WORLD + f'\n[[changes]]\nat = "24h"\nset = {MOVE}\n')
    assert load_scenario(path).changes[0].at == 86400.0


def _toml(text: str) -> dict:
    return tomllib.loads(text)


def test_the_timelines_mark_each_change() -> None:
    from mailnet.report import timelines

    raw = one_mx_world()
    raw["changes"] = [{"at": "6h", "set": {'servers."mx.dest.example".sessions': 3}}]
    result = simulate(Scenario.from_dict(raw))
    figure = timelines.queue_figure(result.queues, "server", end=86400, changes=result.changes)
    assert figure is not None
    for ax in figure.axes:
        if not ax.get_ylabel():
            continue
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert [line.get_xdata()[0] for line in dashed] == [6.0]  # hours
        assert "#0" in [text.get_text().strip() for text in ax.texts]
    unmarked = timelines.queue_figure(result.queues, "server", end=86400)
    assert unmarked is not None
    assert not [
        line for ax in unmarked.axes for line in ax.get_lines() if line.get_linestyle() == "--"
    ]


def test_changes_valid_alone_but_not_together_stop_the_run_with_one_error() -> None:
    raw = one_mx_world()
    raw["providers"]["isp"]["pools"] = {"ham": ["198.51.100.1"]}
    raw["changes"] = [
        {"at": "1h", "set": {"providers.isp.pools": {}}},
        {"at": "2h", "set": {"providers.isp.pool_strategy": "by-class"}},
    ]
    scenario = Scenario.from_dict(raw, source="world.toml")
    with pytest.raises(ScenarioError) as error:
        simulate(scenario, source="world.toml")
    assert error.value.key == "changes[1].set.providers.isp.pool_strategy"
    assert "invalid together with the changes before it" in error.value.problem


def test_the_mitigations_experiment_reacts_after_the_first_listing() -> None:
    from mailnet.sweep.experiment import load_experiment

    path = Path(__file__).parent.parent / "experiments" / "sweeps" / "mitigations.toml"
    experiment = load_experiment(path)
    react = next(p for p in experiment.points if p.label == "react after the first listing")
    scenario = Scenario.from_dict(react.scenario)
    assert [c.when.event for c in scenario.changes if c.when] == ["listed"]
    others = [p for p in experiment.points if p is not react]
    assert all(not Scenario.from_dict(p.scenario).changes for p in others)


def test_the_readme_example_loads_with_the_headline_scenario(tmp_path) -> None:
    root = Path(__file__).parent.parent
    text = (root / "README.md").read_text()
    start = text.index("\n### Changes during a run\n")
    snippet = text[text.index("```toml\n", start) + 8 : text.index("```\n", start + 1)]
    base = (root / "experiments" / "scenarios" / "shared_ip_spam.toml").read_text()
    path = tmp_path / "world.toml"
    path.write_text(base + "\n" + snippet)
    changes = load_scenario(path).changes
    assert [c.at is not None for c in changes] == [True, False, False]
