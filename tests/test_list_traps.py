"""The lists' own trap networks, removal requests and quarantine, end to end.

A spammer's mail reaches each list's traps whatever the scenario's receivers do with it,
so a listing lasts while the spam goes on and lapses a fixed time after it stops; a
provider's removal request ends a listing early, and the next trap hit relists; a
quarantine moves the customer behind a listing to addresses of its own.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import simpy

from mailnet.errors import ScenarioError
from mailnet.model.world import World
from mailnet.randomness import RandomStreams
from mailnet.records import EventLog
from mailnet.scenario import Scenario

HOUR = 3600.0
DAY = 86400.0
IPS = ["198.51.100.1", "198.51.100.2"]


def world(spam_every_h: int, spam_until_h: int, **lists) -> dict:
    """One provider, one spammer mailing ``u1@dest.example`` every ``spam_every_h`` hours
    up to ``spam_until_h``, every one of its messages also reaching list ``bl``'s traps;
    the receiver rejects clients listed on ``bl``."""
    times = range(0, spam_until_h + 1, spam_every_h)
    return {
        "simulation": {"duration": "4d", "seed": 1},
        "providers": {
            "isp": {
                "ips": list(IPS),
                "local_domains": ["isp.example"],
                "ip_selection": "sender-hash",
            }
        },
        "senders": {
            "spam": {
                "provider": "isp",
                "class": "spam",
                "retries": False,
                "messages": [{"at": f"{h}h", "to": ["u1@dest.example"]} for h in times],
            },
            "ham": {"provider": "isp", "class": "ham", "messages": []},
        },
        "blocklists": {"bl": {"trap_hits": 1, "duration": "1d", "traps": {"spam": 1.0}, **lists}},
        "receivers": {"dest": {"blocklists": {"bl": "reject"}}},
        "domains": {"dest.example": {"mx": [{"host": "mx.dest.example"}]}},
        "servers": {
            "mx.dest.example": {
                "receiver": "dest",
                "service_time": {"dist": "constant", "mean": "1s"},
            }
        },
    }


def run(raw: dict) -> SimpleNamespace:
    """The world after the run, with its messages, attempts and listings tables."""
    scenario = Scenario.from_dict(raw)
    env, log = simpy.Environment(), EventLog()
    world = World(scenario, env, RandomStreams(scenario.simulation.seed), log)
    env.run(until=scenario.simulation.duration)
    return SimpleNamespace(
        world=world,
        messages=log.messages.frame(),
        attempts=log.attempts.frame(),
        listings=world.blocklists.frame(scenario.simulation.duration),
    )


def test_listing_lasts_while_the_spam_goes_on_though_every_receiver_rejects_it():
    result = run(world(6, 48))
    listings = result.listings
    (listing,) = listings.itertuples()
    # listed on the first message's trap hit, extended by every later one although the
    # receiver refused all spam after the listing; delisted 1 d after the last (48 h)
    assert (listing.scope, listing.trigger, listing.traps) == ("ip", "trap", 1.0)
    assert listing.listed_at == pytest.approx(0.0, abs=1.0)
    assert listing.delisted_at == pytest.approx(48 * HOUR + DAY, abs=1.0)
    assert listing.ended == "expiry"
    spam = result.messages[result.messages["sender_class"] == "spam"]
    assert (spam["status"] == "bounced").all()  # the first too: its trap hit came first
    assert len(result.world.trap_feed.hits) == len(spam)


def test_removal_request_ends_a_listing_and_the_next_hit_relists():
    raw = world(12, 72, removal_delay="1h", removal_limit=1)
    raw["providers"]["isp"]["removal_requests"] = {"after": "2h"}
    result = run(raw)
    rows = result.listings.sort_values("listed_at")
    # request at 2 h, delisted at 3 h; relisted on the 12 h hit; the second request
    # (14 h) is refused (one removal per window), so the relisting runs to 72 h + 1 d
    assert rows["listed_at"].tolist() == pytest.approx([0.0, 12 * HOUR], abs=1.0)
    assert rows["delisted_at"].tolist() == pytest.approx([3 * HOUR, 72 * HOUR + DAY], abs=1.0)
    assert rows["ended"].tolist() == ["removal", "expiry"]
    actions = result.world.abuse_actions
    assert [a["action"] for a in actions] == ["removal", "removal"]
    assert actions[0]["until"] == pytest.approx(3 * HOUR, abs=1.0)
    assert actions[1]["until"] is None


def test_quarantine_moves_the_customer_behind_a_listing_and_only_it():
    raw = world(6, 24)
    raw["providers"]["isp"]["ips"] = [*IPS, "203.0.113.10"]
    raw["providers"]["isp"]["quarantine"] = {"ips": ["203.0.113.10"], "after": "1h"}
    raw["senders"]["ham"]["messages"] = [{"at": f"{h}h", "to": ["u2@dest.example"]} for h in (3, 9)]
    result = run(raw)
    attempts = result.attempts
    spam_ids = set(result.messages.loc[result.messages["sender_class"] == "spam", "message_id"])
    spam = attempts[attempts["message_id"].isin(spam_ids)].sort_values("started_at")
    ham = attempts[~attempts["message_id"].isin(spam_ids)]
    assert spam["source_ip"].iloc[0] in IPS
    assert set(spam["source_ip"].iloc[1:]) == {"203.0.113.10"}
    assert set(ham["source_ip"]) <= set(IPS)
    (action,) = result.world.abuse_actions
    assert (action["action"], action["sender"]) == ("quarantine", "spam0@isp.example")
    quarantined = result.listings[result.listings["key"] == "203.0.113.10"]
    assert len(quarantined) == 1  # the spam goes on hitting traps from its new address


def test_trap_shares_name_sender_groups_and_lists_exist():
    raw = world(6, 12)
    raw["blocklists"]["bl"]["traps"] = {"nosuchgroup": 0.1}
    with pytest.raises(ScenarioError, match=r"blocklists\.bl\.traps\.nosuchgroup"):
        Scenario.from_dict(raw)
    raw = world(6, 12)
    raw["providers"]["isp"]["removal_requests"] = {"lists": ["nolist"]}
    with pytest.raises(ScenarioError, match="no blocklist named 'nolist'"):
        Scenario.from_dict(raw)
    raw = world(6, 12)
    raw["providers"]["isp"]["quarantine"] = {"ips": list(IPS)}
    with pytest.raises(ScenarioError, match="none is left"):
        Scenario.from_dict(raw)
