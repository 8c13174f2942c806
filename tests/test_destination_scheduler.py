"""The destination scheduler against Postfix's qmgr rules (mail-facts.md §1), without SimPy."""

from __future__ import annotations

import pytest

from mailnet.model.destinations import Destination, DestinationScheduler
from mailnet.model.hop_client import HopClient
from mailnet.model.message import Delivery, Message
from mailnet.policies.retry import make_retry_policy
from mailnet.scenario import Provider

MESSAGE = Message(0, "a@isp.example", "ham", "isp", is_dsn=False, created_at=0.0)


def _delivery(domain: str = "dest.example") -> Delivery:
    return Delivery(MESSAGE, domain, ["u@" + domain], 0.0)


def _scheduler(**overrides) -> tuple[DestinationScheduler, list[tuple[Delivery, Destination]]]:
    started: list[tuple[Delivery, Destination]] = []
    params = {
        "max_connections": 100,
        "destination_concurrency_limit": 20,
        "initial_destination_concurrency": 5,
        "failed_cohort_limit": 1.0,
        "negative_feedback": 1.0,
        "positive_feedback": 1.0,
        "dead_time": 300.0,
    }
    params.update(overrides)
    return DestinationScheduler(lambda d, dest: started.append((d, dest)), **params), started


def test_defaults_are_the_providers():
    config = Provider(ips=["198.51.100.1"], local_domains=["isp.example"])
    s = DestinationScheduler.for_provider(lambda d, dest: None, config, 300.0)
    assert (s.max_connections, s.limit, s.initial) == (100, 20, 5)
    assert (s.failed_cohort_limit, s.negative_feedback, s.positive_feedback) == (1.0, 1.0, 1.0)
    relay = DestinationScheduler.for_relay(lambda d, dest: None, 20, 60.0)
    assert (relay.max_connections, relay.limit, relay.initial, relay.dead_time) == (20, 20, 5, 60.0)


def test_initial_window_limits_parallel_deliveries():
    s, started = _scheduler()
    batch = [_delivery() for _ in range(8)]
    assert all(s.offer(d) for d in batch)
    assert [d for d, _ in started] == batch[:5]
    dest = s.destination("dest.example")
    assert (dest.busy, len(dest.todo), s.busy) == (5, 3, 5)
    s.done(dest)
    assert [d for d, _ in started] == batch[:6]


def test_window_grows_by_positive_feedback_while_in_use_up_to_the_limit():
    s, _ = _scheduler(destination_concurrency_limit=7)
    for _ in range(10):
        s.offer(_delivery())
    dest = s.destination("dest.example")
    s.succeeded(dest)
    assert dest.window == 6
    s.succeeded(dest)
    s.succeeded(dest)
    assert dest.window == 7  # the limit


def test_window_grows_no_further_than_busy_plus_initial():
    s, _ = _scheduler()
    s.offer(_delivery())
    dest = s.destination("dest.example")
    for _ in range(5):
        s.succeeded(dest)
    assert dest.window == 6  # busy 1 + initial 5: a little idle window does not grow


def test_site_failures_shrink_the_window_and_a_failed_cohort_kills():
    s, _ = _scheduler(failed_cohort_limit=1.0)
    for _ in range(8):
        s.offer(_delivery())
    dest = s.destination("dest.example")
    assert s.failed(dest) is None  # 1/5 of a cohort
    assert dest.window == 4
    assert dest.fail_cohorts == pytest.approx(0.2)
    s.succeeded(dest)  # a session held: cohorts start over
    assert dest.fail_cohorts == 0.0
    held = None
    for _ in range(10):
        held = s.failed(dest)
        if held is not None:
            break
    assert dest.dead
    assert dest.window == 1.0
    assert held is not None
    assert len(held) == 3
    assert not dest.todo
    assert not s.offer(_delivery())  # dead: the caller defers without a connection
    assert s.failed(dest) is None  # already dead


def test_revive_resets_and_restarts():
    s, started = _scheduler(failed_cohort_limit=0.1)
    s.offer(_delivery())
    dest = s.destination("dest.example")
    assert s.failed(dest) == []
    s.done(dest)
    assert not s.offer(_delivery())
    s.revive(dest)
    assert not dest.dead
    assert dest.window == 5
    assert dest.fail_cohorts == 0.0
    assert s.offer(_delivery())
    assert len(started) == 2


def test_max_connections_are_shared_and_waiting_destinations_go_first_come():
    s, started = _scheduler(max_connections=2)
    a1, a2, b1, c1 = _delivery("a"), _delivery("a"), _delivery("b"), _delivery("c")
    for d in (a1, a2, b1, c1):
        s.offer(d)
    assert [d for d, _ in started] == [a1, a2]
    s.done(s.destination("a"))
    assert [d for d, _ in started] == [a1, a2, b1]
    s.done(s.destination("b"))
    assert [d for d, _ in started] == [a1, a2, b1, c1]
    assert s.busy == 2


def _hop_scheduler(preset: str, **provider) -> DestinationScheduler:
    config = Provider(ips=["198.51.100.1"], local_domains=["isp.example"], **provider)
    client = HopClient.for_provider(config, make_retry_policy(preset))
    return client.scheduler(lambda d, dest: None)


@pytest.mark.parametrize(
    ("preset", "limits"),
    [
        ("postfix", (100, 20, 5)),
        ("exim", (100, 100, 100)),  # no per-destination window: the hop's total
        ("qmail", (20, 20, 20)),  # concurrencyremote, for all destinations together
        ("sendmail", (100, 100, 100)),
        ("exchange", (100, 20, 20)),  # MaxPerDomainOutboundConnections, no slow start
    ],
)
def test_each_presets_concurrency(preset, limits):
    s = _hop_scheduler(preset)
    assert (s.max_connections, s.limit, s.initial) == limits


def test_only_postfix_has_dead_destinations():
    for preset, dies in (("postfix", True), ("qmail", False), ("exchange", False)):
        s = _hop_scheduler(preset)
        dest = s.destination("dest.example")
        held = [s.failed(dest) for _ in range(50)]
        assert (dest.dead, any(h is not None for h in held)) == (dies, dies)
        assert dest.window == (1.0 if dies else s.initial)


def test_a_provider_key_wins_over_the_presets_concurrency():
    assert _hop_scheduler("qmail", max_connections=7).max_connections == 7
