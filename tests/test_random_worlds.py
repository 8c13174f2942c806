"""Invariants under random worlds: Hypothesis builds small valid scenarios (providers,
domains with primary and backup MX hosts, outages, receivers with blocklists, reputation
and greylisting, relays) and every run must keep the model's promises:

- every message and recipient ends in exactly one status, and its fields agree with it;
- nothing is delivered before it was created, nor retrieved before it was delivered;
- a recipient's attempts at one hop are in time order and never overlap, and the provider
  stops trying once the queue lifetime (plus one backoff and one queue scan) is over;
- no queue length is negative and no server has more sessions in use than it has;
- no blocklist listing ends before it starts;
- the same seed gives identical tables.

Examples are derandomized (a fixed sequence, no example database), so every run of the
suite checks the same worlds.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mailnet import simulate
from mailnet.records import STATUSES
from mailnet.scenario import Scenario, Server

LIFETIMES = [1800, 3 * 3600, 5 * 86400]
"""Provider queue lifetimes (seconds): shorter than, about, and far beyond a run."""

MAX_BACKOFF = 4000.0
"""Postfix's maximal_backoff_time (mail-facts.md §1): the most a deferred recipient waits."""

QUEUE_RUN = 300.0
"""Postfix's queue_run_delay (mail-facts.md §1)."""

DURATION = 4 * 3600.0


@st.composite
def server(draw, role="primary", receiver=None):
    table = {
        "sessions": draw(st.integers(1, 4)),
        "backlog": draw(st.sampled_from([0, 2, 10, "unlimited"])),
        "service_time": draw(
            st.sampled_from(
                [
                    {"dist": "constant", "mean": "2s"},
                    {"dist": "exponential", "mean": "5s"},
                    {"dist": "lognormal", "mean": "3s", "sd": "2s"},
                ]
            )
        ),
        "role": role,
    }
    outage = draw(st.sampled_from(["none", "random", "window"]))
    if outage == "random":
        table["outages"] = {
            "mtbf": "2h",
            "mttr": "20m",
            "mode": draw(st.sampled_from(["timeout", "refuse"])),
        }
    elif outage == "window":
        start = draw(st.integers(0, 3)) * 1800
        table["outages"] = [{"start": start, "end": start + 2400, "mode": "refuse"}]
    if receiver is not None:
        table["receiver"] = receiver
    return table


@st.composite
def world(draw):
    """A raw scenario mapping: one or two providers, one to three domains."""
    raw: dict = {
        "simulation": {"duration": DURATION, "seed": draw(st.integers(0, 2**32))},
        "providers": {},
        "senders": {},
        "domains": {},
        "servers": {},
        "receivers": {},
        "blocklists": {},
    }
    if draw(st.booleans()):
        preset = draw(st.sampled_from(["spamcop", "spamhaus-css", "uceprotect"]))
        raw["blocklists"]["bl"] = {"preset": preset}
    receiver = {}
    if draw(st.booleans()):
        receiver["greylisting"] = {"delay": "5m"}
    if draw(st.booleans()):
        receiver["reputation"] = {"throttle_below": 0.9, "reject_below": 0.3}
    if raw["blocklists"]:
        receiver["blocklists"] = {"bl": draw(st.sampled_from(["reject", "defer"]))}
    if receiver:
        raw["receivers"]["recv"] = receiver
    domains = [f"d{i}.example" for i in range(draw(st.integers(1, 3)))]
    for name in domains:
        shared = "recv" if receiver and draw(st.booleans()) else None
        raw["servers"][f"mx.{name}"] = draw(server(receiver=shared))
        mx = [{"host": f"mx.{name}", "preference": 10}]
        if draw(st.booleans()):
            raw["servers"][f"backup.{name}"] = draw(server(role="backup"))
            mx.append({"host": f"backup.{name}", "preference": 20})
        raw["domains"][name] = {"mx": mx, "poll_interval": "10m", "users": 50}
    for p in range(draw(st.integers(1, 2))):
        provider = {
            "ips": [f"198.51.{100 + p}.{i + 1}" for i in range(draw(st.integers(1, 3)))],
            "local_domains": [f"p{p}.example"],
            "retry": "postfix",
            "retry_params": {"maximal_queue_lifetime": draw(st.sampled_from(LIFETIMES))},
        }
        if draw(st.integers(0, 3)) == 0:
            relay = f"relay{p}.example"
            raw["servers"][relay] = {"sessions": 5, "role": "relay"}
            provider["relay_host"] = relay
        raw["providers"][f"prov{p}"] = provider
        weights = {d: draw(st.floats(0.1, 1.0)) for d in domains}
        raw["senders"][f"users{p}"] = {
            "provider": f"prov{p}",
            "count": draw(st.integers(1, 20)),
            "class": draw(st.sampled_from(["ham", "bulk", "spam"])),
            "rate": f"{draw(st.integers(20, 120))}/h",
            "recipients": draw(st.sampled_from([1.0, 1.5])),
            "invalid_recipients": draw(st.sampled_from([0.0, 0.05])),
            "traps": draw(st.sampled_from([0.0, 0.02])),
            "domains": weights,
        }
    return raw


def check_invariants(raw: dict, result) -> None:
    m, a, q = result.messages, result.attempts, result.queues
    # one status per message and recipient, fields agreeing with it
    assert not m.duplicated(["message_id", "recipient"]).any()
    assert m["status"].notna().all()
    assert set(m["status"].unique()) <= set(STATUSES)
    delivered = m["status"] == "delivered"
    assert m.loc[delivered, "delivered_at"].notna().all()
    assert m.loc[~delivered, "delivered_at"].isna().all()
    assert (m.loc[delivered, "delivered_at"] >= m.loc[delivered, "created_at"]).all()
    retrieved = m["retrieved_at"].notna()
    assert (delivered | ~retrieved).all()
    assert (m.loc[retrieved, "retrieved_at"] >= m.loc[retrieved, "delivered_at"]).all()
    # a row's attempts count the connections made for it: not suspended or skipped ones
    connected = ~a["outcome"].isin(("suspended", "skipped"))
    assert int(m["attempts"].sum()) == int(connected.sum())
    # attempts: in time order per recipient and hop, never overlapping
    assert (a["ended_at"] >= a["started_at"]).all()
    ordered = a.sort_values(["message_id", "recipient", "hop", "started_at"], kind="stable")
    same = (
        ordered[["message_id", "recipient", "hop"]].shift()
        == ordered[["message_id", "recipient", "hop"]]
    ).all(axis=1)
    previous_end = ordered["ended_at"].shift()
    assert (ordered.loc[same, "started_at"] >= previous_end[same] - 1e-9).all()
    created = m.set_index(["message_id", "recipient"])["created_at"]
    firsts = a.merge(created.rename("created_at").reset_index(), on=["message_id", "recipient"])
    assert (firsts["started_at"] >= firsts["created_at"] - 1e-9).all()
    # the provider gives up after its queue lifetime
    for name, provider in raw["providers"].items():
        lifetime = provider["retry_params"]["maximal_queue_lifetime"]
        own = firsts[firsts["hop"] == name]
        late = own["started_at"] - own["created_at"] > lifetime + MAX_BACKOFF + QUEUE_RUN
        assert not late.any(), own[late].head()
    # queues and sessions
    assert (q["value"] >= 0).all()
    sessions = q[(q["kind"] == "server") & (q["metric"] == "sessions")]
    for host, group in sessions.groupby("entity", observed=True):
        # a server the scenario does not name (a provider's own MX) has the default capacity
        capacity = raw["servers"].get(host, {}).get("sessions", DEFAULT_SESSIONS)
        assert group["value"].max() <= capacity, host
    listings = result.listings
    if len(listings):
        ended = listings["delisted_at"].notna()
        assert (listings.loc[ended, "delisted_at"] >= listings.loc[ended, "listed_at"]).all()


DEFAULT_SESSIONS = Server.model_fields["sessions"].default

# no shrinking: a failing world is printed as drawn, at once
WORLDS = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


@WORLDS
@given(raw=world())
def test_random_worlds_keep_their_invariants(raw):
    scenario = Scenario.from_dict(raw)
    result = simulate(scenario)
    assert len(result.messages) > 0
    check_invariants(raw, result)


@settings(WORLDS, max_examples=3)
@given(raw=world())
def test_random_worlds_are_deterministic(raw):
    scenario = Scenario.from_dict(raw)
    first, second = simulate(scenario), simulate(scenario)
    for name, table in first.tables().items():
        pd.testing.assert_frame_equal(table, second.tables()[name], obj=name)
    assert first.summary == second.summary
