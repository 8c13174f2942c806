"""The MTA's real behaviour in the model: every retry preset end to end, Postfix's dead
destinations, relays, delay warnings, DNS faults and per-recipient receiver replies."""

from __future__ import annotations

import numpy as np
import pytest

from mailnet import simulate
from mailnet.policies.retry import PRESETS, make_retry_policy, trace_attempts
from tests.conftest import build, one_mx_world


def refusing_world(until="2d", **provider) -> dict:
    raw = one_mx_world(outages=[{"start": "0s", "end": until, "mode": "refuse"}])
    raw["simulation"]["duration"] = "2d"
    raw["providers"]["isp"].update(provider)
    return raw


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_retries_in_the_model_as_its_reference(preset):
    """The MTA's attempts against a refusing MX equal the policy's reference schedule.

    A refused connection fails 0.05 s (the server's connect_time) after the attempt starts.
    """
    result = simulate(build(refusing_world(retry=preset)))
    starts = result.attempts.sort_values("started_at")["started_at"].to_numpy()
    reference = trace_attempts(
        make_retry_policy(preset), failure_delay=0.05, horizon=2 * 86400 - 1
    ).attempts
    assert len(starts) == len(reference) > 3
    assert np.allclose(starts, reference), (starts[:10], reference[:10])


def test_custom_offsets_and_lifetime():
    raw = refusing_world(retry={"offsets": ["5m", "30m", "2h"], "lifetime": "3h"})
    result = simulate(build(raw))
    starts = np.sort(result.attempts["started_at"].to_numpy())
    assert list(starts[:4]) == [0, 300, 1800, 7200]
    row = result.messages[~result.messages["is_dsn"]].iloc[0]
    assert row["status"] == "expired"


def test_dead_destination_gets_no_connection_attempts():
    """Postfix: 4 failed connections from window 5 mark the destination dead for 300 s."""
    raw = refusing_world(until="1h")
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": [f"u{i}@dest.example"]} for i in range(10)
    ]
    result = simulate(build(raw))
    a = result.attempts
    connected = a[a["mx_host"].notna()]
    suspended = a[a["mx_host"].isna()]
    # window 5: five connections at t=0; the fourth failure kills the destination at 0.05 s
    assert (np.isclose(connected["started_at"], 0.0)).sum() == 5
    assert np.isclose(suspended["started_at"], 0.05).sum() == 5
    assert (suspended["enhanced_code"] == "4.4.1").all()
    # dead from 0.05 s to 300.05 s: not one connection in between
    between = connected[(connected["started_at"] > 0.05) & (connected["started_at"] < 300.05)]
    assert between.empty
    # the scan at 300 s finds it still dead: all ten deferred without connecting
    assert np.isclose(suspended["started_at"], 300.0).sum() == 10
    # revived with its window reset to 5: five connections at the 600 s scan
    assert np.isclose(connected["started_at"], 600.0).sum() == 5
    # every message is delivered once the MX is back
    assert (result.messages.loc[~result.messages["is_dsn"], "status"] == "delivered").all()


def test_per_recipient_replies_do_not_throttle():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mailbox_full"] = {"share": 1.0, "mean_duration": "1d"}
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": [f"u{i}@dest.example"]} for i in range(10)
    ]
    result = simulate(build(raw))
    a = result.attempts
    first = a.sort_values("started_at").drop_duplicates("message_id")
    # every attempt got a session (452 is per recipient): no dead destination, no suspension
    assert len(first) == 10
    assert a["session_at"].notna().all()
    assert (first["code"] == 452).all()
    assert (first["enhanced_code"] == "4.2.2").all()
    # each success-free session still widens nothing and shrinks nothing: the first ten
    # attempts all happen within the first two service times
    assert first["started_at"].max() < 2.2


def test_smarthost_relay_hop():
    raw = one_mx_world()
    raw["providers"]["isp"]["relay_host"] = "smarthost.isp.example"
    raw["servers"]["smarthost.isp.example"] = {
        "role": "relay",
        "service_time": {"dist": "constant", "mean": "0.5s"},
    }
    result = simulate(build(raw))
    a = result.attempts.sort_values("started_at")
    assert list(a["hop"]) == ["isp", "smarthost.isp.example"]
    assert list(a["mx_host"]) == ["smarthost.isp.example", "mx.dest.example"]
    # 0.05 + 0.5 s at the smarthost, then 0.05 + 1 s at the MX
    assert result.messages.iloc[0]["delivered_at"] == pytest.approx(1.6)
    assert result.messages.iloc[0]["attempts"] == 2


def test_inbound_relay_in_front_of_final_server():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mx"] = [{"host": "gateway.dest.example"}]
    raw["servers"]["gateway.dest.example"] = {
        "role": "relay",
        "relay_to": "mx.dest.example",
        "service_time": {"dist": "constant", "mean": "2s"},
        "retry": "exim",
    }
    raw["servers"]["mx.dest.example"]["outages"] = [{"start": "0s", "end": "1h", "mode": "refuse"}]
    result = simulate(build(raw))
    a = result.attempts.sort_values("started_at")
    assert a.iloc[0]["hop"] == "isp"
    assert a.iloc[0]["outcome"] == "sent"
    inner = a[a["hop"] == "gateway.dest.example"]
    assert (inner["mx_host"] == "mx.dest.example").all()
    # the gateway retries on Exim's schedule with its -q30m runner, from its own arrival
    reference = trace_attempts(make_retry_policy("exim"), failure_delay=0.05, n=3).attempts
    assert np.allclose(inner["started_at"].to_numpy()[:3] - 2.05, reference, atol=2.1)
    assert inner.iloc[-1]["outcome"] == "sent"
    assert result.messages.iloc[0]["status"] == "delivered"


def test_delay_warning_dsn():
    raw = refusing_world(until="3h", retry_params={"delay_warning_time": "1h"})
    result = simulate(build(raw))
    m = result.messages
    dsn = m[m["is_dsn"]]
    # one "delayed" DSN, at the first failure with age >= 1 h (the 80-minute attempt)
    assert len(dsn) == 1
    assert dsn.iloc[0]["created_at"] == pytest.approx(4800.05)
    assert dsn.iloc[0]["recipient"] == m.loc[~m["is_dsn"], "sender"].iloc[0]
    assert m.loc[~m["is_dsn"], "status"].iloc[0] == "delivered"


@pytest.mark.parametrize(
    ("preset", "warn"), [("sendmail", 4 * 3600), ("exim", 24 * 3600), ("exchange", 4 * 3600)]
)
def test_default_delay_warnings(preset, warn):
    """The warning goes out when the first failure at or after the warning age is handled."""
    result = simulate(build(refusing_world(retry=preset)))
    m = result.messages
    dsn = m[m["is_dsn"]]
    assert len(dsn) == 1
    ends = np.sort(result.attempts["ended_at"].to_numpy())
    expected = ends[ends >= warn][0]
    assert dsn.iloc[0]["created_at"] == pytest.approx(expected)


def test_dns_fault_window_defers_and_nxdomain_window_bounces():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["dns_faults"] = [{"start": "0s", "end": "1s"}]
    result = simulate(build(raw))
    first = result.attempts.sort_values("started_at").iloc[0]
    assert first["enhanced_code"] == "4.4.3"
    assert (result.messages["status"] == "delivered").all()

    raw = one_mx_world()
    raw["domains"]["dest.example"]["dns_faults"] = [
        {"start": "0s", "end": "1d", "answer": "nxdomain"}
    ]
    result = simulate(build(raw))
    row = result.messages[~result.messages["is_dsn"]].iloc[0]
    assert (row["status"], row["final_enhanced_code"]) == ("bounced", "5.1.2")


def test_recipient_rate_limit_answers_450_421():
    raw = one_mx_world(recipient_rate_limit="1/h", recipient_burst=2)
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i * 10}s", "to": ["alice@dest.example"]} for i in range(5)
    ]
    result = simulate(build(raw))
    first = result.attempts.sort_values("started_at").drop_duplicates("message_id")
    assert list(first["code"]) == [250, 250, 450, 450, 450]
    assert set(first["enhanced_code"][2:]) == {"4.2.1"}
    assert (result.messages["status"] == "delivered").all()


def test_imap_push_retrieves_at_once():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["retrieval"] = "imap"
    result = simulate(build(raw))
    row = result.messages.iloc[0]
    assert row["retrieved_at"] == row["delivered_at"]


def test_session_limit_one_keeps_a_4xx_for_the_next_attempt():
    """smtp_mx_session_limit = 1: the greylisting primary is the final host, so the
    recipient is deferred there and the backup is never tried in that delivery."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {"dest": {"greylisting": {"delay": "5m"}}}
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {"role": "backup"}
    raw["providers"]["isp"]["smtp_mx_session_limit"] = 1
    result = simulate(build(raw))
    a = result.attempts.sort_values("started_at")
    assert list(a["mx_host"]) == ["mx.dest.example", "mx.dest.example"]
    assert list(a["outcome"]) == ["deferred", "sent"]
    assert (a["hop"] == "isp").all()


def greylisting_primary_with_backup() -> dict:
    """A greylisting primary (5 min) and a backup MX that does not greylist (0.5 s)."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {"dest": {"greylisting": {"delay": "5m"}}}
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "0.5s"},
    }
    return raw


def test_a_4xx_kept_for_the_next_host_is_passed_on_not_deferred():
    """The primary's 450 at a host that is not the final one keeps the recipient for the
    backup in the same delivery: outcome ``passed_on``, and no deferral in the metrics;
    with one session allowed the same 450 is the final host's, and a deferral."""
    result = simulate(build(greylisting_primary_with_backup()))
    a = result.attempts[result.attempts["hop"] == "isp"].sort_values("started_at")
    assert list(zip(a["mx_host"], a["started_at"], a["ended_at"], a["outcome"], strict=True)) == [
        ("mx.dest.example", 0.0, 0.05, "passed_on"),
        ("backup.dest.example", 0.05, 0.6, "sent"),
    ]
    assert result.summary["deferral_rate"] == 0.0
    assert result.summary["legitimate"]["deferred_then_delivered"] == 0

    raw = greylisting_primary_with_backup()
    raw["providers"]["isp"]["smtp_mx_session_limit"] = 1
    result = simulate(build(raw))
    assert list(result.attempts.sort_values("started_at")["outcome"]) == ["deferred", "sent"]
    assert result.summary["deferral_rate"] == 1.0
    assert result.summary["legitimate"]["deferred_then_delivered"] == 1
