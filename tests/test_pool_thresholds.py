"""``pool_thresholds``: the lines at which pools by reputation move a sender to ``bad``
are the scenario's, not fixed."""

from __future__ import annotations

import pytest

from mailnet.errors import ScenarioError
from mailnet.policies.outbound_controls import PoolAssigner, SenderStats
from tests.conftest import build, one_mx_world

POOLS = {"good": ["198.51.100.1"], "bad": ["198.51.100.2"]}


def _provider(**thresholds: object):
    raw = one_mx_world()
    raw["providers"]["isp"]["ips"] = ["198.51.100.1", "198.51.100.2"]
    changes = {"providers__isp__pool_strategy": "by-reputation", "providers__isp__pools": POOLS}
    if thresholds:
        changes["providers__isp__pool_thresholds"] = thresholds
    return build(raw, **changes).providers["isp"]


def test_defaults_are_the_ses_review_lines() -> None:
    assigner = PoolAssigner.for_provider(_provider(), SenderStats())
    assert assigner is not None
    assert (assigner.bad_bounce_rate, assigner.bad_complaint_rate) == (0.05, 0.001)
    assert assigner.min_volume == 200


def test_thresholds_decide_the_pool() -> None:
    stats = SenderStats()
    stats.record("s@isp.example", "sent", 0.0, 10)
    stats.record("s@isp.example", "bounce", 0.0, 1)  # 10 % bounces over 10 messages
    strict = PoolAssigner.for_provider(_provider(bounce_rate=0.08, min_volume=10), stats)
    lenient = PoolAssigner.for_provider(_provider(bounce_rate=0.2, min_volume=10), stats)
    too_few = PoolAssigner.for_provider(_provider(bounce_rate=0.08, min_volume=11), stats)
    assert strict is not None
    assert lenient is not None
    assert too_few is not None
    assert strict.pool_of("s@isp.example", now=1.0) == "bad"
    assert lenient.pool_of("s@isp.example", now=1.0) == "good"
    assert too_few.pool_of("s@isp.example", now=1.0) == "good"


@pytest.mark.parametrize("bad", [{"bounce_rate": 0}, {"complaint_rate": 1.5}, {"min_volume": 0}])
def test_bad_thresholds_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ScenarioError, match="pool_thresholds"):
        _provider(**bad)
