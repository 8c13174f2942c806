"""Each preset's own SMTP client end to end, as exact timelines: Exim's per-host retry
records, qmail's tcpto and one recipient per delivery, Sendmail's host status cache,
Exchange's next-hop queue in retry and per-domain connections, and relays with their
own preset's client."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mailnet import simulate
from mailnet.policies.retry import PRESETS, make_retry_policy
from mailnet.policies.retry.client import (
    POSTFIX_CONNECT_TIMEOUT,
    POSTFIX_MX_ADDRESS_LIMIT,
    POSTFIX_MX_SESSION_LIMIT,
)
from mailnet.scenario import Provider
from tests.conftest import build, one_mx_world

DEAD = [{"start": "0s", "end": "1d", "mode": "timeout"}]
"""The primary drops every SYN for the whole run."""


def world(retry: str, at: list[str], backup: bool = True, **provider) -> dict:
    """``isp`` (preset ``retry``) sends one message per time in ``at``; the primary MX
    times out, a backup MX (preference 20) answers at once unless ``backup`` is false."""
    raw = one_mx_world(outages=DEAD, service_time={"dist": "constant", "mean": "1s"})
    raw["simulation"]["duration"] = "6h"
    raw["providers"]["isp"].update(retry=retry, **provider)
    raw["senders"]["users"]["messages"] = [
        {"at": t, "to": [f"u{i}@dest.example"]} for i, t in enumerate(at)
    ]
    if backup:
        raw["domains"]["dest.example"]["mx"].append(
            {"host": "backup.dest.example", "preference": 20}
        )
        raw["servers"]["backup.dest.example"] = {
            "role": "backup",
            "service_time": {"dist": "constant", "mean": "1s"},
        }
    return raw


def sender_rows(raw: dict) -> pd.DataFrame:
    """The sending hop's attempt rows, in order of start."""
    a = simulate(build(raw)).attempts
    return a[a["hop"] == "isp"].sort_values(["started_at", "message_id"]).reset_index(drop=True)


def timeline(rows: pd.DataFrame) -> list[tuple[str, float, str, str]]:
    """(recipient, start, host or "-", outcome) per row."""
    hosts = rows["mx_host"].astype(object).where(rows["mx_host"].notna(), "-")
    return [
        (r.split("@")[0], float(t), h, o)
        for r, t, h, o in zip(
            rows["recipient"], rows["started_at"], hosts, rows["outcome"], strict=True
        )
    ]


def test_postfix_client_is_the_provider_defaults():
    """The postfix preset's client is exactly what ``[providers.NAME]`` defaults to."""
    fields = Provider.model_fields
    assert fields["smtp_connect_timeout"].default == POSTFIX_CONNECT_TIMEOUT
    assert fields["smtp_mx_address_limit"].default == POSTFIX_MX_ADDRESS_LIMIT
    assert fields["smtp_mx_session_limit"].default == POSTFIX_MX_SESSION_LIMIT
    client = make_retry_policy("postfix").client()
    assert (client.concurrency, client.memory) == ("postfix", "none")


def test_exim_skips_a_failing_primary_for_the_next_message():
    """Exim: the primary's 5 min connect timeout writes a host retry record (next try
    15 min later, F,2h,15m); a message in between goes straight to the backup; the one
    after the retry time tries the primary again."""
    rows = sender_rows(world("exim", ["0s", "10m", "22m"]))
    assert timeline(rows) == [
        ("u0", 0.0, "mx.dest.example", "passed_on"),  # 300 s on the primary
        ("u0", 300.0, "backup.dest.example", "sent"),
        ("u1", 600.0, "backup.dest.example", "sent"),  # primary skipped: no wait
        ("u2", 1320.0, "mx.dest.example", "passed_on"),  # retry time 1200 s passed
        ("u2", 1620.0, "backup.dest.example", "sent"),
    ]
    assert list(rows["ended_at"]) == [300.0, 301.05, 601.05, 1620.0, 1621.05]


def test_exim_with_every_host_held_waits_for_the_retry_time():
    """One MX that times out: the second message makes no connection (``skipped``, Exim's
    -54 deferral) and waits for the host's retry time, taken by the next -q30m run."""
    rows = sender_rows(world("exim", ["0s", "10m"], backup=False))
    assert timeline(rows)[:4] == [
        ("u0", 0.0, "mx.dest.example", "deferred"),
        ("u1", 600.0, "-", "skipped"),
        ("u0", 1800.0, "mx.dest.example", "deferred"),
        ("u1", 1800.0, "mx.dest.example", "deferred"),
    ]
    assert rows.loc[0, "ended_at"] == 300.0
    skipped = rows.loc[1]
    assert (skipped["code"], skipped["ended_at"]) == (451, 600.0)
    assert skipped["reply"] == "retry time not reached for any host for 'dest.example'"


def test_qmail_tcpto_skips_an_address_after_two_timeouts_for_an_hour():
    """qmail: connect timeouts at 60 s and 460 s (>= 120 s apart) mark the address, which
    is then skipped without a connection until 460 + 3840 = 4300 s, for every message;
    each later timeout marks it again for 3840 s. Tries follow each message's own
    (20k)^2 schedule (the second message's from 2000 s)."""
    rows = sender_rows(world("qmail", ["0s", "2000s"], backup=False))
    mx = "mx.dest.example"
    assert timeline(rows)[:13] == [
        ("u0", 0.0, mx, "deferred"),  # timeout at 60 s: counted once
        ("u0", 400.0, mx, "deferred"),  # timeout at 460 s: marked until 4300 s
        ("u0", 1600.0, "-", "skipped"),
        ("u1", 2000.0, "-", "skipped"),
        ("u1", 2400.0, "-", "skipped"),
        ("u0", 3600.0, "-", "skipped"),
        ("u1", 3600.0, "-", "skipped"),
        ("u1", 5600.0, mx, "deferred"),  # past 4300 s; timeout at 5660: until 9500 s
        ("u0", 6400.0, "-", "skipped"),
        ("u1", 8400.0, "-", "skipped"),
        ("u0", 10000.0, mx, "deferred"),  # timeout at 10060: until 13900 s
        ("u1", 12000.0, "-", "skipped"),
        ("u0", 14400.0, mx, "deferred"),
    ]
    assert rows.loc[0, "ended_at"] == 60.0  # timeoutconnect
    assert (rows.loc[2, "code"], rows.loc[2, "ended_at"]) == (421, 1600.0)
    assert "establish an SMTP connection" in str(rows.loc[2, "reply"])


def test_qmail_sends_one_recipient_per_delivery():
    """qmail-send starts one qmail-remote per recipient: with one session slot the second
    recipient's delivery waits for the first; Postfix sends both in one session."""
    raw = one_mx_world(sessions=1, backlog=10, service_time={"dist": "constant", "mean": "1s"})
    raw["senders"]["users"]["messages"] = [{"at": "0s", "to": ["a@dest.example", "b@dest.example"]}]
    delivered = {}
    for preset in ("postfix", "qmail"):
        raw["providers"]["isp"]["retry"] = preset
        m = simulate(build(raw)).messages
        delivered[preset] = sorted(m["delivered_at"])
    assert delivered["postfix"] == [1.05, 1.05]
    assert delivered["qmail"] == [1.05, 2.05]


def test_sendmail_host_status_cache_skips_the_primary_for_30_minutes():
    """Sendmail: the primary's failed connection (127 s, the kernel's connect timeout) is
    cached for Timeout.hoststatus (30 min): a message at 10 min goes straight to the
    backup, one at 35 min tries the primary again."""
    rows = sender_rows(world("sendmail", ["0s", "10m", "35m"]))
    assert timeline(rows) == [
        ("u0", 0.0, "mx.dest.example", "passed_on"),
        ("u0", 127.0, "backup.dest.example", "sent"),
        ("u1", 600.0, "backup.dest.example", "sent"),
        ("u2", 2100.0, "mx.dest.example", "passed_on"),
        ("u2", 2227.0, "backup.dest.example", "sent"),
    ]


def test_sendmail_cached_failure_defers_until_the_cache_is_stale():
    """One MX: each failure is cached 30 min from its end (127 s after the start), so the
    next -q30m run skips the host (a deferral without a connection, with the cached
    reply) and the one after connects: every other run tries the host."""
    rows = sender_rows(world("sendmail", ["0s"], backup=False))
    assert timeline(rows)[:5] == [
        ("u0", 0.0, "mx.dest.example", "deferred"),
        ("u0", 1800.0, "-", "skipped"),
        ("u0", 3600.0, "mx.dest.example", "deferred"),
        ("u0", 5400.0, "-", "skipped"),
        ("u0", 7200.0, "mx.dest.example", "deferred"),
    ]
    assert rows.loc[1, "reply"] == "Connection timed out with mx.dest.example"


def test_exchange_next_hop_queue_in_retry():
    """Exchange: a failed connection (30 s) puts dest.example's queue in retry for
    TransientFailureRetryInterval (5 min): a message at 100 s waits without a connection
    and both go at 330 s; after six failures the hold is 10 min."""
    rows = sender_rows(world("exchange", ["0s", "100s"], backup=False))
    assert timeline(rows)[:4] == [
        ("u0", 0.0, "mx.dest.example", "deferred"),
        ("u1", 100.0, "-", "skipped"),
        ("u0", 330.0, "mx.dest.example", "deferred"),
        ("u1", 330.0, "mx.dest.example", "deferred"),
    ]
    assert rows.loc[1, "enhanced_code"] == "4.4.0"
    connected = rows[rows["recipient"] == "u0@dest.example"]["started_at"].to_numpy()
    # five more quick retries 5 min (+30 s) apart, then the message's 15 min interval
    assert list(connected[:8]) == [0, 330, 660, 990, 1320, 1650, 1980, 2910]


def test_exchange_opens_twenty_connections_per_domain_at_once():
    """Exchange has no slow start: MaxPerDomainOutboundConnections (20) at once, where
    Postfix's window starts at 5."""
    raw = one_mx_world(sessions=50, backlog=50, service_time={"dist": "constant", "mean": "10s"})
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": [f"u{i}@dest.example"]} for i in range(30)
    ]
    at_once = {}
    for preset in ("postfix", "exchange"):
        raw["providers"]["isp"]["retry"] = preset
        a = simulate(build(raw)).attempts
        at_once[preset] = int(np.isclose(a["started_at"], 0.0).sum())
    assert at_once == {"postfix": 5, "exchange": 20}


def test_backup_relays_with_its_own_presets_client():
    """A backup MX with the exim preset waits Exim's 5 min on the dead primary."""
    raw = world("postfix", ["0s"])
    raw["domains"]["dest.example"]["mx"][0]["host"] = "mx.dest.example"
    raw["servers"]["backup.dest.example"]["retry"] = "exim"
    a = simulate(build(raw)).attempts
    relay = a[a["hop"] == "backup.dest.example"].sort_values("started_at")
    first = relay.iloc[0]
    assert first["ended_at"] - first["started_at"] == pytest.approx(300.0)


def test_a_client_key_the_provider_sets_wins_over_the_preset():
    rows = sender_rows(world("exim", ["0s"], smtp_connect_timeout="30s"))
    assert (rows.loc[0, "ended_at"], rows.loc[1, "started_at"]) == (30.0, 30.0)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_names_its_client(preset):
    client = make_retry_policy(preset).client()
    assert client.connect_timeout > 0
    assert client.describe().startswith(client.mta)


def test_postfix_records_the_failed_connection_before_the_backup():
    """Postfix: the primary drops the SYN for smtp_connect_timeout (30 s); the recipient
    is passed on to the backup in the same delivery, and the failed connection keeps a
    row of its own (no session) that the mail log reads; the row counts as an attempt."""
    raw = world("postfix", ["0s"])
    result = simulate(build(raw))
    rows = result.attempts[result.attempts["hop"] == "isp"].sort_values("started_at")
    assert timeline(rows) == [
        ("u0", 0.0, "mx.dest.example", "passed_on"),
        ("u0", 30.0, "backup.dest.example", "sent"),
    ]
    first = rows.iloc[0]
    assert (first["ended_at"], first["code"], first["enhanced_code"]) == (30.0, 421, "4.4.1")
    assert np.isnan(first["session_at"])
    assert list(rows["ended_at"]) == [30.0, 31.05]
    assert result.summary["legitimate"]["deferred_then_delivered"] == 0
