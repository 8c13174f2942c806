"""Provider mitigations: rate limits, outbound filter, suspension, warm-up, IP pools."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mailnet.model.submission import SenderShaper
from mailnet.policies.outbound_controls import (
    OutboundSpamFilter,
    PoolAssigner,
    SenderStats,
    SenderSuspension,
    WarmupSchedule,
)
from mailnet.scenario import WarmupConfig
from mailnet.units import DAY, HOUR

# -- rate limit and outbound filter ---------------------------------------------------------


def test_sender_rate_limit_per_sender():
    shaper = SenderShaper(rate=1 / 10, burst=2)
    assert [shaper.release_time("a", 0.0) for _ in range(3)] == [0.0, 0.0, 10.0]
    assert shaper.release_time("b", 0.0) == 0.0
    assert shaper.release_time("a", 9.0) == pytest.approx(20.0)  # queued behind the third
    assert shaper.release_time("a", 100.0) == 100.0  # the bucket refilled meanwhile


def test_outbound_filter_catch_rate():
    n = 20_000
    f = OutboundSpamFilter(0.8, np.random.default_rng(5))
    caught = sum(f.blocks(True) for _ in range(n))
    assert abs(caught / n - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)
    assert not any(f.blocks(False) for _ in range(1000))
    with pytest.raises(ValueError, match="must be probabilities"):
        OutboundSpamFilter(1.2, np.random.default_rng(0))


# -- suspension --------------------------------------------------------------------------


def test_suspension_needs_min_volume():
    s = SenderSuspension()
    s.record("spammy", "sent", 0.0, count=199)
    s.record("spammy", "bounce", 0.0, count=100)
    assert not s.suspended("spammy", 0.0)
    s.record("spammy", "sent", 1.0)
    assert s.suspended("spammy", 1.0)


def test_bounce_threshold_is_five_percent_inclusive():
    s = SenderSuspension()
    s.record("a", "sent", 0.0, count=1000)
    s.record("a", "bounce", 0.0, count=49)
    assert not s.suspended("a", 0.0)
    s.record("a", "bounce", 1.0)
    assert s.suspended("a", 1.0)


def test_complaint_threshold_is_a_tenth_of_a_percent():
    log: list = []
    s = SenderSuspension(log=log)
    s.record("a", "sent", 0.0, count=2000)
    s.record("a", "complaint", 10.0)
    assert not s.suspended("a", 10.0)
    s.record("a", "complaint", 20.0)
    assert s.suspended("a", 20.0)
    assert log == [
        {"sender": "a", "at": 20.0, "sent": 2000.0, "bounce_rate": 0.0, "complaint_rate": 0.001}
    ]
    assert not s.suspended("b", 20.0)


def test_counts_leave_the_seven_day_window():
    stats = SenderStats()
    stats.record("a", "sent", 0.0, count=300)
    stats.record("a", "sent", 3 * DAY, count=100)
    stats.record("a", "bounce", 3 * DAY, count=10)
    assert stats.counts("a", 3 * DAY) == (400.0, 10.0, 0.0)
    assert stats.rates("a", 7 * DAY) == (100.0, 0.1, 0.0)
    assert stats.rates("nobody", 0.0) == (0.0, 0.0, 0.0)


def test_suspension_is_sticky_or_lasts_duration():
    s = SenderSuspension(duration=DAY)
    s.record("a", "sent", 0.0, count=200)
    s.record("a", "bounce", 0.0, count=20)
    assert s.suspended("a", DAY - 1)
    assert s.suspended("a", DAY)  # window still bad: suspended again at once
    assert not s.suspended("a", 8 * DAY + 1)  # the bad week has left the window
    sticky = SenderSuspension()
    sticky.record("a", "sent", 0.0, count=200)
    sticky.record("a", "bounce", 0.0, count=20)
    assert sticky.suspended("a", 30 * DAY)


# -- warm-up -------------------------------------------------------------------------------


def test_warmup_daily_caps():
    w = WarmupSchedule([2, 3], starts={"10.0.0.1": 100.0})
    assert [w.admit("10.0.0.1", 100.0 + i) for i in range(3)] == [True, True, False]
    assert w.limit("10.0.0.1", 100.0 + DAY - 1) == 2
    assert w.day("10.0.0.1", 100.0 + DAY) == 1
    assert [w.admit("10.0.0.1", 100.0 + DAY) for _ in range(4)] == [True, True, True, False]
    assert w.sent_today("10.0.0.1", 100.0 + DAY) == 3
    assert w.limit("10.0.0.1", 100.0 + 2 * DAY) == math.inf
    assert all(w.admit("10.0.0.1", 100.0 + 2 * DAY) for _ in range(1000))


def test_warmup_unregistered_ips_are_uncapped_and_default_schedule():
    w = WarmupSchedule.from_config(WarmupConfig(ips=["10.0.0.2"]))
    assert w.limit("10.0.0.9", 0.0) == math.inf
    assert [w.limit("10.0.0.2", d * DAY) for d in range(3)] == [50, 100, 500]
    assert w.day("10.0.0.2", -1.0) is None


# -- IP pools ------------------------------------------------------------------------------

POOL = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_by_class_pools():
    a = PoolAssigner(
        "by-class",
        {"transactional": ["10.1.0.1"], "marketing": ["10.2.0.1"], "default": ["10.9.0.1"]},
    )
    assert a.pick("s", "transactional") == "10.1.0.1"
    assert a.pick("s", "marketing") == "10.2.0.1"
    assert a.pick("s", "spammer") == "10.9.0.1"
    b = PoolAssigner("by-class", {"transactional": ["10.1.0.1"]})
    with pytest.raises(KeyError):
        b.pick("s", "marketing")


def test_by_reputation_moves_bad_senders():
    stats = SenderStats()
    a = PoolAssigner(
        "by-reputation",
        {"good": ["10.1.0.1"], "bad": ["10.6.0.1"], "new": ["10.5.0.1"]},
        stats=stats,
        min_volume=100,
    )
    assert a.pick("fresh") == "10.5.0.1"
    stats.record("clean", "sent", 0.0, count=500)
    stats.record("clean", "bounce", 0.0, count=5)
    stats.record("dirty", "sent", 0.0, count=500)
    stats.record("dirty", "complaint", 0.0, count=1)
    assert a.pick("clean", now=1.0) == "10.1.0.1"
    assert a.pick("dirty", now=1.0) == "10.6.0.1"
    assert a.pick("dirty", now=8 * DAY) == "10.5.0.1"  # history left the window
    without_new = PoolAssigner("by-reputation", {"good": ["g"], "bad": ["b"]}, stats=stats)
    assert without_new.pick("fresh") == "g"
    with pytest.raises(ValueError, match="needs stats"):
        PoolAssigner("by-reputation", {"good": ["g"], "bad": ["b"]})


def test_dedicated_ips():
    a = PoolAssigner(
        "dedicated",
        {"shared": POOL},
        dedicated={"bank@b.example": "10.8.0.1", "shop@s.example": ["10.8.0.2", "10.8.0.3"]},
    )
    assert [a.pick("bank@b.example") for _ in range(2)] == ["10.8.0.1"] * 2
    assert a.pick("shop@s.example") == "10.8.0.2"
    assert a.pick("other@o.example", now=HOUR) == POOL[0]
    assert a.pick("other@o.example", now=HOUR) == POOL[1]


def test_pool_configuration_errors():
    with pytest.raises(ValueError, match="unknown pool strategy"):
        PoolAssigner("shared", {"a": POOL})  # one shared pool needs no assigner
    with pytest.raises(ValueError, match="needs pools"):
        PoolAssigner("dedicated", {"a": POOL})
    with pytest.raises(ValueError, match="unknown pool strategy"):
        PoolAssigner("random", {"a": POOL})
    with pytest.raises(ValueError, match="has no IPs"):
        PoolAssigner("by-class", {"a": []})
