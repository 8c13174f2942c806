"""The SMTP clients' per-host memories, without a simulation: Exim's retry records, qmail's
tcpto, Sendmail's host status cache, Exchange's next-hop queues."""

from __future__ import annotations

from mailnet import smtp
from mailnet.model.host_status import (
    HostStatusCache,
    NextHopRetry,
    RetryRecords,
    TcpTimeouts,
    host_memory,
)
from mailnet.policies.retry import EximRetry, make_retry_policy

D, H, IP = "dest.example", "mx.dest.example", "192.0.2.1"


def exim() -> EximRetry:
    policy = make_retry_policy("exim")
    assert isinstance(policy, EximRetry)
    return policy


def test_exim_record_follows_the_retry_rules_and_a_session_clears_it():
    policy = exim()
    memory = RetryRecords(policy)
    assert memory.held_until(D, H, IP, 0.0) is None
    memory.failed(D, H, IP, 300.4, smtp.CONNECT_TIMEOUT)
    # F,2h,15m from the whole second of the failure
    assert memory.held_until(D, H, IP, 1199.9) == 1200.0
    assert memory.held_until(D, H, IP, 1200.0) is None
    # G,16h,1h,1.5 once the host has failed for more than 2 h
    memory.failed(D, H, IP, 300 + 2 * 3600 + 1, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, H, IP, 7501.0) == 7501.0 + 3600
    memory.succeeded(D, H, IP)
    assert memory.held_until(D, H, IP, 7502.0) is None
    # the records are the memory's own: the policy's per-destination data are untouched
    assert not policy._hints


def test_exim_record_is_per_host():
    memory = RetryRecords(exim())
    memory.failed(D, H, IP, 0.0, smtp.CONNECT_REFUSED)
    assert memory.held_until(D, "backup.dest.example", "192.0.2.2", 10.0) is None
    assert memory.held_until(D, H, IP, 10.0) == 900.0


def test_tcpto_counts_timeouts_120_s_apart_and_ignores_refusals():
    memory = TcpTimeouts(hold=3840.0)
    memory.failed(D, H, IP, 0.0, smtp.CONNECT_REFUSED)
    memory.failed(D, H, IP, 10.0, smtp.CONNECT_TIMEOUT)
    memory.failed(D, H, IP, 129.0, smtp.CONNECT_TIMEOUT)  # under 120 s after: not counted
    assert memory.held_until(D, H, IP, 130.0) is None
    memory.failed(D, H, IP, 130.0, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, H, IP, 131.0) == 130.0 + 3840
    assert memory.held_until(D, H, IP, 3970.0) is None
    # per address: another host name at the same address is held too
    assert memory.held_until(D, "other.example", IP, 200.0) == 3970.0
    memory.succeeded(D, H, IP)
    assert memory.held_until(D, H, IP, 200.0) is None


def test_tcpto_keys_a_server_without_address_by_name():
    memory = TcpTimeouts(hold=100.0)
    for t in (0.0, 200.0):
        memory.failed(D, H, "", t, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, H, "", 250.0) == 300.0
    assert memory.held_until(D, "backup.dest.example", "", 250.0) is None


def test_host_status_cache_holds_a_failed_host_with_its_reply():
    memory = HostStatusCache(timeout=1800.0)
    memory.failed(D, H, IP, 127.0, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, H, IP, 1926.9) == 1927.0
    assert memory.held_until(D, H, IP, 1927.0) is None
    reply = memory.skip_reply(D, H)
    assert (reply.code, reply.enhanced) == (421, "4.4.1")
    assert reply.text == "Connection timed out with mx.dest.example"
    memory.succeeded(D, H, IP)
    assert memory.held_until(D, H, IP, 200.0) is None


def test_next_hop_retry_counts_quick_failures_then_waits_longer():
    memory = NextHopRetry(first=300.0, count=2, later=600.0)
    memory.failed(D, H, IP, 0.0, smtp.CONNECT_TIMEOUT)  # per host: nothing
    assert memory.held_until(D, H, IP, 0.0) is None
    memory.delivery_failed(D, 30.0, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, "any.host", IP, 31.0) == 330.0
    memory.delivery_failed(D, 40.0, smtp.CONNECT_TIMEOUT)  # under way already: no count
    memory.delivery_failed(D, 360.0, smtp.CONNECT_TIMEOUT)
    assert memory.held_until(D, H, IP, 361.0) == 660.0
    memory.delivery_failed(D, 690.0, smtp.CONNECT_TIMEOUT)  # third failure: the long hold
    assert memory.held_until(D, H, IP, 691.0) == 1290.0
    assert memory.held_until("other.example", H, IP, 691.0) is None
    memory.succeeded(D, H, IP)
    assert memory.held_until(D, H, IP, 700.0) is None


def test_each_preset_gets_its_memory():
    kinds = {
        name: type(host_memory(make_retry_policy(name).client(), make_retry_policy(name)))
        for name in ("postfix", "exim", "qmail", "sendmail", "exchange", "gmail")
    }
    assert kinds == {
        "postfix": type(None),
        "exim": RetryRecords,
        "qmail": TcpTimeouts,
        "sendmail": HostStatusCache,
        "exchange": NextHopRetry,
        "gmail": type(None),
    }
