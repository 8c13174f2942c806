"""Content filter placement rates against their formula, with fixed seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mailnet.policies.filtering import ContentFilter

N = 40_000


def _filter(seed: int = 7, **kwargs) -> ContentFilter:
    return ContentFilter(rng=np.random.default_rng(seed), **kwargs)


def test_rates_are_linear_in_score():
    f = _filter(fp_base=0.01, fn_base=0.10, fp_worst=0.30, fn_worst=0.02)
    assert f.fp_rate(1.0) == pytest.approx(0.01)
    assert f.fp_rate(0.0) == pytest.approx(0.30)
    assert f.fp_rate(0.5) == pytest.approx(0.155)
    assert f.fn_rate(1.0) == pytest.approx(0.10)
    assert f.fn_rate(0.0) == pytest.approx(0.02)
    assert f.fn_rate(0.25) == pytest.approx(0.04)


def test_rates_move_the_right_way_as_score_falls():
    f = _filter()
    scores = np.linspace(1.0, 0.0, 11)
    fps = [f.fp_rate(s) for s in scores]
    fns = [f.fn_rate(s) for s in scores]
    assert all(a < b for a, b in itertools.pairwise(fps))
    assert all(a > b for a, b in itertools.pairwise(fns))


@pytest.mark.parametrize("score", [1.0, 0.5, 0.1])
def test_observed_placement_matches_the_rates(score):
    f = _filter(seed=11, fp_base=0.01, fn_base=0.10, fp_worst=0.30, fn_worst=0.02)
    for is_spam, p, wrong in ((False, f.fp_rate(score), "spam"), (True, f.fn_rate(score), "inbox")):
        hits = sum(f.place(is_spam, score)[0] == wrong for _ in range(N))
        tolerance = 4 * math.sqrt(p * (1 - p) / N)  # 4 standard errors
        assert abs(hits / N - p) < tolerance


def test_placements_are_inbox_or_spam_and_reproducible():
    a = [_filter(seed=3).place(i % 2 == 0, 0.3)[0] for i in range(200)]
    f1, f2 = _filter(seed=3), _filter(seed=3)
    b = [f1.place(i % 2 == 0, 0.3)[0] for i in range(200)]
    c = [f2.place(i % 2 == 0, 0.3)[0] for i in range(200)]
    assert set(b) <= {"inbox", "spam"}
    assert b == c
    assert a[0] == b[0]


def test_extreme_rates_are_certain():
    f = _filter(fp_base=0.0, fn_base=0.0, fp_worst=1.0, fn_worst=0.0)
    assert all(f.place(False, 1.0)[0] == "inbox" for _ in range(100))
    assert all(f.place(False, 0.0)[0] == "spam" for _ in range(100))
    assert all(f.place(True, 0.7)[0] == "spam" for _ in range(100))


def test_bad_inputs():
    with pytest.raises(ValueError, match="must be a probability"):
        _filter(fp_base=1.5)
    with pytest.raises(ValueError, match="score must be in"):
        _filter().place(False, 1.2)


def test_receiver_files_and_learns_from_what_it_filed():
    """The receiver's filing: the filter at the client's score, and reputation evidence."""
    from mailnet.model.receiver import BlocklistNetwork, Receiver
    from mailnet.scenario import Receiver as ReceiverConfig

    config = ReceiverConfig.model_validate(
        {
            "reputation": {"throttle_below": 0.0, "reject_below": 0.0},
            "filter": {"fp_base": 0.0, "fn_base": 0.0, "fp_worst": 1.0, "fn_worst": 0.0},
        }
    )
    receiver = Receiver("r", config, BlocklistNetwork({}), np.random.default_rng(1))
    ip = "198.51.100.9"
    assert receiver.file(False, ip, 0.0) == ("inbox", False)  # prior score 1: never misfiled
    for _ in range(50):
        receiver.observe("trap", ip, 0.0)
    assert receiver.score(ip, 0.0) < 0.01
    folder, by_score = receiver.file(False, ip, 0.0)
    assert (folder, by_score) == ("spam", True)  # ham misfiled for the address's record
    assert receiver.file(True, ip, 0.0) == ("spam", False)
    without = Receiver("plain", ReceiverConfig(), BlocklistNetwork({}), np.random.default_rng(1))
    assert without.file(True, ip, 0.0) == ("inbox", False)
