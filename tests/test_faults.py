"""Faults that last and smaller truths of the mail path: full mailboxes and DNS faults as
episodes, POP and the spam folder, suspended deferrals, delay warnings per hop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mailnet import simulate
from mailnet.errors import ScenarioError
from mailnet.policies.episodes import Episodes, Windows, stream_key
from mailnet.policies.retry import make_retry_policy, trace_attempts
from mailnet.randomness import RandomStreams
from mailnet.scenario import Scenario
from tests.conftest import build, one_mx_world

H = 3600.0
DONE = 1.05  # the MX's connect_time 0.05 s plus its constant 1 s service time


def full_alice(**retry_params) -> dict:
    """alice's mailbox is full from 0 to 6 h; bob's never is. One message to each at 0."""
    raw = one_mx_world()
    raw["simulation"]["duration"] = "2d"
    raw["domains"]["dest.example"]["mailbox_full"] = [
        {"start": "0s", "end": "6h", "mailboxes": ["alice"]}
    ]
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": ["alice@dest.example"]},
        {"at": "0s", "to": ["bob@dest.example"]},
    ]
    raw["providers"]["isp"]["retry_params"] = retry_params
    return raw


def test_a_mailbox_full_for_six_hours_meets_every_retry_then_takes_the_mail():
    result = simulate(build(full_alice()))
    a = result.attempts[result.attempts["recipient"] == "alice@dest.example"]
    a = a.sort_values("started_at")
    # Postfix's schedule for a message failing 1.05 s into each attempt, until the first
    # attempt whose DATA ends at or after 6 h: the mailbox has emptied
    trace = trace_attempts(make_retry_policy("postfix"), failure_delay=DONE, horizon=12 * H)
    full = [t for t in trace.attempts if t + DONE < 6 * H]
    reference = trace.attempts[: len(full) + 1]
    assert reference[-1] == 25500.0  # 21300 + 4000 s (maximal_backoff_time) + 200 s (scan)
    assert list(a["started_at"]) == pytest.approx(reference)
    assert (a["enhanced_code"].iloc[:-1] == "4.2.2").all()
    assert (a["outcome"].iloc[:-1] == "deferred").all()
    assert a["session_at"].notna().all()  # 452 is per recipient: every attempt got a session
    assert a["outcome"].iloc[-1] == "sent"
    m = result.messages.set_index("recipient")
    assert m.loc["alice@dest.example", "delivered_at"] == pytest.approx(25500.0 + DONE)
    assert m.loc["alice@dest.example", "attempts"] == len(reference)
    # the other mailbox of the same domain was never full
    assert m.loc["bob@dest.example", "delivered_at"] == pytest.approx(DONE)


def test_a_mailbox_full_past_the_queue_lifetime_expires_with_452():
    result = simulate(build(full_alice(maximal_queue_lifetime="2h")))
    m = result.messages
    alice = m[(m["recipient"] == "alice@dest.example") & ~m["is_dsn"]].iloc[0]
    assert (alice["status"], alice["final_enhanced_code"]) == ("expired", "4.2.2")
    a = result.attempts[result.attempts["recipient"] == "alice@dest.example"]
    # expired at the first failure at or past 2 h of age (Postfix: checked after a failure)
    ends = np.sort(a["ended_at"].to_numpy())
    assert ends[-1] >= 2 * H > ends[-2]
    dsn = m[m["is_dsn"]]
    assert list(dsn["dsn_kind"].astype(str)) == ["expired"]
    assert dsn.iloc[0]["created_at"] == pytest.approx(ends[-1])


def episode_world(n: int, **domain) -> dict:
    """``n`` messages, one every 30 s, each to its own mailbox of dest.example."""
    raw = one_mx_world()
    raw["simulation"]["duration"] = "2d"
    raw["domains"]["dest.example"].update(domain)
    raw["senders"]["users"]["messages"] = [
        {"at": f"{30 * i}s", "to": [f"u{i}@dest.example"]} for i in range(n)
    ]
    raw["providers"]["isp"]["destination_concurrency_failed_cohort_limit"] = 1e9
    return raw


def test_random_full_mailboxes_are_episodes_each_retry_meets():
    """Every reply agrees with the mailbox's own episodes (drawn again here from the seed
    and the address alone), and the share full at the first attempt is ``share``."""
    n, share = 1500, 0.2
    raw = episode_world(n, mailbox_full={"share": share, "mean_duration": "6h"})
    result = simulate(build(raw))
    key = stream_key(RandomStreams(1).get("mailboxes"), "dest.example")
    episodes = Episodes(share, 6 * H, key)
    a = result.attempts
    judged = a["started_at"] + DONE  # fullness is judged after DATA
    full = [
        any(s <= t < e for s, e in episodes.windows(r, t + 1))
        for r, t in zip(a["recipient"].astype(str), judged, strict=True)
    ]
    assert list(a["enhanced_code"] == "4.2.2") == full
    retried = a[a["recipient"].duplicated(keep=False)]
    assert (retried.groupby("recipient", observed=True).size() > 2).any()  # full across retries
    first = a.drop_duplicates("recipient")
    p = (first["enhanced_code"] == "4.2.2").mean()
    # stationary from t=0: each mailbox is full at its first attempt with probability
    # `share`, independently; binomial sd = sqrt(0.2 * 0.8 / 1500) = 0.0103, 4 sd
    assert abs(p - share) < 4 * math.sqrt(share * (1 - share) / n)
    assert (result.messages["status"] == "delivered").all()


def test_a_dns_fault_window_defers_every_lookup_inside_it_and_none_outside():
    raw = episode_world(600, dns_faults=[{"start": "1h", "end": "3h"}])
    result = simulate(build(raw))
    a = result.attempts
    looked_up = a[a["outcome"] != "suspended"]
    inside = (looked_up["started_at"] >= H) & (looked_up["started_at"] < 3 * H)
    assert inside.sum() > 100
    assert (looked_up.loc[inside, "enhanced_code"] == "4.4.3").all()
    assert (looked_up.loc[inside, "mx_host"].isna()).all()
    assert not (looked_up.loc[~inside, "enhanced_code"] == "4.4.3").any()
    assert (result.messages["status"] == "delivered").all()


def test_random_dns_fault_episodes_never_bounce_an_existing_domain():
    """Lookups fail exactly inside the domain's episodes (drawn again here from the seed
    and the domain's name), and only with SERVFAIL: nothing bounces."""
    raw = episode_world(600, dns_faults={"mtbf": "2h", "mttr": "30m"})
    result = simulate(build(raw))
    key = stream_key(RandomStreams(1).get("dns.faults"), "dest.example")
    windows = Episodes(0.2, 0.5 * H, key).windows("dest.example", 2 * 86400)
    assert len(windows) > 1
    a = result.attempts
    looked_up = a[a["outcome"] != "suspended"]
    failed = [any(s <= t < e for s, e in windows) for t in looked_up["started_at"]]
    assert any(failed)
    assert list(looked_up["enhanced_code"] == "4.4.3") == failed
    assert not (a["code"] >= 500).any()
    assert (result.messages["status"] == "delivered").all()


def test_nxdomain_bounces_only_where_the_scenario_breaks_the_domain():
    raw = episode_world(20, dns_faults=[{"start": "5m", "end": "1d", "answer": "nxdomain"}])
    m = simulate(build(raw)).messages
    mail = m[~m["is_dsn"]].set_index("recipient")
    assert (mail.loc[[f"u{i}@dest.example" for i in range(10)], "status"] == "delivered").all()
    late = mail.loc[[f"u{i}@dest.example" for i in range(10, 20)]]
    assert (late["status"] == "bounced").all()
    assert (late["final_enhanced_code"] == "5.1.2").all()


@pytest.mark.parametrize(
    ("where", "key", "replacement"),
    [
        ("domains", "dns_nxdomain", 'answer = "nxdomain"'),
        ("domains", "dns_tempfail", "dns_faults = {"),
        ("servers", "mailbox_full", "[domains.NAME] mailbox_full"),
    ],
)
def test_the_old_per_event_keys_are_refused_naming_the_replacement(where, key, replacement):
    raw = one_mx_world()
    section = raw[where]["dest.example" if where == "domains" else "mx.dest.example"]
    section[key] = 0.0  # off, as resolved scenarios of earlier versions wrote it
    Scenario.from_dict(raw)
    section[key] = 0.3
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(raw, source="s.toml")
    text = str(err.value)
    assert text.startswith(f"s.toml: {where}.")
    assert f"{key} is replaced" in text
    assert replacement in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"share": 0, "mean_duration": "6h"}, "greater than 0"),
        ({"share": 0.1, "mean_duration": "0s"}, "positive"),
        ([{"start": "2h", "end": "1h"}], "end must come after start"),
        ([], "at least 1"),
    ],
)
def test_mailbox_full_is_validated(value, problem):
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mailbox_full"] = value
    with pytest.raises(ScenarioError, match=problem) as err:
        Scenario.from_dict(raw, source="s.toml")
    assert '"dest.example".mailbox_full' in str(err.value)


def test_dns_fault_windows_may_not_overlap():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["dns_faults"] = [
        {"start": "1h", "end": "3h"},
        {"start": "2h", "end": "4h", "answer": "nxdomain"},
    ]
    with pytest.raises(ScenarioError, match="overlap"):
        Scenario.from_dict(raw, source="s.toml")


def test_episodes_keep_their_share_and_mean_duration():
    """Over 400 mailboxes and 400 days, the time share full and the mean full period
    match ``share`` and ``mean_duration`` (tolerances from the number of periods)."""
    share, mean = 0.25, 6 * H
    episodes = Episodes(share, mean, b"k" * 16)
    horizon = 400 * 86400.0
    lengths = []
    for i in range(400):
        for start, end in episodes.windows(f"u{i}@d", horizon):
            lengths.append(min(end, horizon) - start)
    lengths = np.array(lengths)
    n = len(lengths)
    assert n > 100_000
    # exponential periods: the mean of n has sd mean / sqrt(n); 4 sd
    complete = lengths[:-1]
    assert abs(complete.mean() - mean) < 4 * mean / math.sqrt(n)
    # the time share full: each on/off cycle (mean 24 h) is independent; 400 x 400 cycles
    assert abs(lengths.sum() / (400 * horizon) - share) < 0.01
    # lazily advanced state agrees with the windows, and the key alone fixes them
    again = Episodes(share, mean, b"k" * 16)
    for t in np.linspace(0, 30 * 86400, 200):
        assert again.on("u7@d", t) == any(s <= t < e for s, e in episodes.windows("u7@d", t + 1))
    assert Episodes(share, mean, b"x" * 16).windows("u7@d", horizon) != episodes.windows(
        "u7@d", horizon
    )
    assert Windows([(0.0, 10.0, frozenset({"a"})), (5.0, 20.0, None)]).on("b", 7.0)
    assert not Windows([(0.0, 10.0, frozenset({"a"}))]).on("b", 7.0)


def filtered_world(retrieval: str) -> dict:
    """A ham and a spam message to dest.example, whose filter never errs: the ham goes to
    the inbox, the spam to the spam folder."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {
        "dest": {"filter": {"fp_base": 0, "fn_base": 0, "fp_worst": 0, "fn_worst": 0}}
    }
    raw["domains"]["dest.example"]["retrieval"] = retrieval
    raw["senders"]["users"]["messages"] = [{"at": "0s", "to": ["alice@dest.example"]}]
    raw["senders"]["spammer"] = {
        "provider": "isp",
        "count": 1,
        "class": "spam",
        "messages": [{"at": "0s", "to": ["bob@dest.example"]}],
    }
    return raw


def test_pop_fetches_the_inbox_only_and_imap_the_spam_folder_too():
    pop = simulate(build(filtered_world("pop"))).messages.set_index("recipient")
    assert pop.loc["alice@dest.example", "folder"] == "inbox"
    assert pop.loc["bob@dest.example", "folder"] == "spam"
    assert pop.loc["alice@dest.example", "retrieved_at"] >= DONE
    assert math.isnan(pop.loc["bob@dest.example", "retrieved_at"])
    assert pop.loc["bob@dest.example", "status"] == "delivered"
    imap = simulate(build(filtered_world("imap"))).messages.set_index("recipient")
    assert imap.loc["bob@dest.example", "folder"] == "spam"
    assert imap.loc["bob@dest.example", "retrieved_at"] == pytest.approx(DONE)


def test_suspended_deferrals_are_their_own_outcome_and_no_connection():
    """Postfix's dead destination (test_mta_behaviour): deferrals without a connection
    are ``suspended``, and neither the rows' attempts nor the server's connections count
    them."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "1h", "mode": "refuse"}])
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": [f"u{i}@dest.example"]} for i in range(10)
    ]
    result = simulate(build(raw))
    a = result.attempts
    suspended = a[a["outcome"] == "suspended"]
    # 5 when the destination died at 0.05 s, all 10 at the 300 s scan, and more later
    assert list(suspended["started_at"][:15]) == [0.05] * 5 + [300.0] * 10
    assert suspended["mx_host"].isna().all()
    assert (suspended["enhanced_code"] == "4.4.1").all()
    assert suspended["reply"].astype(str).str.startswith("delivery temporarily suspended").all()
    connected = a[a["outcome"] != "suspended"]
    assert connected["mx_host"].notna().all()
    m = result.messages
    per_row = connected.groupby("recipient", observed=True).size()
    assert (m.set_index("recipient")["attempts"] == per_row).all()
    s = result.summary
    assert s["suspended_attempts"] == len(suspended)
    assert s["attempts"] == len(connected)
    assert s["attempts_per_remote_recipient"] == pytest.approx(len(connected) / 10)
    assert s["servers"]["mx.dest.example"]["connections"] == len(
        connected.drop_duplicates(["message_id", "started_at"])
    )
    assert s["deferral_rate"] == 1.0


def test_delay_warning_counts_from_the_arrival_at_the_relay_hop():
    """The smarthost accepts the mail late (the provider retried for 2.5 h); its own
    delay warning (1 h) counts from then, not from the message's creation."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "10h", "mode": "refuse"}])
    raw["providers"]["isp"]["relay_host"] = "smarthost.isp.example"
    raw["servers"]["smarthost.isp.example"] = {
        "role": "relay",
        "service_time": {"dist": "constant", "mean": "1s"},
        "outages": [{"start": "0s", "end": "2h", "mode": "refuse"}],
        "retry_params": {"delay_warning_time": "1h"},
    }
    result = simulate(build(raw))
    a = result.attempts
    handed = a[(a["hop"] == "isp") & (a["outcome"] == "sent")]
    arrival = float(handed["ended_at"].iloc[0])
    assert arrival > 2 * H
    relay = a[a["hop"] == "smarthost.isp.example"].sort_values("ended_at")
    failures = relay.loc[relay["outcome"] != "sent", "ended_at"].to_numpy()
    assert failures[0] - arrival < H  # the old clock (age since creation) warned here
    m = result.messages
    dsn = m[m["is_dsn"]]
    assert list(dsn["dsn_kind"].astype(str)) == ["delayed"]
    expected = failures[failures - arrival >= H][0]
    assert dsn.iloc[0]["created_at"] == pytest.approx(expected)


def test_a_pop_clients_poll_times_do_not_depend_on_other_mail():
    """The poll phase is keyed by the mailbox: more mail to others, or spam filed away,
    leaves alice's retrieval time as it was."""
    alone = simulate(build(filtered_world("pop"))).messages.set_index("recipient")
    raw = filtered_world("pop")
    raw["senders"]["spammer"]["messages"] += [
        {"at": f"{i}s", "to": [f"u{i}@dest.example"]} for i in range(50)
    ]
    crowded = simulate(build(raw)).messages
    alice = crowded[crowded["recipient"] == "alice@dest.example"].iloc[0]
    assert alice["retrieved_at"] == alone.loc["alice@dest.example", "retrieved_at"]
    assert alice["retrieved_at"] - alice["delivered_at"] < 600  # the default poll_interval
