"""Mail loops: refused at load time where the relay graph shows them, bounded at run time by
the hop count (Postfix's hopcount_limit, 554 5.4.0 "too many hops"; mail-facts.md §11)."""

from __future__ import annotations

import pytest

from mailnet import simulate
from mailnet.errors import ScenarioError
from tests.conftest import build, one_mx_world

CONSTANT = {"dist": "constant", "mean": "1s"}


def _smarthost_chain(limit: int) -> dict:
    """``isp`` sends through smarthost ``smart1``, which relays to ``smart2``, which looks
    up MX records; ``smart2`` refuses copies at ``limit`` hops."""
    raw = one_mx_world(service_time=CONSTANT)
    raw["providers"]["isp"]["relay_host"] = "smart1.isp.example"
    raw["servers"]["smart1.isp.example"] = {
        "role": "relay",
        "relay_to": "smart2.isp.example",
        "service_time": CONSTANT,
    }
    raw["servers"]["smart2.isp.example"] = {
        "role": "relay",
        "service_time": CONSTANT,
        "hopcount_limit": limit,
    }
    raw["servers"]["mx.isp.example"] = {"service_time": CONSTANT}
    return raw


def test_copy_at_the_hop_limit_bounces_with_540_and_dsn():
    """Submission (1), smart1 (2), smart2 (3): a limit of 3 bounces at smart2, whose DSN
    goes back by MX lookup to the sender's mailbox."""
    result = simulate(build(_smarthost_chain(limit=3)))
    m = result.messages
    original = m[~m["is_dsn"]].iloc[0]
    assert original["status"] == "bounced"
    assert (original["final_code"], original["final_enhanced_code"]) == (554, "5.4.0")
    assert original["final_reply"] == "Error: too many hops"
    a = result.attempts
    assert list(a["hop"]) == ["isp", "smart1.isp.example", "smart2.isp.example"]
    # each hop: 0.05 s connection set-up and 1 s service; smart2 takes it at 2.10 s
    assert a["ended_at"].iloc[1] == pytest.approx(2.10)
    dsn = m[m["is_dsn"]].iloc[0]
    assert dsn["recipient"] == original["sender"]
    assert dsn["dsn_kind"] == "failed"
    assert dsn["created_at"] == pytest.approx(2.10)
    assert dsn["status"] == "delivered"
    assert dsn["delivered_at"] == pytest.approx(3.15)


def test_copy_below_the_hop_limit_is_delivered():
    result = simulate(build(_smarthost_chain(limit=4)))
    row = result.messages.iloc[0]
    assert row["status"] == "delivered"
    assert row["delivered_at"] == pytest.approx(3.15)
    assert len(result.messages) == 1


def test_relays_pointing_at_each_other_are_refused():
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mx"] = [{"host": "a.dest.example"}]
    raw["servers"]["a.dest.example"] = {"role": "relay", "relay_to": "b.dest.example"}
    raw["servers"]["b.dest.example"] = {"role": "relay", "relay_to": "a.dest.example"}
    with pytest.raises(ScenarioError) as info:
        build(raw)
    assert info.value.key == 'servers."b.dest.example".relay_to'
    assert "'dest.example' loops: a.dest.example -> b.dest.example -> a.dest.example" in str(
        info.value
    )


def test_smarthost_that_is_its_own_mx_is_refused():
    """A relay without relay_to looks up MX records: as the domain's MX it finds itself."""
    raw = one_mx_world()
    raw["providers"]["isp"]["relay_host"] = "smart.isp.example"
    raw["servers"]["smart.isp.example"] = {"role": "relay"}
    raw["domains"]["dest.example"]["mx"] = [{"host": "smart.isp.example"}]
    with pytest.raises(ScenarioError) as info:
        build(raw)
    assert info.value.key == 'domains."dest.example".mx'
    assert "smart.isp.example -> smart.isp.example" in info.value.problem


def test_backup_mx_pointing_back_through_a_relay_is_refused():
    """A backup passes mail to the more preferred relay, which looks the MX up again."""
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mx"] = [
        {"host": "gw.dest.example", "preference": 10},
        {"host": "backup.dest.example", "preference": 20},
    ]
    raw["servers"]["gw.dest.example"] = {"role": "relay"}
    raw["servers"]["backup.dest.example"] = {"role": "backup"}
    with pytest.raises(ScenarioError) as info:
        build(raw)
    assert "loops: gw.dest.example -> gw.dest.example" in info.value.problem


def test_relay_chains_without_a_cycle_load():
    build(_smarthost_chain(limit=50))
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mx"] = [
        {"host": "mx.dest.example", "preference": 10},
        {"host": "backup.dest.example", "preference": 20},
    ]
    raw["servers"]["backup.dest.example"] = {"role": "backup"}
    build(raw)
