"""Exact timelines from deterministic inputs: attempt times and deliveries to the second."""

from __future__ import annotations

import numpy as np
import pytest

from mailnet import simulate
from tests.conftest import build, one_mx_world

POSTFIX_REFUSED = [0, 300, 600, 1200, 2400, 4800, 9000, 13200, 17400]


def test_mx_refusing_three_hours_postfix():
    """Refused for 3 h: attempts on Postfix's schedule, delivery at the first one after."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "3h", "mode": "refuse"}])
    result = simulate(build(raw))
    attempts = result.attempts
    assert list(np.floor(attempts["started_at"])) == POSTFIX_REFUSED[:8]
    assert list(attempts["outcome"]) == ["deferred"] * 7 + ["sent"]
    assert set(attempts["code"][:7]) == {421}
    row = result.messages.iloc[0]
    assert row["status"] == "delivered"
    # 13200 s scan, 0.05 s connection set-up, 1 s constant service time
    assert row["delivered_at"] == pytest.approx(13201.05)
    assert row["attempts"] == 8


def test_connection_timeouts_cost_the_connect_timeout():
    raw = one_mx_world(outages=[{"start": "0s", "end": "20m", "mode": "timeout"}])
    result = simulate(build(raw))
    a = result.attempts
    # each timed-out attempt ends smtp_connect_timeout (30 s) after it starts
    failed = a[a["outcome"] == "deferred"]
    assert np.allclose(failed["ended_at"] - failed["started_at"], 30.0)
    # failures are handled 30 s after each attempt: at 30 s (age 30, backoff 300: eligible
    # 330, first scan 600) and at 630 s (age 630: eligible 1260, first scan 1500)
    assert list(np.floor(a["started_at"])) == [0, 600, 1500]
    assert result.messages.iloc[0]["delivered_at"] == pytest.approx(1501.05)


def test_lifetime_zero_bounces_after_one_attempt_and_sends_dsn():
    raw = one_mx_world(outages=[{"start": "0s", "end": "1d", "mode": "refuse"}])
    raw["providers"]["isp"]["retry_params"] = {"maximal_queue_lifetime": "0s"}
    result = simulate(build(raw))
    m = result.messages
    original = m[~m["is_dsn"]].iloc[0]
    assert original["status"] == "expired"
    assert original["attempts"] == 1
    dsn = m[m["is_dsn"]]
    assert len(dsn) == 1
    assert dsn.iloc[0]["recipient"] == original["sender"]
    assert dsn.iloc[0]["status"] == "delivered"  # local mailbox of the sender's provider


def test_backup_mx_stores_and_forwards():
    """Primary refusing for 1 h: the backup accepts at once and relays when it is back."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "1h", "mode": "refuse"}])
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "1s"},
    }
    result = simulate(build(raw))
    a = result.attempts.sort_values("started_at")
    sender = a[a["hop"] == "isp"]
    # the refused connection to the primary is on record, passed on to the backup
    assert list(sender["mx_host"]) == ["mx.dest.example", "backup.dest.example"]
    assert list(sender["outcome"]) == ["passed_on", "sent"]
    relay = a[a["hop"] == "backup.dest.example"]
    # the backup's own Postfix queue: refused by the primary at 1.05 s, then its schedule
    # relative to its own arrival time (1.05 s): eligible 301, 601, 1201, 2401 s...
    assert list(relay["outcome"])[-1] == "sent"
    assert (relay["mx_host"] == "mx.dest.example").all()
    delivered = result.messages.iloc[0]["delivered_at"]
    assert delivered > 3600
    assert delivered == pytest.approx(relay["ended_at"].iloc[-1])


def test_unknown_recipient_bounces_with_550_and_dsn():
    raw = one_mx_world()
    raw["senders"]["users"]["messages"] = [
        {"at": "10s", "to": ["nosuchuser1@dest.example", "bob@dest.example"]}
    ]
    result = simulate(build(raw))
    m = result.messages.set_index("recipient")
    assert m.loc["nosuchuser1@dest.example", "status"] == "bounced"
    assert m.loc["nosuchuser1@dest.example", "final_code"] == 550
    assert m.loc["nosuchuser1@dest.example", "final_enhanced_code"] == "5.1.1"
    assert m.loc["bob@dest.example", "status"] == "delivered"
    assert result.summary["dsn"]["messages"] == 1


def test_null_mx_bounces_at_once_with_556():
    raw = one_mx_world()
    raw["domains"]["void.example"] = {"null_mx": True}
    raw["senders"]["users"]["messages"] = [{"at": "0s", "to": ["x@void.example"]}]
    result = simulate(build(raw))
    row = result.messages[~result.messages["is_dsn"]].iloc[0]
    assert row["status"] == "bounced"
    assert (row["final_code"], row["final_enhanced_code"]) == (556, "5.1.10")
    assert (
        result.attempts.iloc[0]["mx_host"] is None
        or str(result.attempts.iloc[0]["mx_host"]) == "nan"
    )


def test_next_mx_after_timeout():
    """Equal-preference hosts: the one that times out costs 30 s, the other takes the mail."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "1d", "mode": "timeout"}])
    raw["domains"]["dest.example"]["mx"].append({"host": "mx2.dest.example", "preference": 10})
    raw["servers"]["mx2.dest.example"] = {"service_time": {"dist": "constant", "mean": "1s"}}
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i}m", "to": ["a@dest.example"]} for i in range(40)
    ]
    result = simulate(build(raw))
    m = result.messages
    assert (m["status"] == "delivered").all()
    latency = m["delivered_at"] - m["created_at"]
    slow = np.isclose(latency, 30 + 0.05 + 1)
    fast = np.isclose(latency, 0.05 + 1)
    assert (slow | fast).all()
    assert slow.any()
    assert fast.any()


def test_implicit_mx_and_local_delivery():
    raw = one_mx_world()
    raw["domains"] = {"dest.example": {}}
    raw["servers"] = {"dest.example": {"service_time": {"dist": "constant", "mean": "1s"}}}
    raw["senders"]["users"]["messages"] = [{"at": "0s", "to": ["a@dest.example", "b@isp.example"]}]
    result = simulate(build(raw))
    m = result.messages.set_index("recipient")
    assert m.loc["a@dest.example", "delivered_at"] == pytest.approx(1.05)
    assert m.loc["b@isp.example", "delivered_at"] == 0.0
    assert m.loc["b@isp.example", "attempts"] == 0


def test_retrieval_follows_polling():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["poll_interval"] = "10m"
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i * 7}m", "to": ["a@dest.example"]} for i in range(20)
    ]
    result = simulate(build(raw))
    m = result.messages
    wait = m["retrieved_at"] - m["delivered_at"]
    assert ((wait >= 0) & (wait < 600)).all()
    # one client polls at a fixed phase: every retrieval lies on the same 10-minute grid
    phase = np.mod(m["retrieved_at"], 600)
    assert np.allclose(phase, phase.iloc[0])


def test_campaigns_alone_send_their_bursts_on_time():
    """A sender with campaigns and no steady rate: ``size`` messages at each start."""
    raw = one_mx_world()
    raw["simulation"]["duration"] = "2h"
    raw["senders"]["users"] = {
        "provider": "isp",
        "count": 3,
        "domains": {"dest.example": 1.0},
        "campaigns": {"every": "1h", "size": 5, "start": "10m"},
    }
    result = simulate(build(raw))
    created = result.messages.drop_duplicates("message_id")["created_at"]
    assert sorted(created) == [600.0] * 5 + [4200.0] * 5


def greylisted_primary_world(backup_greylists: bool = False) -> dict:
    """``dest.example``: a greylisting primary (5 min) and a backup MX that greylists only
    if ``backup_greylists``; one message at t=0."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {"dest": {"greylisting": {"delay": "5m"}}}
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "1s"},
        **({"receiver": "dest"} if backup_greylists else {}),
    }
    return raw


def test_greylisting_primary_delivers_through_the_backup_at_once():
    """Postfix keeps a recipient answered 4xx for the next MX in the same delivery: the
    primary greylists at 0.05 s, the backup takes the mail at 1.1 s (0.05 s + 0.05 s set-up,
    1 s service). The primary trusts its own backup and does not greylist its relay: stored
    at 2.15 s (0.05 s set-up, 1 s service)."""
    result = simulate(build(greylisted_primary_world()))
    a = result.attempts.sort_values(["started_at", "ended_at"])
    first = a[a["hop"] == "isp"]
    assert list(first["mx_host"]) == ["mx.dest.example", "backup.dest.example"]
    assert list(first["outcome"]) == ["passed_on", "sent"]
    assert (list(first["code"]), list(first["enhanced_code"])) == ([450, 250], ["4.2.0", "2.0.0"])
    assert list(first["started_at"]) == pytest.approx([0.0, 0.05])
    assert list(first["ended_at"]) == pytest.approx([0.05, 1.1])
    relay = a[a["hop"] == "backup.dest.example"]
    assert list(relay["outcome"]) == ["sent"]
    assert list(relay["started_at"]) == pytest.approx([1.1])
    row = result.messages.iloc[0]
    assert row["status"] == "delivered"
    assert row["delivered_at"] == pytest.approx(2.15)
    # two attempt rows for the sender's one delivery, one for the backup's queue
    assert row["attempts"] == 3


def test_a_4xx_at_the_last_host_defers():
    """Both MX hosts greylist: the recipient is passed on to the backup in the same
    delivery, is deferred there (the last host), and is delivered at Postfix's 300 s
    scan."""
    result = simulate(build(greylisted_primary_world(backup_greylists=True)))
    a = result.attempts.sort_values(["started_at", "ended_at"])
    first = a[a["hop"] == "isp"]
    assert list(first["mx_host"])[:2] == ["mx.dest.example", "backup.dest.example"]
    assert list(first["outcome"]) == ["passed_on", "deferred", "sent"]
    assert list(first["started_at"]) == pytest.approx([0.0, 0.05, 300.0])
    # the retry goes to the primary, whose triplet has passed its delay: stored at 301.05 s
    assert first.iloc[-1]["mx_host"] == "mx.dest.example"
    assert result.messages.iloc[0]["delivered_at"] == pytest.approx(301.05)


def test_session_limit_stops_before_the_third_host():
    """smtp_mx_session_limit 2: three greylisting hosts of equal preference, the third is
    never tried in one delivery; a failed connection is no session, so with the first host
    refusing connections the two others are both tried."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {"dest": {"greylisting": {"delay": "1h"}}}
    for name in ("mx2.dest.example", "mx3.dest.example"):
        raw["domains"]["dest.example"]["mx"].append({"host": name, "preference": 10})
        raw["servers"][name] = {
            "receiver": "dest",
            "service_time": {"dist": "constant", "mean": "1s"},
        }
    raw["simulation"]["duration"] = "200s"
    result = simulate(build(raw))
    a = result.attempts
    assert list(a["outcome"]) == ["passed_on", "deferred"]
    assert a["mx_host"].nunique() == 2

    raw["servers"]["mx.dest.example"]["outages"] = [{"start": "0s", "end": "1d", "mode": "refuse"}]
    raw["domains"]["dest.example"]["mx"][0]["preference"] = 5
    result = simulate(build(raw))
    a = result.attempts
    # the refused connection (0.05 s) is a row of its own, passed on: no session
    assert list(a["code"]) == [421, 450, 450]
    assert list(a["outcome"]) == ["passed_on", "passed_on", "deferred"]
    assert a["mx_host"].iloc[0] == "mx.dest.example"
    assert set(a["mx_host"].iloc[1:]) == {"mx2.dest.example", "mx3.dest.example"}
    assert list(a["started_at"]) == pytest.approx([0.0, 0.05, 0.1])


def test_backup_without_a_reachable_primary_defers_444(monkeypatch):
    """A backup MX whose primary has no address record defers with Postfix's 4.4.4
    "unable to find primary relay" on its own schedule (from its arrival at 1.05 s)
    instead of bouncing; the sender skips the addressless primary."""
    from mailnet.model import dns, world

    def resolver(*args):
        return dns.Resolver(*args, unresolvable={"mx.dest.example"})

    monkeypatch.setattr(world, "Resolver", resolver)
    raw = one_mx_world()
    raw["simulation"]["duration"] = "1h"
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "1s"},
    }
    result = simulate(build(raw))
    a = result.attempts.sort_values("started_at")
    first = a.iloc[0]
    assert (first["hop"], first["mx_host"]) == ("isp", "backup.dest.example")
    relay = a[a["hop"] == "backup.dest.example"]
    assert (relay["outcome"] == "deferred").all()
    assert (relay["enhanced_code"] == "4.4.4").all()
    assert relay["mx_host"].isna().all()
    assert list(np.floor(relay["started_at"])) == [1, 300, 600, 1200, 2400]
    assert result.messages.iloc[0]["status"] == "in_queue"
