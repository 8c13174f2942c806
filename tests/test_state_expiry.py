"""State that grows with time is dropped once it can no longer change a decision.

Each pruned state has a test that an entry that still matters is kept and one that
cannot matter is dropped, and that answers stay those of the same state never pruned.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mailnet.model import mailbox as mailbox_module
from mailnet.model.mailbox import Mailboxes
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.greylisting import Greylist
from mailnet.policies.traps import TrapFeed
from mailnet.randomness import RandomStreams
from mailnet.records import MessageTable
from mailnet.scenario import Domain
from mailnet.units import DAY, HOUR

IP = "198.51.100.7"
SENDER = "alice@isp.example"


# -- greylist triplets and auto-whitelist ----------------------------------------------


def test_greylist_keeps_a_passed_triplet_seen_within_max_age_and_drops_a_forgotten_one():
    g = Greylist(max_age=DAY, auto_whitelist_clients=0)
    assert g.check(IP, SENDER, "old@dest.example", 0.0) is not None
    assert g.check(IP, SENDER, "old@dest.example", 300.0) is None  # passed, last seen 300 s
    assert g.check(IP, SENDER, "kept@dest.example", 0.5 * DAY) is not None
    assert g.check(IP, SENDER, "kept@dest.example", 0.5 * DAY + 300) is None
    # the first lookup after max_age + 1 h rotates: both move to the older generation
    assert g.check(IP, SENDER, "other@dest.example", DAY + HOUR) is not None
    assert g.sizes()["triplets"] == 3
    # still within max_age of its last sighting: passes at once, from the older generation
    assert g.check(IP, SENDER, "kept@dest.example", 1.4 * DAY) is None
    # the next rotation drops the older generation: "old" (forgotten since 1 d + 300 s)
    assert g.check(IP, SENDER, "x@dest.example", 2 * DAY + 2 * HOUR + 1) is not None
    assert g.sizes()["triplets"] == 3  # kept, other, x
    # forgotten means greylisted again, as postgrey answers after its nightly sweep
    assert g.check(IP, SENDER, "old@dest.example", 2 * DAY + 3 * HOUR) is not None


def test_greylist_drops_forgotten_auto_whitelisted_clients_at_rotation():
    g = Greylist(max_age=DAY, auto_whitelist_clients=1)
    g.check(IP, SENDER, "a@dest.example", 0.0)
    assert g.check(IP, SENDER, "a@dest.example", 300.0) is None
    g.check("192.0.2.1", SENDER, "a@dest.example", 0.9 * DAY)
    assert g.check("192.0.2.1", SENDER, "a@dest.example", 0.9 * DAY + 300) is None
    assert g.sizes()["clients"] == 2
    g.check("203.0.113.1", SENDER, "a@dest.example", DAY + HOUR)  # rotation
    assert g.sizes()["clients"] == 1  # 198.51.100.0/24, unseen for more than a day
    assert g.whitelisted("192.0.2.1", DAY + HOUR)


@pytest.mark.parametrize("auto_whitelist_clients", [0, 3])
def test_greylist_answers_as_a_table_that_never_forgets(auto_whitelist_clients):
    """A random sequence of lookups across many rotations, with quiet spells longer than
    ``max_age``, gets the same answers from a pruned greylist as from one that keeps
    everything, and the pruned one stays small."""

    def greylist() -> Greylist:
        return Greylist(300.0, HOUR, 2 * HOUR, auto_whitelist_clients)

    pruned, reference = greylist(), greylist()
    reference._rotate_at = math.inf
    rng = np.random.default_rng(7)
    t = 0.0
    for _ in range(20_000):
        t += float(rng.exponential(60.0)) + (3 * HOUR if rng.random() < 0.002 else 0.0)
        ip = f"198.51.{rng.integers(10)}.{rng.integers(3)}"
        sender = f"s{rng.integers(3)}@isp.example"
        rcpt = f"u{rng.integers(20)}@dest.example"
        assert pruned.check(ip, sender, rcpt, t) == reference.check(ip, sender, rcpt, t)
        assert pruned.whitelisted(ip, t) == reference.whitelisted(ip, t)
    assert t > 100 * HOUR  # about 40 rotations
    assert pruned.sizes()["triplets"] < reference.sizes()["triplets"] / 2


# -- the lists' trap hits ---------------------------------------------------------------


def _feed(window: float) -> TrapFeed:
    lists = {"bl": Blocklist("bl", trap_hits=1, window=window, duration=HOUR)}
    rng = np.random.default_rng(1)
    return TrapFeed(lists, {"bl": {"spam": 1.0}}, lambda _list, _group: rng)


def test_trap_hits_are_kept_for_the_longest_window_and_then_dropped():
    feed = _feed(window=DAY)
    feed.sent("spam", "a@isp.example", IP, 1, 0.0)
    feed.sent("spam", "b@isp.example", IP, 1, DAY)
    assert len(feed.hits) == 2  # the first is exactly one window old: it still counts
    assert feed.senders("bl", IP, since=0.0) == ["a@isp.example", "b@isp.example"]
    feed.sent("spam", "c@isp.example", IP, 1, 2 * DAY)
    assert [h[4] for h in feed.hits] == ["b@isp.example", "c@isp.example"]


def test_trap_hits_are_kept_as_long_as_a_reader_looks_back():
    feed = _feed(window=DAY)
    feed.retain(DAY + 6 * HOUR)  # a quarantine 6 h after a listing reads a day back
    feed.sent("spam", "a@isp.example", IP, 1, 0.0)
    feed.sent("spam", "b@isp.example", IP, 1, DAY + 6 * HOUR)
    assert feed.senders("bl", IP, since=0.0) == ["a@isp.example", "b@isp.example"]
    feed.sent("spam", "c@isp.example", IP, 1, DAY + 6 * HOUR + 2.0)
    assert feed.senders("bl", IP, since=0.0) == ["b@isp.example", "c@isp.example"]


# -- POP poll phases ----------------------------------------------------------------------


def test_poll_phases_are_recomputed_after_the_cache_is_cleared(monkeypatch):
    def retrievals() -> tuple[list[float], int]:
        rng = RandomStreams(3).get("mailboxes")
        boxes = Mailboxes({"dest.example": Domain()}, 10 * DAY, MessageTable(), rng)
        times, most = [], 0
        for i in range(40):
            for rcpt in (f"u{i}@dest.example", "alice@dest.example"):
                times.append(boxes.retrieval_time(rcpt, "dest.example", 1000.0 * i))
            most = max(most, len(boxes._phase))
        return times, most

    expected, cached = retrievals()
    assert cached == 41
    monkeypatch.setattr(mailbox_module, "PHASE_CACHE", 8)
    assert retrievals() == (expected, 8)
