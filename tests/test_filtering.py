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
        hits = sum(f.place(is_spam, score) == wrong for _ in range(N))
        tolerance = 4 * math.sqrt(p * (1 - p) / N)  # 4 standard errors
        assert abs(hits / N - p) < tolerance


def test_placements_are_inbox_or_spam_and_reproducible():
    a = [_filter(seed=3).place(i % 2 == 0, 0.3) for i in range(200)]
    f1, f2 = _filter(seed=3), _filter(seed=3)
    b = [f1.place(i % 2 == 0, 0.3) for i in range(200)]
    c = [f2.place(i % 2 == 0, 0.3) for i in range(200)]
    assert set(b) <= {"inbox", "spam"}
    assert b == c
    assert a[0] == b[0]


def test_extreme_rates_are_certain():
    f = _filter(fp_base=0.0, fn_base=0.0, fp_worst=1.0, fn_worst=0.0)
    assert all(f.place(False, 1.0) == "inbox" for _ in range(100))
    assert all(f.place(False, 0.0) == "spam" for _ in range(100))
    assert all(f.place(True, 0.7) == "spam" for _ in range(100))


def test_bad_inputs():
    with pytest.raises(ValueError, match="must be a probability"):
        _filter(fp_base=1.5)
    with pytest.raises(ValueError, match="score must be in"):
        _filter().place(False, 1.2)


def test_blame_splits_a_misfiling_by_whose_evidence_explains_it():
    f = _filter(fp_base=0.0, fn_base=0.0, fp_worst=1.0, fn_worst=0.0)  # fp = 1 - score
    # scores: actual 0.4, without others' evidence 0.7, without any earned evidence 0.9
    scores = (0.4, 0.7, 0.9)
    assert f.place(False, 0.4, 0.5) == "spam"
    assert f.blame(0.5, scores) == "others"  # fp 0.3 without others: 0.5 would be inbox
    assert f.blame(0.2, scores) == "own"  # still misfiled at 0.7, not at 0.9 (fp 0.1)
    assert f.blame(0.05, scores) is None  # misfiled even with no earned evidence
    assert f.place(False, 0.4, 0.7) == "inbox"


def _receiver(**filter_config):
    from mailnet.model.receiver import BlocklistNetwork, Receiver
    from mailnet.scenario import Receiver as ReceiverConfig

    config = ReceiverConfig.model_validate(
        {
            "reputation": {"throttle_below": 0.0, "reject_below": 0.0, "domain": False},
            "filter": filter_config,
        }
    )
    return Receiver("r", config, BlocklistNetwork({}), np.random.default_rng(1))


def _message(group: str, sender_class: str, n: int = 1):
    from mailnet.model.message import MessageFactory
    from mailnet.records import MessageTable

    factory = MessageFactory(None, MessageTable())  # type: ignore[arg-type]
    factory.env = type("Env", (), {"_now": 0.0})()  # type: ignore[assignment]
    return factory.new(
        f"{group}0@isp.example",
        sender_class,
        "isp",
        [f"u{i}@dest.example" for i in range(n)],
        is_dsn=False,
        group=group,
    )


def test_receiver_files_and_learns_from_what_it_filed():
    """The receiver's filing: the filter at the client's score, reputation evidence, and
    who earned a misfiling: others' spam (collateral), the group's own, or nobody."""
    receiver = _receiver(fp_base=0.0, fn_base=0.0, fp_worst=1.0, fn_worst=0.0)
    ip = "198.51.100.9"
    ham = _message("users", "ham", 1)
    assert receiver.file(ham, "u0@dest.example", ip, 0.0) == ("inbox", None)  # prior 1
    spam = _message("spammer", "spam", 50)
    for rcpt in spam.recipients():
        assert receiver.file(spam, rcpt, ip, 0.0) == ("spam", None)
    assert receiver.score(ip, 0.0) < 0.2
    hams = _message("users", "ham", 40)
    causes = {receiver.file(hams, r, ip, 0.0)[1] for r in hams.recipients()}
    assert causes >= {"filter"}  # misfiled for what the spammer earned on the address
    assert not {c for c in causes if c is not None} - {"filter"}
    # a group's own complaints: its mail misfiled for them is self-inflicted
    receiver2 = _receiver(fp_base=0.0, fn_base=0.0, fp_worst=1.0, fn_worst=0.0)
    for _ in range(50):
        receiver2.observe("complaint", ip, 0.0, ham)
    other = _message("users", "ham", 10)
    filed = [receiver2.file(other, r, ip, 0.0) for r in other.recipients()]
    # (None: misfiled even without the complaints, by the filter's own earlier errors)
    assert {cause for folder, cause in filed if folder == "spam"} <= {"self:filter", None}
    assert [cause for _, cause in filed].count("self:filter") >= 5


def test_ordinary_false_positives_are_neither():
    """Ham misfiled only by the filter's own errors (and the evidence they leave) is
    never collateral nor self-inflicted."""
    receiver = _receiver(fp_base=0.3, fn_base=0.0, fp_worst=0.9, fn_worst=0.0)
    ip = "198.51.100.9"
    folders, causes = [], set()
    for _ in range(50):
        message = _message("users", "ham", 20)
        for r in message.recipients():
            folder, cause = receiver.file(message, r, ip, 0.0)
            folders.append(folder)
            causes.add(cause)
    assert folders.count("spam") > 100  # the filter's own errors lowered the score too
    assert receiver.score(ip, 0.0) < 0.8
    assert causes == {None}


def test_receiver_without_filter_files_everything_to_the_inbox():
    from mailnet.model.receiver import BlocklistNetwork, Receiver
    from mailnet.scenario import Receiver as ReceiverConfig

    plain = Receiver("plain", ReceiverConfig(), BlocklistNetwork({}), np.random.default_rng(1))
    spam = _message("spammer", "spam")
    assert plain.file(spam, "u0@dest.example", "198.51.100.9", 0.0) == ("inbox", None)
