"""Receiver IP reputation: score formula, monotonicity, decay, graded replies, token bucket;
and the experiments over the reputation model's unpublished parameters."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mailnet import load_scenario
from mailnet.policies.blocklist_presets import PRESETS
from mailnet.policies.reputation import ReputationTable, TokenBucket, reject_reply
from mailnet.scenario import Scenario
from mailnet.smtp import Reply
from mailnet.sweep.experiment import load_experiment
from mailnet.sweep.sensitivity import load_sensitivity
from mailnet.units import DAY, MINUTE

IP = "198.51.100.7"


# -- token bucket -----------------------------------------------------------------------


def test_token_bucket_burst_then_rate():
    b = TokenBucket(rate=0.1, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not b.take(9.999)
    assert b.take(10.0)
    assert not b.take(10.0)
    assert b.take(20.0)


def test_token_bucket_refill_caps_at_burst():
    b = TokenBucket(rate=1.0, burst=2)
    b.take(0.0)
    b.take(0.0)
    assert b.available(1000.0) == 2.0
    assert [b.take(1000.0) for _ in range(3)] == [True, True, False]


def test_token_bucket_per_minute_rate_is_exact():
    b = TokenBucket(rate=1 / 60, burst=1)
    admitted = [t for t in range(0, 600, 1) if b.take(float(t))]
    assert admitted == [0, 60, 120, 180, 240, 300, 360, 420, 480, 540]


def test_token_bucket_without_rate_and_errors():
    b = TokenBucket(rate=0.0, burst=1)
    b.take(0.0)
    assert not b.take(6.0)
    with pytest.raises(ValueError, match="time went back"):
        b.take(0.5)  # time went back
    with pytest.raises(ValueError, match="token bucket needs"):
        TokenBucket(rate=1.0, burst=0.5)


# -- score -------------------------------------------------------------------------------


def test_unknown_ip_scores_the_prior():
    assert ReputationTable().score(IP, 0.0) == 1.0
    assert ReputationTable(prior=0.5).score(IP, 0.0) == 0.5


def test_score_formula():
    t = ReputationTable(prior=1.0, prior_weight=10.0)
    t.observe("ham", IP, 0.0, count=70)
    t.observe("spam", IP, 0.0, count=20)
    assert t.score(IP, 0.0) == pytest.approx((10 + 70) / (10 + 70 + 20))
    t.observe("complaint", IP, 0.0)
    assert t.evidence(IP, 0.0) == (70.0, 120.0)


@pytest.mark.parametrize("kind", ["spam", "trap", "complaint"])
def test_bad_evidence_lowers_the_score_monotonically(kind):
    t = ReputationTable()
    t.observe("ham", IP, 0.0, count=100)
    scores = [t.score(IP, 0.0)]
    for _ in range(5):
        t.observe(kind, IP, 0.0)
        scores.append(t.score(IP, 0.0))
    assert all(a > b for a, b in itertools.pairwise(scores))
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_heavier_kinds_hurt_more():
    scores = {}
    for kind in ("spam", "trap", "complaint"):
        t = ReputationTable()
        t.observe("ham", IP, 0.0, count=1000)
        t.observe(kind, IP, 0.0)
        scores[kind] = t.score(IP, 0.0)
    assert scores["spam"] > scores["trap"] > scores["complaint"]


def test_ham_raises_the_score():
    t = ReputationTable()
    t.observe("spam", IP, 0.0, count=50)
    before = t.score(IP, 0.0)
    t.observe("ham", IP, 0.0, count=50)
    assert t.score(IP, 0.0) > before


def test_evidence_halves_every_half_life_and_score_recovers():
    t = ReputationTable(half_life=7 * DAY)
    t.observe("spam", IP, 0.0, count=100)
    assert t.evidence(IP, 7 * DAY) == (0.0, pytest.approx(50.0))
    assert t.evidence(IP, 14 * DAY) == (0.0, pytest.approx(25.0))
    scores = [t.score(IP, d * DAY) for d in range(14, 200, 7)]
    assert all(a < b for a, b in itertools.pairwise(scores))
    assert scores[-1] == pytest.approx(1.0, abs=1e-3)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown evidence kind"):
        ReputationTable().observe("virus", IP, 0.0)
    with pytest.raises(ValueError, match="unknown evidence kinds"):
        ReputationTable(weights={"virus": 3.0})


# -- decide ------------------------------------------------------------------------------


def _table_at(score_target: str, **kwargs) -> ReputationTable:
    kwargs = {"throttle_below": 0.8, "reject_below": 0.5, **kwargs}
    t = ReputationTable(prior_weight=10.0, **kwargs)
    if score_target == "throttled":  # (10 + 60) / (10 + 60 + 30) = 0.7
        t.observe("ham", IP, 0.0, count=60)
        t.observe("spam", IP, 0.0, count=30)
    elif score_target == "rejected":  # 10 / (10 + 20) = 0.33
        t.observe("spam", IP, 0.0, count=20)
    return t


def test_good_ip_is_accepted():
    t = _table_at("good")
    assert all(t.decide(IP, float(i)) is None for i in range(100))


def test_bad_ip_is_rejected_with_550():
    t = _table_at("rejected", style="microsoft")
    reply = t.decide(IP, 0.0)
    assert (reply.code, reply.enhanced) == (550, "5.7.1")
    assert "S3150" in reply.text
    assert IP in reply.text


@pytest.mark.parametrize(
    ("style", "code", "enhanced"),
    [("gmail", 421, "4.7.28"), ("microsoft", 451, "4.7.650"), ("yahoo", 421, "4.7.0")],
)
def test_throttled_ip_gets_burst_then_rate(style, code, enhanced):
    t = _table_at("throttled", style=style, throttle_rate=1 / MINUTE, throttle_burst=2)
    assert t.decide(IP, 0.0) is None
    assert t.decide(IP, 0.0) is None
    deferred = t.decide(IP, 1.0)
    assert (deferred.code, deferred.enhanced) == (code, enhanced)
    assert deferred.transient
    assert t.decide(IP, 59.0) is not None
    assert t.decide(IP, 60.0) is None
    assert t.decide(IP, 61.0) is not None


def test_throttle_is_per_ip():
    t = _table_at("throttled", throttle_burst=1)
    t.observe("ham", "192.0.2.1", 0.0)
    assert t.decide(IP, 0.0) is None
    assert t.decide(IP, 0.0) is not None
    assert t.decide("192.0.2.1", 0.0) is None


def test_reply_styles():
    assert reject_reply("gmail", IP) == Reply(
        550,
        "5.7.1",
        f"[{IP}] Our system has detected an unusual rate of unsolicited mail "
        "originating from your IP address. To protect our users from spam, mail "
        "sent from your IP address has been blocked.",
    )
    with pytest.raises(ValueError, match="unknown reply style"):
        ReputationTable(style="aol")


# -- the experiments over the unpublished parameters --------------------------------------

SWEEPS = Path(__file__).parent.parent / "experiments" / "sweeps"
HEADLINE = SWEEPS.parent / "scenarios" / "shared_ip_spam.toml"


def _value(scenario: Scenario, key: str) -> object:
    """The value ``key`` (dotted, as swept) takes in ``scenario``, in seconds and events
    per second; a blocklist key the scenario leaves to its preset has the preset's."""
    value: object = scenario
    for part in key.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    if value is None and key.startswith("blocklists."):
        _, name, field = key.split(".")
        value = PRESETS[scenario.blocklists[name].preset][field]  # type: ignore[index]
    return value


def test_the_ranges_experiment_moves_one_parameter_at_a_time_from_the_defaults() -> None:
    """blocklist_ranges.toml: arm 0 is the base scenario as it stands (preset values
    included), each other arm moves exactly one swept key away from it, to the low then
    the high end of its range, and every arm is compared with the defaults."""
    experiment = load_experiment(SWEEPS / "blocklist_ranges.toml")
    assert experiment.baseline == 0
    base = load_scenario(HEADLINE)
    keys = [f.key for f in experiment.linked]
    points = [Scenario.from_dict(p.scenario) for p in experiment.points]
    assert [_value(points[0], k) for k in keys] == [_value(base, k) for k in keys]
    assert len(points) == 1 + 2 * len(keys)
    for i, key in enumerate(keys):
        low, high = experiment.points[1 + 2 * i], experiment.points[2 + 2 * i]
        assert (low.label, high.label) == (f"{_short(key)} low", f"{_short(key)} high")
        for point in (points[1 + 2 * i], points[2 + 2 * i]):
            moved = [k for k in keys if _value(point, k) != _value(base, k)]
            assert moved == [key], (key, moved)
        assert _value(points[1 + 2 * i], key) < _value(base, key) < _value(points[2 + 2 * i], key)


def _short(key: str) -> str:
    """An arm's label: the key without its section and, for a receiver or sender group,
    its name (``blocklists.css.window`` -> ``css.window``; receivers' keys drop the
    receiver: ``reputation.half_life``)."""
    parts = key.split(".")
    return ".".join(parts[2:] if parts[0] == "receivers" else parts[1:])


def test_the_sensitivity_experiment_spans_every_default_and_names_its_metrics() -> None:
    """sensitivity.toml: each range holds the base scenario's value, its keys are those of
    blocklist_ranges.toml, and the analysis names the collateral question's metrics."""
    experiment, design = load_sensitivity(SWEEPS / "sensitivity.toml")
    base = load_scenario(HEADLINE)
    for key, (low, high) in zip(design.keys, design.problem["bounds"], strict=True):
        assert low <= _value(base, key) <= high, key
    ranges = load_experiment(SWEEPS / "blocklist_ranges.toml")
    assert set(design.keys) == {f.key for f in ranges.linked}
    assert design.metrics == (
        "collateral.rate",
        "legitimate.bounce_rate",
        "legitimate.deferral_rate",
    )
    assert len(experiment.points) == design.sample.shape[0]
    for point in (experiment.points[0], experiment.points[-1]):  # [grid] fixes one day
        assert Scenario.from_dict(point.scenario).simulation.duration == DAY


def test_the_mitigations_experiment_gives_the_spammer_a_domain_of_its_own() -> None:
    """mitigations.toml: in the "own sending domain" arm only the spammer signs with a
    domain of its own; in every other arm it signs with the provider's shared domain, as
    it does without a domain (the base scenario)."""
    experiment = load_experiment(SWEEPS / "mitigations.toml")
    for point in experiment.points:
        senders = Scenario.from_dict(point.scenario).senders
        own = point.label == "own sending domain"
        assert senders["spammer"].domain == ("spammer-mail.example" if own else "isp.example")
        assert senders["users"].domain is None
        assert senders["newsletter"].domain is None
    assert load_scenario(HEADLINE).providers["isp"].local_domains[0] == "isp.example"
