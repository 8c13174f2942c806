"""State that grows with time is dropped once it can no longer change a decision.

Each pruned state has a test that an entry that still matters is kept and one that
cannot matter is dropped, and that answers stay those of the same state never pruned.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import simpy

from mailnet.model import mailbox as mailbox_module
from mailnet.model.mailbox import Mailboxes
from mailnet.model.outbound import OutboundMta
from mailnet.model.receiver import Receiver
from mailnet.model.world import World
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.greylisting import Greylist
from mailnet.policies.reputation import TokenBucket, TokenBuckets
from mailnet.policies.traps import TrapFeed
from mailnet.randomness import RandomStreams
from mailnet.records import EventLog, MessageTable
from mailnet.scenario import Domain, Scenario
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


# -- blocklist expiries ------------------------------------------------------------------


def test_a_listing_extended_by_every_hit_queues_one_expiry_check():
    bl = Blocklist("bl", trap_hits=1, duration=DAY, removal_delay=HOUR)
    for i in range(1000):
        bl.observe("trap", IP, None, i * 60.0)
    assert len(bl._expiries) == 1  # the first listing's check, at 1 d
    last = 999 * 60.0
    assert bl.expires_at(IP) == last + DAY
    bl.advance(DAY)  # the check comes due, finds the extension and queues the real end
    assert bl.listed(IP) is not None
    assert len(bl._expiries) == 1
    # a removal moves the end before the queued check: one more entry, the old one stale
    assert bl.request_removal(IP, DAY + 60.0) == DAY + 60.0 + HOUR
    assert len(bl._expiries) == 2
    bl.advance(last + DAY)
    (record,) = bl.records
    assert (record.delisted_at, record.ended) == (DAY + 60.0 + HOUR, "removal")
    assert not bl._expiries


# -- per-recipient rate limits --------------------------------------------------------------


def test_rate_buckets_drop_full_buckets_and_answer_as_if_kept():
    rate, burst = 1 / 60, 3.0  # a bucket refills from empty in 3 min
    pruned, kept = TokenBuckets(rate, burst), {}
    rng = np.random.default_rng(5)
    t = 0.0
    for _ in range(5000):
        t += float(rng.exponential(5.0))
        key = f"u{rng.integers(30)}"
        if key not in kept:
            kept[key] = TokenBucket(rate, burst, t)
        assert pruned.take(key, t) == kept[key].take(t)
    assert len(pruned) < len(kept)


def test_rate_buckets_keep_a_bucket_that_is_not_full():
    buckets = TokenBuckets(1 / 60, 2.0)
    assert buckets.take("a", 0.0)
    assert buckets.take("a", 0.0)
    assert buckets.take("b", 60.0)
    # at 120 s, the sweep: "a" has refilled 2 tokens (full, dropped), "b" 1 + 1 (full)
    assert buckets.take("c", 119.0)
    assert len(buckets) == 3
    assert buckets.take("c", 120.0)
    assert len(buckets) == 1  # only "c", which has spent both tokens since 119 s
    assert not buckets.take("c", 121.0)


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


# -- a steady world stays flat ------------------------------------------------------------


def _steady_world() -> dict:
    """Three providers (Postfix with removal requests, quarantine and suspension; Exim
    with host retry records; Sendmail with its host status cache) mailing two receivers
    day after day: one with a blocklist, reputation, a filter, full mailboxes and a
    backup MX, one greylisting and rate-limiting each recipient, with DNS faults; a
    spammer hits three lists' traps."""
    lists = {"css": "spamhaus-css", "spamcop": "spamcop", "uceprotect": "uceprotect"}
    return {
        "simulation": {"duration": "90d", "seed": 3},
        "providers": {
            "isp": {
                "ips": [f"198.51.100.{i}" for i in range(1, 5)] + ["203.0.113.10"],
                "asn": 64500,
                "asn_size": 4096,
                "local_domains": ["isp.example"],
                "removal_requests": {"after": "4h"},
                "quarantine": {"ips": ["203.0.113.10"], "after": "1h", "duration": "2d"},
                "suspension": {"bounce_rate": 0.3, "complaint_rate": 0.05, "duration": "1d"},
            },
            "exim": {"ips": ["192.0.2.1"], "local_domains": ["exim.example"], "retry": "exim"},
            "sm": {"ips": ["192.0.2.20"], "local_domains": ["sm.example"], "retry": "sendmail"},
        },
        "senders": {
            "users": {
                "provider": "isp",
                "count": 60,
                "rate": "3/d",
                "recipients": 1.2,
                "invalid_recipients": 0.02,
                "domains": {"bigmail.example": 0.6, "corp.example": 0.3, "isp.example": 0.1},
            },
            **{
                f"{p}users": {
                    "provider": p,
                    "count": 20,
                    "rate": "3/d",
                    "domains": {"bigmail.example": 0.5, "corp.example": 0.5},
                }
                for p in ("exim", "sm")
            },
            "spammer": {
                "provider": "isp",
                "class": "spam",
                "rate": "60/d",
                "invalid_recipients": 0.15,
                "traps": 0.01,
                "complaints": 0.003,
                "domains": {"bigmail.example": 0.7, "corp.example": 0.3},
            },
        },
        "blocklists": {
            name: {"preset": preset, "traps": {"spammer": 0.1}} for name, preset in lists.items()
        },
        "receivers": {
            "bigmail": {
                "blocklists": {"css": "reject"},
                "reputation": {"half_life": "3d"},
                "filter": {"fp_base": 0.002, "fn_base": 0.1},
            },
            "corp": {
                "blocklists": {"spamcop": "defer"},
                "greylisting": {"max_age": "2d", "retry_window": "1d", "auto_whitelist_clients": 0},
            },
        },
        "domains": {
            "bigmail.example": {
                "mx": [
                    {"host": "mx1.bigmail.example", "preference": 10},
                    {"host": "backup.bigmail.example", "preference": 20},
                ],
                "users": MAILBOXES,
                "mailbox_full": {"share": 0.01, "mean_duration": "6h"},
            },
            "corp.example": {
                "mx": [{"host": "mx.corp.example"}],
                "users": MAILBOXES,
                "dns_faults": {"mtbf": "10d", "mttr": "1h"},
            },
        },
        "servers": {
            "mx1.bigmail.example": {
                "receiver": "bigmail",
                "sessions": 10,
                "outages": {"mtbf": "5d", "mttr": "2h", "mode": "timeout"},
            },
            "backup.bigmail.example": {"role": "backup", "sessions": 5},
            "mx.corp.example": {
                "receiver": "corp",
                "sessions": 10,
                "recipient_rate_limit": "6/h",
                "recipient_burst": 1,
                "outages": {"mtbf": "7d", "mttr": "1h", "mode": "refuse"},
            },
        },
    }


MAILBOXES = 100_000
"""Users of each domain of the steady world: more than it ever mails, so that state kept
per mailbox keeps meeting new mailboxes."""


def _greylists(world: World) -> list[Greylist]:
    return [r.greylist for r in world.receivers.values() if r.greylist is not None]


def _mtas(world: World) -> list[OutboundMta]:
    return [*world.mtas.values(), *world.relays.values()]


def _addresses(s: Scenario) -> int:
    """Addresses and host names that can be a key: providers' addresses and servers."""
    return sum(len(p.ips) for p in s.providers.values()) + len(s.servers)


def _local_domains(s: Scenario) -> int:
    return sum(len(p.local_domains) for p in s.providers.values())


def _mtas_of(s: Scenario) -> list[str]:
    """Every MTA of the scenario: providers, backup MXs and relays."""
    return [*s.providers, *(n for n, c in s.servers.items() if c.role != "primary")]


def _reputation_keys(r: Receiver) -> int:
    tables = [t for t in (r.reputation, r.domains) if t is not None]
    return sum(len(t._evidence) + len(t._own) + len(t._buckets) + len(t._cold) for t in tables)


def _window_events(world: World) -> int:
    """Events held in the blocklists' and the providers' sliding windows."""
    counts = [
        c
        for b in world.blocklists.lists.values()
        for s in b._ips.values()
        for c in s.counts.values()
    ]
    counts += [
        c
        for msa in world.submission.values()
        if msa.stats is not None
        for per_sender in msa.stats._counts.values()
        for c in per_sender.values()
    ]
    return sum(len(c._events) for c in counts)


NOISE = 10
"""Entries a flat structure may differ by besides 10 %: the event queue holds a dozen
timers, give or take a few."""

FLAT: dict[str, Callable[[World], int]] = {
    "greylist triplets": lambda w: sum(g.sizes()["triplets"] for g in _greylists(w)),
    "trap hits": lambda w: len(w.trap_feed.hits),
    "blocklist expiry heaps": lambda w: sum(len(b._expiries) for b in w.blocklists.lists.values()),
    "sliding-window events": _window_events,
    "recipient rate buckets": lambda w: sum(
        len(m._buckets) for m in w.servers.values() if m._buckets is not None
    ),
    "deferred queues": lambda w: sum(len(m.deferred.heap) for m in _mtas(w)),
    "scheduled events": lambda w: len(w.env._queue),
}
"""Structures whose size follows the traffic of a recent window: flat in a steady world."""

BOUNDED: dict[str, tuple[Callable[[World], int], Callable[[Scenario], int]]] = {
    "greylist clients": (lambda w: sum(g.sizes()["clients"] for g in _greylists(w)), _addresses),
    "poll phases": (lambda w: len(w.mailboxes._phase), lambda s: mailbox_module.PHASE_CACHE),
    "full-mailbox episodes": (
        lambda w: sum(len(f.__self__._state) for f in w.mailboxes._full.values()),
        lambda s: sum(d.users for d in s.domains.values() if d.mailbox_full is not None),
    ),
    "blocklist addresses": (
        lambda w: sum(len(b._ips) for b in w.blocklists.lists.values()),
        lambda s: len(s.blocklists) * _addresses(s),
    ),
    "reputation keys": (
        lambda w: sum(_reputation_keys(r) for r in w.receivers.values()),
        # per key: evidence, evidence per sender group, throttle and new-address buckets
        lambda s: len(s.receivers) * (_addresses(s) + len(s.senders)) * (3 + len(s.senders)),
    ),
    "sender stats": (
        lambda w: sum(len(m.stats._counts) for m in w.submission.values() if m.stats),
        lambda s: sum(g.count for g in s.senders.values()),
    ),
    "destinations": (
        lambda w: sum(len(m.scheduler._destinations) for m in _mtas(w) if m.scheduler),
        lambda s: len(_mtas_of(s)) * (len(s.domains) + _local_domains(s)),
    ),
    "host memories": (
        lambda w: sum(len(m.memory) for m in _mtas(w) if m.memory is not None),
        lambda s: len(_mtas_of(s)) * (_addresses(s) + len(s.domains)),
    ),
}
"""Structures bounded by a constant of the scenario (its addresses, mailboxes, domains)."""


def _peaks(world: World, start: float, end: float) -> dict[str, int]:
    """The largest size of every structure, sampled every 12 h in ``(start, end]``."""
    peaks = dict.fromkeys([*FLAT, *BOUNDED], 0)
    t = start
    while t < end:
        t += 12 * HOUR
        world.env.run(until=t)
        sizes = {name: size(world) for name, size in FLAT.items()}
        sizes |= {name: size(world) for name, (size, _) in BOUNDED.items()}
        peaks = {name: max(peaks[name], sizes[name]) for name in peaks}
    return peaks


@pytest.mark.slow
def test_a_steady_worlds_state_is_as_large_after_90_days_as_after_30():
    scenario = Scenario.from_dict(_steady_world())
    env = simpy.Environment()
    world = World(scenario, env, RandomStreams(scenario.simulation.seed), EventLog())
    env.run(until=24 * DAY)
    early = _peaks(world, 24 * DAY, 30 * DAY)
    env.run(until=84 * DAY)
    late = _peaks(world, 84 * DAY, 90 * DAY)
    for name in FLAT:
        assert late[name] <= 1.1 * early[name] + NOISE, (name, early[name], late[name])
    for name, (_, bound) in BOUNDED.items():
        assert late[name] <= bound(scenario), (name, late[name], bound(scenario))
