"""Backup MX hosts as they are run: accepting every address of their domain, bouncing
unknown users late and from themselves (backscatter when the sender was forged), and a
primary that trusts its own backup (mail-facts.md §11)."""

from __future__ import annotations

import pytest

from mailnet import simulate
from mailnet.model.inbound import own_hosts
from tests.conftest import build, one_mx_world

BACKUP = "backup.dest.example"


def backup_world(until: str = "3h", **backup) -> dict:
    """``dest.example`` with a primary that times out from 0 s to ``until`` and a backup
    MX (preference 20, 0.5 s sessions)."""
    raw = one_mx_world(outages=[{"start": "0s", "end": until, "mode": "timeout"}])
    raw["domains"]["dest.example"]["mx"].append({"host": BACKUP, "preference": 20})
    raw["servers"][BACKUP] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "0.5s"},
        **backup,
    }
    return raw


def test_verify_recipients_defaults_by_role():
    raw = backup_world()
    raw["servers"]["gateway.dest.example"] = {"role": "relay", "relay_to": "mx.dest.example"}
    servers = build(raw).servers
    assert servers["mx.dest.example"].verify_recipients is True
    assert servers["gateway.dest.example"].verify_recipients is True
    assert servers[BACKUP].verify_recipients is False
    listed = build(raw, **{f"servers__{BACKUP}__verify_recipients": True})
    assert listed.servers[BACKUP].verify_recipients is True


def test_backup_accepts_an_unknown_user_and_bounces_it_hours_later():
    """The primary times out until 3 h. At 5 s the provider's connection to it times out
    (30 s) and the backup takes both recipients at 35.55 s; it retries the primary on
    Postfix's schedule and reaches it at 11100 s, where the unknown user is refused: the
    backup, not the provider, bounces it and sends the DSN, 3 h after submission."""
    raw = backup_world()
    raw["senders"]["users"]["messages"] = [
        {"at": "5s", "to": ["alice@dest.example", "nosuchuser1@dest.example"]}
    ]
    result = simulate(build(raw))
    a = result.attempts
    timed_out = a[(a["hop"] == "isp") & (a["outcome"] == "passed_on")]
    assert list(timed_out["mx_host"]) == ["mx.dest.example"] * 2
    assert timed_out["ended_at"].tolist() == pytest.approx([35.0, 35.0])
    first = a[(a["hop"] == "isp") & (a["outcome"] != "passed_on")]
    assert list(first["mx_host"]) == [BACKUP, BACKUP]
    assert list(first["outcome"]) == ["sent", "sent"]
    assert first["started_at"].tolist() == pytest.approx([35.0, 35.0])
    assert first["ended_at"].tolist() == pytest.approx([35.55, 35.55])
    relayed = a[(a["hop"] == BACKUP) & (a["recipient"] == "nosuchuser1@dest.example")]
    assert relayed["started_at"].tolist() == pytest.approx([35.55, 600, 1500, 3300, 6900, 11100])
    assert list(relayed["outcome"]) == ["deferred"] * 5 + ["bounced"]
    last = relayed.iloc[-1]
    assert (last["code"], last["enhanced_code"]) == (550, "5.1.1")
    m = result.messages
    dsn = m[m["is_dsn"]]
    assert len(dsn) == 1
    row = dsn.iloc[0]
    assert row["provider"] == BACKUP  # from the backup, not from the sender's provider
    assert row["created_at"] == pytest.approx(11101.05)  # the end of that session
    assert (row["recipient"], row["dsn_of"], row["dsn_kind"]) == ("users0@isp.example", 0, "failed")
    assert row["status"] == "delivered"
    alice = m[m["recipient"] == "alice@dest.example"].iloc[0]
    assert alice["delivered_at"] == pytest.approx(11101.05)
    assert result.summary["dsn"]["backscatter"] == 0


def test_a_verifying_backup_refuses_the_unknown_user_at_once():
    """With the domain's users listed (relay_recipient_maps), the backup answers 550 at
    RCPT and the sending provider bounces at once: no late bounce from the backup."""
    raw = backup_world(verify_recipients=True)
    raw["senders"]["users"]["messages"] = [{"at": "5s", "to": ["nosuchuser1@dest.example"]}]
    result = simulate(build(raw))
    a = result.attempts
    assert list(a["hop"]) == ["isp", "isp"]
    assert list(a["outcome"]) == ["passed_on", "bounced"]  # the primary timed out first
    assert (a.iloc[1]["mx_host"], a.iloc[1]["code"]) == (BACKUP, 550)
    dsn = result.messages[result.messages["is_dsn"]].iloc[0]
    assert dsn["provider"] == "isp"
    assert dsn["created_at"] == pytest.approx(35.05)


def test_forged_sender_gets_backscatter_from_the_backup(tmp_path):
    """Spam to unknown users with a forged envelope sender at victim.example: the backup
    accepts it, and once the primary is back it bounces it to the victim."""
    trace = tmp_path / "forged.csv"
    trace.write_text(
        "at,sender,recipients\n"
        "10s,victim@victim.example,nosuchuser7@dest.example\n"
        "20s,0,nosuchuser8@dest.example\n"
    )
    raw = backup_world()
    raw["senders"]["users"]["trace"] = str(trace)
    del raw["senders"]["users"]["messages"]
    raw["domains"]["victim.example"] = {"mx": [{"host": "mx.victim.example"}]}
    raw["servers"]["mx.victim.example"] = {}
    result = simulate(build(raw))
    m = result.messages
    dsn = m[m["is_dsn"]].set_index("dsn_of")
    assert (dsn["provider"] == BACKUP).all()
    assert dsn.loc[0, "recipient"] == "victim@victim.example"
    assert dsn.loc[0, "created_at"] > 3 * 3600
    assert dsn.loc[0, "status"] == "delivered"  # into the victim's mailbox
    summary = result.summary["dsn"]
    assert (summary["messages"], summary["backscatter"]) == (2, 1)
    a = result.attempts
    to_victim = a[a["recipient"] == "victim@victim.example"]
    assert list(to_victim["hop"]) == [BACKUP]


def test_backup_queue_grows_during_the_outage_and_drains_after():
    """Ten messages during a 3 h outage wait in the backup's queue; once the primary is
    back the queue is empty and every message delivered."""
    raw = backup_world()
    raw["senders"]["users"]["messages"] = [
        {"at": f"{60 * i}s", "to": [f"u{i}@dest.example"]} for i in range(10)
    ]
    result = simulate(build(raw))
    q = result.queues
    held = q[(q["entity"] == BACKUP) & (q["metric"].isin(["deferred", "active"]))]
    total = held.pivot_table(index="time", columns="metric", values="value", aggfunc="last")
    total = total.ffill().fillna(0).sum(axis=1)
    assert total[total.index < 3 * 3600].max() == 10
    assert total.iloc[-1] == 0
    m = result.messages
    assert (m["status"] == "delivered").all()
    assert (m["delivered_at"] > 3 * 3600).all()


def trusting_world() -> dict:
    """dest.example's primary greylists and rejects SpamCop-listed clients; its backup
    does neither. The primary is down for the first hour."""
    raw = backup_world(until="1h")
    raw["servers"]["mx.dest.example"]["receiver"] = "dest"
    raw["receivers"] = {
        "dest": {"greylisting": {"delay": "5m"}, "blocklists": {"spamcop": "reject"}}
    }
    raw["blocklists"] = {"spamcop": {"preset": "spamcop"}}
    return raw


def test_primary_trusts_its_backup_and_lists_the_external_relay():
    """A trap hit relayed by the backup lists the provider's address, not the backup's;
    the primary neither greylists nor blocklist-checks its backup, while the listed
    provider talking to the primary directly is rejected."""
    raw = trusting_world()
    raw["senders"]["users"]["messages"] = [
        {"at": "10s", "to": ["trap1@dest.example"]},
        {"at": "20s", "to": ["alice@dest.example"]},
        {"at": "3h", "to": ["bob@dest.example"]},
    ]
    result = simulate(build(raw))
    listings = result.listings
    assert list(listings["key"]) == ["198.51.100.1"]
    assert listings.iloc[0]["trigger"] == "trap"
    a = result.attempts
    relayed = a[(a["hop"] == BACKUP) & a["session_at"].notna()]
    assert len(relayed) == 2
    assert (relayed["code"] == 250).all()  # no greylisting of the backup
    assert relayed["ended_at"].tolist() == pytest.approx([6901.05, 6901.05])
    direct = a[(a["hop"] == "isp") & (a["recipient"] == "bob@dest.example")]
    assert (direct.iloc[0]["mx_host"], direct.iloc[0]["code"]) == ("mx.dest.example", 554)


def test_trust_does_not_reach_strangers():
    """Mail straight from the provider to the primary is greylisted as before."""
    raw = trusting_world()
    raw["senders"]["users"]["messages"] = [{"at": "2h", "to": ["alice@dest.example"]}]
    result = simulate(build(raw))
    a = result.attempts
    first = a.iloc[0]
    assert (first["hop"], first["mx_host"], first["code"]) == ("isp", "mx.dest.example", 450)
    # kept for the backup in the same delivery (the next-MX rule), which takes it
    assert list(a["mx_host"][:2]) == ["mx.dest.example", BACKUP]


def test_own_hosts_are_the_domains_mx_hosts_and_relay_targets():
    raw = backup_world()
    raw["domains"]["corp.example"] = {"mx": [{"host": "gw.corp.example"}]}
    raw["servers"]["gw.corp.example"] = {
        "role": "relay",
        "relay_to": "in.corp.example",
        "ip": "192.0.2.50",
    }
    raw["servers"]["in.corp.example"] = {"ip": "192.0.2.51"}
    scenario = build(raw)
    trusted = own_hosts(scenario)
    ips = {name: s.ip for name, s in scenario.servers.items()}
    assert trusted["mx.dest.example"] == {ips[BACKUP]}
    assert trusted[BACKUP] == {ips["mx.dest.example"]}
    assert trusted["in.corp.example"] == {"192.0.2.50"}
    assert trusted["gw.corp.example"] == {"192.0.2.51"}
    assert not trusted["mx.isp.example"]


def test_spam_relayed_by_the_backup_teaches_reputation_about_the_sender():
    """Thirty spam messages wait at the backup during a 1 h outage and are relayed at
    once when the primary returns. The primary's reputation and filter judge the
    provider's address, not the backup's: the backup is never throttled or rejected,
    while the provider's score falls below reject_below and its next direct message is
    refused."""
    raw = backup_world(until="1h")
    raw["servers"]["mx.dest.example"]["receiver"] = "dest"
    raw["receivers"] = {
        "dest": {
            "reputation": {"half_life": "1d", "throttle_below": 0.85, "reject_below": 0.6},
            "filter": {},
        }
    }
    raw["senders"]["users"]["class"] = "spam"
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i}s", "to": [f"u{i}@dest.example"]} for i in range(30)
    ] + [{"at": "2h", "to": ["late@dest.example"]}]
    raw["simulation"]["sample_interval"] = "30m"
    result = simulate(build(raw))
    a = result.attempts
    relayed = a[(a["hop"] == BACKUP) & a["session_at"].notna()]
    assert len(relayed) == 30
    assert (relayed["code"] == 250).all()
    by_ip = result.reputation[result.reputation["kind"] == "ip"]
    scores = by_ip.set_index("time")["score"]
    assert set(by_ip["key"]) == {"198.51.100.1"}
    assert scores[3600.0] == 1.0
    assert scores[5400.0] < 0.6
    late = a[a["recipient"] == "late@dest.example"].iloc[0]
    assert (late["hop"], late["mx_host"], late["code"]) == ("isp", "mx.dest.example", 550)
