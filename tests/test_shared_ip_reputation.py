"""Spam on shared IPs: listings, collateral damage, greylisting and mitigations, end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from mailnet import load_scenario, simulate
from mailnet.scenario import Scenario

HOUR = 3600.0


def shared_world(**extra) -> dict:
    """One provider, two addresses in one /24, a ham user and a spammer; one receiver."""
    raw = {
        "simulation": {"duration": "3d", "seed": 1},
        "providers": {
            "isp": {
                "ips": ["198.51.100.1", "198.51.100.2", "198.51.100.3"],
                "local_domains": ["isp.example"],
                "asn": 64500,
                "asn_size": 256,
                "ip_selection": "sender-hash",
            }
        },
        "senders": {
            "ham": {"provider": "isp", "count": 1, "class": "ham", "messages": []},
            "spam": {"provider": "isp", "count": 1, "class": "spam", "messages": []},
        },
        "blocklists": {"spamcop": {"preset": "spamcop"}},
        "receivers": {"dest": {"blocklists": {"spamcop": "reject"}}},
        "domains": {"dest.example": {"mx": [{"host": "mx.dest.example"}]}},
        "servers": {
            "mx.dest.example": {
                "receiver": "dest",
                "service_time": {"dist": "constant", "mean": "1s"},
            }
        },
    }
    for key, value in extra.items():
        raw[key] = value
    return raw


def source_of(sender: str, ips: list[str]) -> str:
    import zlib

    return ips[zlib.crc32(sender.encode()) % len(ips)]


def test_trap_hit_lists_the_ip_and_legitimate_mail_bounces_until_delisting():
    raw = shared_world()
    ips = raw["providers"]["isp"]["ips"]
    # both senders leave from the same address under sender-hash: pick pool so they share
    raw["providers"]["isp"]["ips"] = [source_of("spam0@isp.example", ips)]
    raw["senders"]["spam"]["messages"] = [{"at": "1h", "to": ["trap1@dest.example"]}]
    raw["senders"]["ham"]["messages"] = [
        {"at": "30m", "to": ["alice@dest.example"]},  # before the listing
        {"at": "2h", "to": ["bob@dest.example"]},  # while listed: 554 5.7.1, bounced
        {"at": "26h", "to": ["carol@dest.example"]},  # listed 24 h after the hit: delivered
    ]
    result = simulate(Scenario.from_dict(raw))
    listings = result.listings
    assert len(listings) == 1
    hit = listings.iloc[0]
    # the trap hit is observed when the spam is accepted: 1 h + 0.05 s set-up + 1 s service
    assert (hit["scope"], hit["trigger"]) == ("ip", "trap")
    assert hit["listed_at"] == pytest.approx(HOUR + 1.05)
    assert hit["delisted_at"] == pytest.approx(HOUR + 1.05 + 24 * HOUR)
    m = result.messages.set_index("recipient")
    assert m.loc["alice@dest.example", "status"] == "delivered"
    bob = m.loc["bob@dest.example"]
    assert (bob["status"], bob["final_code"], bob["final_enhanced_code"]) == (
        "bounced",
        554,
        "5.7.1",
    )
    assert bob["collateral"]
    assert bob["collateral_cause"] == "blocklist:spamcop:ip"
    assert m.loc["carol@dest.example", "status"] == "delivered"
    assert not m.loc["carol@dest.example", "collateral"]
    assert result.summary["collateral"]["recipients"] == 1


def test_deferring_receiver_delivers_after_delisting():
    raw = shared_world(receivers={"dest": {"blocklists": {"spamcop": "defer"}}})
    ips = raw["providers"]["isp"]["ips"]
    raw["providers"]["isp"]["ips"] = [source_of("spam0@isp.example", ips)]
    raw["senders"]["spam"]["messages"] = [{"at": "1h", "to": ["trap1@dest.example"]}]
    raw["senders"]["ham"]["messages"] = [{"at": "2h", "to": ["bob@dest.example"]}]
    result = simulate(Scenario.from_dict(raw))
    delisted = result.listings.iloc[0]["delisted_at"]
    a = result.attempts[result.attempts["recipient"] == "bob@dest.example"]
    before = a[a["started_at"] < delisted]
    assert (before["code"] == 451).all()
    assert (before["enhanced_code"] == "4.7.1").all()
    assert a.iloc[-1]["outcome"] == "sent"
    # delivered at the first Postfix retry after the delisting
    assert delisted <= a.iloc[-1]["started_at"] <= delisted + 4000 + 300
    row = result.messages.set_index("recipient").loc["bob@dest.example"]
    assert row["status"] == "delivered"
    assert row["collateral"]


def test_prefix_escalation_lists_a_neighbour_that_never_sent_spam():
    raw = shared_world(
        blocklists={"uce": {"preset": "uceprotect", "prefix_threshold": 2, "asn_share": None}},
        receivers={"dest": {"blocklists": {"uce": "reject"}}},
    )
    raw["providers"]["isp"]["ip_selection"] = "round-robin"
    # spam from .1 and .2 (round robin), each hits a trap; ham then leaves from .3
    raw["senders"]["spam"]["messages"] = [
        {"at": "1h", "to": ["trap1@dest.example"]},
        {"at": "2h", "to": ["trap2@dest.example"]},
    ]
    raw["senders"]["ham"]["messages"] = [{"at": "3h", "to": ["alice@dest.example"]}]
    result = simulate(Scenario.from_dict(raw))
    listings = result.listings
    assert set(listings["scope"]) == {"ip", "prefix"}
    prefix = listings[listings["scope"] == "prefix"].iloc[0]
    assert prefix["key"] == "198.51.100.0/24"
    assert prefix["listed_at"] == pytest.approx(2 * HOUR + 1.05)
    ham = result.attempts[result.attempts["recipient"] == "alice@dest.example"]
    assert ham.iloc[0]["source_ip"] == "198.51.100.3"
    assert set(listings.loc[listings["scope"] == "ip", "key"]) == {"198.51.100.1", "198.51.100.2"}
    row = result.messages.set_index("recipient").loc["alice@dest.example"]
    assert row["status"] == "bounced"
    assert row["collateral_cause"] == "blocklist:uce:prefix"


def test_greylisted_ham_delivered_at_first_postfix_retry_and_fire_and_forget_spam_never():
    raw = shared_world(receivers={"dest": {"greylisting": {"delay": "5m"}}})
    raw["senders"]["spam"]["retries"] = False
    raw["senders"]["ham"]["messages"] = [{"at": "0s", "to": ["alice@dest.example"]}]
    raw["senders"]["spam"]["messages"] = [{"at": "0s", "to": ["bob@dest.example"]}]
    result = simulate(Scenario.from_dict(raw))
    a = result.attempts.sort_values("started_at")
    ham = a[a["recipient"] == "alice@dest.example"]
    assert list(ham["code"]) == [450, 250]
    assert ham.iloc[0]["enhanced_code"] == "4.2.0"
    # first seen at RCPT time, 0.05 s; Postfix retries at the 300 s scan, whose RCPT at
    # 300.05 s is exactly the 5-minute delay later: it passes
    assert ham.iloc[1]["started_at"] == pytest.approx(300.0)
    m = result.messages.set_index("recipient")
    assert m.loc["alice@dest.example", "delivered_at"] == pytest.approx(301.05)
    spam = a[a["recipient"] == "bob@dest.example"]
    assert len(spam) == 1
    assert spam.iloc[0]["code"] == 450
    assert m.loc["bob@dest.example", "status"] == "expired"
    assert result.summary["dsn"]["messages"] == 0


def test_greylisting_costs_each_preset_its_own_retry():
    """The retry preset decides how long greylisting costs: gmail retries at 6:02."""
    raw = shared_world(receivers={"dest": {"greylisting": {"delay": "5m"}}})
    raw["providers"]["isp"]["retry"] = "gmail"
    raw["senders"]["ham"]["messages"] = [{"at": "0s", "to": ["alice@dest.example"]}]
    result = simulate(Scenario.from_dict(raw))
    row = result.messages.set_index("recipient").loc["alice@dest.example"]
    assert row["delivered_at"] == pytest.approx(362 + 1.05)


SEEDS = [1, 2, 3]
BASE = "experiments/scenarios/shared_ip_spam.toml"
SHORT = ["simulation.duration=1d", "simulation.warmup=2h"]


def legit_damage(overrides: list[str], seed: int) -> float:
    summary = simulate(load_scenario(BASE, overrides=SHORT + overrides), seed=seed).summary
    return summary["collateral"]["rate"]


@pytest.mark.slow
def test_more_spam_more_collateral_and_segmentation_less():
    for seed in SEEDS:
        none = legit_damage(["senders.spammer.rate=0/d"], seed)
        some = legit_damage(["senders.spammer.rate=1000/d"], seed)
        lots = legit_damage(["senders.spammer.rate=4000/d"], seed)
        segmented = legit_damage(
            ["senders.spammer.rate=4000/d", "providers.isp.pool_strategy=by-class"], seed
        )
        assert none <= some <= lots, (seed, none, some, lots)
        assert lots > none
        assert segmented < lots, (seed, segmented, lots)


def test_outbound_controls_stop_spam_at_the_source():
    raw = load_scenario(
        BASE, overrides=[*SHORT, "providers.isp.outbound_filter.catch_rate=1.0"]
    ).to_dict()
    result = simulate(Scenario.from_dict(raw), seed=1)
    spam = result.messages[result.messages["sender_class"] == "spam"]
    assert (spam["status"] == "bounced").all()
    assert (spam["final_enhanced_code"] == "5.7.1").all()
    assert (spam["attempts"] == 0).all()
    assert result.listings.empty


def test_suspension_stops_a_bouncing_sender():
    result = simulate(
        load_scenario(BASE, overrides=[*SHORT, "providers.isp.suspension.bounce_rate=0.05"]), seed=1
    )
    assert "spammer0@isp.example" in set(result.suspensions["sender"])
    spam = result.messages[result.messages["sender_class"] == "spam"]
    suspended_at = result.suspensions["at"].min()
    later = spam[spam["created_at"] > suspended_at + 1]
    assert len(later) > 0
    assert (later["attempts"] == 0).all()


def test_rate_limit_holds_mail_at_the_msa():
    raw = shared_world()
    raw["providers"]["isp"]["rate_limit"] = {"rate": "1/m", "burst": 2}
    raw["senders"]["ham"]["messages"] = [
        {"at": "0s", "to": [f"u{i}@dest.example"]} for i in range(5)
    ]
    result = simulate(Scenario.from_dict(raw))
    starts = np.sort(result.attempts["started_at"].to_numpy())
    assert np.allclose(starts, [0, 0, 60, 120, 180])


def test_dedicated_and_by_class_pools():
    raw = shared_world()
    raw["providers"]["isp"]["pool_strategy"] = "by-class"
    raw["providers"]["isp"]["pools"] = {"ham": ["198.51.100.1"], "spam": ["198.51.100.3"]}
    raw["senders"]["ham"]["messages"] = [
        {"at": f"{i}m", "to": ["a@dest.example"]} for i in range(5)
    ]
    raw["senders"]["spam"]["messages"] = [
        {"at": f"{i}m", "to": ["b@dest.example"]} for i in range(5)
    ]
    a = simulate(Scenario.from_dict(raw)).attempts
    assert set(a.loc[a["recipient"] == "a@dest.example", "source_ip"]) == {"198.51.100.1"}
    assert set(a.loc[a["recipient"] == "b@dest.example", "source_ip"]) == {"198.51.100.3"}
    raw["providers"]["isp"]["pool_strategy"] = "dedicated"
    raw["providers"]["isp"]["pools"] = {"spam": ["198.51.100.2"]}
    a = simulate(Scenario.from_dict(raw)).attempts
    assert set(a.loc[a["recipient"] == "b@dest.example", "source_ip"]) == {"198.51.100.2"}
    assert "198.51.100.2" not in set(a.loc[a["recipient"] == "a@dest.example", "source_ip"])


def test_warmup_caps_a_new_address():
    raw = shared_world()
    raw["providers"]["isp"]["ips"] = ["198.51.100.1"]
    raw["providers"]["isp"]["warmup"] = {"ips": ["198.51.100.1"], "daily_limits": [3, 10]}
    raw["senders"]["ham"]["messages"] = [
        {"at": f"{i}m", "to": [f"u{i}@dest.example"]} for i in range(5)
    ]
    result = simulate(Scenario.from_dict(raw))
    a = result.attempts.sort_values("started_at")
    first = a.drop_duplicates("message_id")
    assert list(first["code"][:3]) == [250, 250, 250]
    assert list(first["enhanced_code"][3:]) == ["4.7.0", "4.7.0"]
    # held back until day 1 of the warm-up, then delivered
    delivered = result.messages["delivered_at"].sort_values().to_numpy()
    assert (delivered[3:] >= 86400).all()


def test_campaign_bursts_besides_a_steady_rate():
    raw = shared_world()
    raw["simulation"]["duration"] = "1d"
    raw["senders"]["spam"] = {
        "provider": "isp",
        "class": "spam",
        "rate": "24/d",
        "domains": {"dest.example": 1.0},
        "campaigns": {"every": "6h", "size": 500, "over": "30m", "start": "1h"},
    }
    m = simulate(Scenario.from_dict(raw), seed=4).messages
    spam = m[(m["sender_class"] == "spam") & ~m["is_dsn"]].drop_duplicates("message_id")
    t = spam["created_at"].to_numpy()
    for k in range(4):
        start = HOUR + k * 6 * HOUR
        inside = ((t >= start) & (t < start + 1800)).sum()
        # 500 campaign messages plus the steady stream's ~0.5 expected in 30 minutes
        assert 500 <= inside <= 505, (k, inside)
    steady = len(t) - 4 * 500
    # Poisson(24): within 4 sd
    assert abs(steady - 24) < 4 * 24**0.5


# -- receiver reputation: domains, new addresses, collateral by cause and severity ---------


def filtering_world(duration: str = "2d", **receiver) -> dict:
    """One provider whose ham and spam leave from separate addresses (a dedicated pool
    for the spammer), both signed with the provider's shared domain; one receiver that
    keeps IP and domain reputation and files mail."""
    raw = shared_world()
    raw["simulation"]["duration"] = duration
    isp = raw["providers"]["isp"]
    isp["ips"] = ["198.51.100.1", "198.51.100.2"]
    isp["pool_strategy"] = "dedicated"
    isp["pools"] = {"spam": ["198.51.100.2"]}
    raw["blocklists"] = {}
    raw["receivers"] = {
        "dest": {
            "reputation": {"half_life": "3d", **receiver},
            "filter": {"fp_base": 0.001, "fn_base": 0.05, "fp_worst": 0.3, "fn_worst": 0.005},
        }
    }
    raw["domains"]["dest.example"]["users"] = 1000
    raw["senders"] = {
        "ham": {
            "provider": "isp",
            "count": 50,
            "rate": "8/d",
            "domains": {"dest.example": 1.0},
        },
        "spam": {
            "provider": "isp",
            "class": "spam",
            "rate": "300/d",
            "complaints": 0.01,
            "domains": {"dest.example": 1.0},
        },
    }
    return raw


def without_spam(raw: dict) -> dict:
    del raw["senders"]["spam"]
    raw["providers"]["isp"].update(pool_strategy="shared", pools={}, ips=["198.51.100.1"])
    return raw


def legit(m):
    return m[(m["sender_class"] != "spam") & ~m["is_dsn"]]


def test_no_spam_and_no_complaints_means_no_collateral_damage_at_all():
    """Without spam and complaints nobody earns bad evidence: the filter's own false
    positives (which also lower the score) are neither collateral nor self-inflicted."""
    raw = without_spam(filtering_world())
    raw["receivers"]["dest"]["filter"] = {"fp_base": 0.05, "fp_worst": 0.6}
    result = simulate(Scenario.from_dict(raw), seed=3)
    m = legit(result.messages)
    assert (m["folder"] == "spam").sum() > 20  # the filter does misfile ham
    assert not m["collateral"].any()
    assert not m["self_inflicted"].any()
    for kind in ("collateral", "self_inflicted"):
        part = result.summary[kind]
        assert part["recipients"] == 0
        assert part["by_cause"] == {}
        assert part["delayed"] == part["spam_folder"] == part["bounced"] == 0


def test_a_groups_own_complaints_are_self_inflicted_not_collateral():
    raw = without_spam(filtering_world())
    raw["senders"]["ham"]["complaints"] = 0.02
    result = simulate(Scenario.from_dict(raw), seed=3)
    m = legit(result.messages)
    assert not m["collateral"].any()
    assert m["self_inflicted"].sum() > 10
    assert result.summary["self_inflicted"]["recipients"] == int(m["self_inflicted"].sum())


def test_spammer_on_the_shared_domain_hurts_ham_from_a_clean_address():
    """Ham and spam leave from different addresses but share isp.example: the domain's
    reputation sinks and ham is misfiled or refused for it (collateral, by domain);
    a sending domain of the spammer's own keeps the ham clean. (A lenient receiver, so
    that the spammer's address keeps delivering and its domain keeps hearing of it.)"""
    lenient = {"throttle_below": 0.3, "reject_below": 0.0, "throttle_rate": "1000/h"}
    result = simulate(Scenario.from_dict(filtering_world(**lenient)), seed=2)
    m = legit(result.messages)
    a = result.attempts
    assert set(a.loc[a["message_id"].isin(m["message_id"]), "source_ip"]) == {"198.51.100.1"}
    causes = set(m.loc[m["collateral"], "collateral_cause"].astype(str))
    assert causes
    assert causes <= {"filter:domain", "reputation:domain"}, causes
    assert m["collateral"].mean() > 0.05
    hit = m[m["collateral"]]
    assert set(hit["collateral_severity"].astype(str)) <= {"delayed", "spam_folder", "bounced"}
    assert (hit.loc[hit["folder"] == "spam", "collateral_severity"] == "spam_folder").all()

    own = filtering_world(**lenient)
    own["senders"]["spam"]["domain"] = "spam.example"
    result = simulate(Scenario.from_dict(own), seed=2)
    m = legit(result.messages)
    assert not m["collateral"].any()
    spam = result.messages[result.messages["sender_class"] == "spam"]
    assert set(spam["sender_domain"].astype(str)) == {"spam.example"}
    assert set(m["sender_domain"].astype(str)) == {"isp.example"}


def test_a_spammer_with_its_own_domain_carries_its_name_to_a_fresh_address():
    """The spammer's first address sinks its domain's reputation; moved to a fresh
    address (another provider), its mail is refused for the domain at once."""

    def world(second_domain: str) -> dict:
        raw = filtering_world(duration="1d", throttle_rate="1/h", throttle_burst=10)
        raw["providers"]["isp"].update(pool_strategy="shared", pools={}, ips=["198.51.100.2"])
        raw["providers"]["fresh"] = {
            "ips": ["192.0.2.50"],
            "local_domains": ["fresh.example"],
            "warmup": {"ips": ["192.0.2.50"], "daily_limits": [100000]},
        }
        raw["senders"] = {
            "before": {
                "provider": "isp",
                "class": "spam",
                "domain": "spam.example",
                "messages": [{"at": f"{i}m", "to": [f"u{i}@dest.example"]} for i in range(200)],
            },
            "after": {
                "provider": "fresh",
                "class": "spam",
                "domain": second_domain,
                "messages": [
                    {"at": f"{6 * 60 + i}m", "to": [f"v{i}@dest.example"]} for i in range(5)
                ],
            },
        }
        return raw

    a = simulate(Scenario.from_dict(world("spam.example"))).attempts
    late = a[a["source_ip"] == "192.0.2.50"].drop_duplicates("message_id")
    assert len(late) == 5
    assert (late["code"] == 550).all()
    assert late["reply"].str.contains("DKIM domain [spam.example]", regex=False).all()
    # under a new name the first message gets in; what it earns then sinks the (new,
    # little-trusted) address itself
    a = simulate(Scenario.from_dict(world("new-name.example"))).attempts
    late = a[a["source_ip"] == "192.0.2.50"].drop_duplicates("message_id")
    assert late["code"].iloc[0] == 250
    assert not late["reply"].str.contains("DKIM domain", regex=False).any()


@pytest.mark.slow
def test_a_new_address_is_throttled_until_warmed():
    """An address in its provider's warm-up starts with a small allowance at the
    receiver (4.7.28 deferrals beyond it) that grows with the good evidence it earns;
    a known address sending the same mail is never throttled."""

    def world(new: bool) -> dict:
        raw = without_spam(filtering_world(duration="7d", new_daily=10, warm_growth=1.0))
        raw["receivers"]["dest"].pop("filter")
        raw["senders"]["ham"].update(count=1, rate="60/d")
        if new:
            raw["providers"]["isp"]["warmup"] = {"ips": ["198.51.100.1"], "daily_limits": [100000]}
        return raw

    a = simulate(Scenario.from_dict(world(new=True)), seed=5).attempts
    day = (a["started_at"] // 86400).astype(int)
    throttled = a["enhanced_code"] == "4.7.28"
    share = throttled.groupby(day).mean()
    assert share[0] > 0.5  # 10 a day against ~60 offered (and their retries)
    assert share.iloc[-1] == 0.0  # warmed: nothing throttled on the last day
    # the allowance doubles with the evidence earned: more delivered each day until warm
    delivered = (a["code"] == 250).groupby(day).sum().tolist()
    assert all(x < y for x, y in itertools.pairwise(delivered[:5])), delivered
    a = simulate(Scenario.from_dict(world(new=False)), seed=5).attempts
    assert not (a["enhanced_code"] == "4.7.28").any()


def test_legitimate_draws_do_not_move_when_the_spam_volume_changes():
    """Filing draws come from each message's own substream: with the spammer on its own
    address and domain and a filter blind to reputation, three times the spam leaves
    every ham message's folder as it was (common random numbers)."""
    raw = filtering_world(duration="1d")
    raw["senders"]["spam"]["domain"] = "spam.example"
    raw["receivers"]["dest"]["filter"] = {"fp_base": 0.2, "fp_worst": 0.2}
    folders = []
    for rate in ("100/d", "300/d"):
        raw["senders"]["spam"]["rate"] = rate
        m = legit(simulate(Scenario.from_dict(raw), seed=9).messages)
        m = m[m["status"] == "delivered"].sort_values(["sender", "created_at", "recipient"])
        keys = m[["sender", "created_at", "recipient", "folder"]].astype(str)
        folders.append(keys.reset_index(drop=True))
    assert len(folders[0]) > 200
    assert (folders[0]["folder"] == "spam").sum() > 20
    pd.testing.assert_frame_equal(folders[0], folders[1])


def test_a_listing_is_blamed_on_whoever_earned_most_of_the_address_evidence():
    from mailnet.model.receiver import BlocklistNetwork
    from mailnet.policies.blocklists import Blocklist

    # a list that lists on no evidence: the blame is the network's own accounting
    quiet = Blocklist("quiet", trap_hits=None)
    network = BlocklistNetwork({"quiet": quiet})
    for party in ("ham", "ham", "ham", "spam"):
        network.observe("trap", "198.51.100.1", 64500, 0.0, party)
    assert network.blame("198.51.100.1", "ip", "ham") == "own"
    assert network.blame("198.51.100.1", "ip", "spam") == "others"
    assert network.blame("198.51.100.1", "prefix", "ham") == "others"  # the neighbours
    assert network.blame("198.51.100.9", "ip", "ham") == "others"  # nothing reported


def test_reputation_table_samples_each_sending_domain_beside_each_address():
    """``reputation.parquet`` holds, per sample time and receiver, one row per sending
    address (kind ip) and one per sending domain (kind domain): the spammer's own domain
    sinks while the legitimate customers' shared domain stays high; with the spammer on
    the shared domain, that domain sinks instead. A receiver without domain reputation
    samples addresses only."""
    lenient = {"throttle_below": 0.3, "reject_below": 0.0, "throttle_rate": "1000/h"}
    own = filtering_world(duration="1d", **lenient)
    own["senders"]["spam"]["domain"] = "spam.example"
    rep = simulate(Scenario.from_dict(own), seed=2).reputation
    assert list(rep.columns) == ["time", "receiver", "kind", "key", "score"]
    times = rep["time"].nunique()
    domains = rep[rep["kind"] == "domain"]
    ips = rep[rep["kind"] == "ip"]
    assert set(domains["key"].astype(str)) == {"isp.example", "spam.example"}
    assert set(ips["key"].astype(str)) == {"198.51.100.1", "198.51.100.2"}
    assert len(domains) == 2 * times
    assert len(ips) == 2 * times
    assert rep["score"].between(0, 1).all()
    worst = domains.groupby("key", observed=True)["score"].min()
    # 300 spam a day, 1 % complaints (weight 100) and its spam filed as spam: far below
    # the lenient line; the ham's only bad evidence is the filter's false positives
    assert worst["spam.example"] < 0.3
    assert worst["isp.example"] > 0.9

    shared = simulate(Scenario.from_dict(filtering_world(duration="1d", **lenient)), seed=2)
    domains = shared.reputation[shared.reputation["kind"] == "domain"]
    assert set(domains["key"].astype(str)) == {"isp.example"}
    assert domains["score"].min() < 0.6  # diluted by the ham it also signs

    off = filtering_world(duration="1d", domain=False, **lenient)
    rep = simulate(Scenario.from_dict(off), seed=2).reputation
    assert set(rep["kind"].astype(str)) == {"ip"}
