"""What a mail provider does about its own senders: rate limits, outbound spam filtering,
suspension on bad bounce or complaint rates, IP warm-up and IP pool assignment.

Pure decisions, no simulation engine; randomness only from a numpy Generator passed in.
ESP practices and thresholds are from mail-facts.md §7. Times are seconds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from numpy.random import Generator

from mailnet.policies.blocklists import SlidingCount
from mailnet.policies.reputation import TokenBucket
from mailnet.units import DAY

SENDER_EVENTS = ("sent", "bounce", "complaint")


class SenderRateLimit:
    """A token bucket per sender: ``rate`` messages per second, bursts of ``burst``.

    Each sender's bucket starts full at its first message.
    """

    def __init__(self, rate: float, burst: float):
        TokenBucket(rate, burst)  # validates the parameters
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, sender: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets[sender] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def admit(self, sender: str, now: float) -> bool:
        """Whether ``sender`` may send one message at ``now`` (spends a token if so)."""
        return self._bucket(sender, now).take(now)

    def wait(self, sender: str, now: float) -> float:
        """Seconds until ``sender`` may send its next message."""
        return self._bucket(sender, now).wait(now)


class OutboundSpamFilter:
    """Scans mail on the way out: stops a fraction ``catch_rate`` of spam, and a fraction
    ``fp_rate`` of ham (default none). One uniform draw from ``rng`` per message."""

    def __init__(self, catch_rate: float, rng: Generator, *, fp_rate: float = 0.0):
        if not (0 <= catch_rate <= 1 and 0 <= fp_rate <= 1):
            raise ValueError("catch_rate and fp_rate must be probabilities")
        self.catch_rate = float(catch_rate)
        self.fp_rate = float(fp_rate)
        self.rng = rng

    def blocks(self, is_spam: bool) -> bool:
        """Whether this message is stopped before it leaves the provider."""
        return bool(self.rng.random() < (self.catch_rate if is_spam else self.fp_rate))


class SenderStats:
    """Per-sender counts of sent messages, (hard) bounces and complaints in a trailing
    ``window`` (seconds); the measured reputation ESPs act on. Times must not decrease
    per sender."""

    def __init__(self, window: float = 7 * DAY):
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = float(window)
        self._counts: dict[str, dict[str, SlidingCount]] = {}

    def record(self, sender: str, kind: str, now: float, count: int = 1) -> None:
        """Count ``count`` events of ``kind`` (``sent``, ``bounce``, ``complaint``) at ``now``."""
        if kind not in SENDER_EVENTS:
            raise ValueError(f"unknown sender event {kind!r}; use one of {SENDER_EVENTS}")
        counts = self._counts.get(sender)
        if counts is None:
            counts = self._counts[sender] = {k: SlidingCount(self.window) for k in SENDER_EVENTS}
        counts[kind].add(now, count)

    def counts(self, sender: str, now: float) -> tuple[float, float, float]:
        """``(sent, bounces, complaints)`` of ``sender`` in the window ending at ``now``."""
        counts = self._counts.get(sender)
        if counts is None:
            return (0.0, 0.0, 0.0)
        return tuple(counts[k].total(now) for k in SENDER_EVENTS)  # type: ignore[return-value]

    def rates(self, sender: str, now: float) -> tuple[float, float, float]:
        """``(sent, bounce rate, complaint rate)``; rates are per sent message, 0 if none."""
        sent, bounces, complaints = self.counts(sender, now)
        if sent <= 0:
            return (sent, 0.0, 0.0)
        return (sent, bounces / sent, complaints / sent)


class SenderSuspension:
    """Suspends a sender whose bounce or complaint rate is too high, as ESPs do.

    A sender is suspended at the first ``record`` or ``suspended`` call at which, in the
    trailing ``window``, it has sent at least ``min_volume`` messages and its bounce rate
    is ``>= bounce_threshold`` or its complaint rate ``>= complaint_threshold``. It stays
    suspended for ``duration`` seconds (``None``: until :meth:`reinstate`).

    Defaults (mail-facts.md §7): Amazon SES puts accounts under review at a 5 % bounce or
    0.1 % complaint rate (and may pause at 10 % / 0.5 %); the 7-day window and the
    200-recipient minimum are coss.com's published rule. Count hard bounces only, as SES
    does. Each suspension is appended to ``log`` (if given) as a dict with ``sender``,
    ``at``, ``sent``, ``bounce_rate``, ``complaint_rate``. Pass ``stats`` to share counts
    with a :class:`PoolAssigner`; its window then replaces ``window``.
    """

    def __init__(
        self,
        bounce_threshold: float = 0.05,
        complaint_threshold: float = 0.001,
        window: float = 7 * DAY,
        min_volume: int = 200,
        *,
        duration: float | None = None,
        stats: SenderStats | None = None,
        log: list | None = None,
    ):
        self.bounce_threshold = float(bounce_threshold)
        self.complaint_threshold = float(complaint_threshold)
        self.min_volume = min_volume
        self.duration = duration
        self.stats = stats if stats is not None else SenderStats(window)
        self.window = self.stats.window
        self.log = log
        self._until: dict[str, float] = {}

    def record(self, sender: str, kind: str, now: float, count: int = 1) -> None:
        """Count events of ``kind`` (``sent``, ``bounce``, ``complaint``) and re-check."""
        self.stats.record(sender, kind, now, count)
        self.suspended(sender, now)

    def suspended(self, sender: str, now: float) -> bool:
        """Whether ``sender`` may not send at ``now``."""
        until = self._until.get(sender)
        if until is not None:
            if now < until:
                return True
            del self._until[sender]
        sent, bounce_rate, complaint_rate = self.stats.rates(sender, now)
        if sent >= self.min_volume and (
            bounce_rate >= self.bounce_threshold or complaint_rate >= self.complaint_threshold
        ):
            self._until[sender] = math.inf if self.duration is None else now + self.duration
            if self.log is not None:
                self.log.append(
                    {
                        "sender": sender,
                        "at": now,
                        "sent": sent,
                        "bounce_rate": bounce_rate,
                        "complaint_rate": complaint_rate,
                    }
                )
            return True
        return False

    def reinstate(self, sender: str) -> None:
        """Lift a suspension (the provider's review); the sender is re-checked on its next
        event, so it is suspended again if its window still holds the bad rates."""
        self._until.pop(sender, None)


WARMUP_DAILY_LIMITS = (
    50,
    100,
    500,
    1_000,
    5_000,
    10_000,
    20_000,
    40_000,
    70_000,
    100_000,
    150_000,
    250_000,
    400_000,
    600_000,
    1_000_000,
    2_000_000,
    4_000_000,
)
"""Messages per day on days 0, 1, 2, ... of a new IP: the dedicated-IP warm-up schedule
SendGrid publishes [U: recalled, not in mail-facts.md]."""


class WarmupSchedule:
    """Daily sending caps for IPs that are being warmed up.

    An IP registered with :meth:`start` (or in ``starts``, IP -> start time) may send
    ``daily_limits[k]`` messages on day ``k = floor((now - start) / DAY)`` of its warm-up,
    days counted from its start, and without a cap once the list is exhausted. IPs never
    registered are established and uncapped.
    """

    def __init__(
        self,
        daily_limits: Sequence[int] = WARMUP_DAILY_LIMITS,
        *,
        starts: Mapping[str, float] | None = None,
    ):
        if any(n < 0 for n in daily_limits):
            raise ValueError("daily limits must not be negative")
        self.daily_limits = tuple(int(n) for n in daily_limits)
        self._starts: dict[str, float] = dict(starts or {})
        self._sent: dict[str, tuple[int, int]] = {}

    def start(self, ip: str, now: float) -> None:
        """Begin warming ``ip`` up at ``now`` (day 0 starts then)."""
        self._starts[ip] = float(now)
        self._sent.pop(ip, None)

    def day(self, ip: str, now: float) -> int | None:
        """Warm-up day of ``ip`` at ``now`` (0-based), or ``None`` if it is not warming."""
        start = self._starts.get(ip)
        if start is None or now < start:
            return None
        return int((now - start) // DAY)

    def limit(self, ip: str, now: float) -> float:
        """Messages ``ip`` may send on the current warm-up day (``inf`` if uncapped)."""
        k = self.day(ip, now)
        if k is None or k >= len(self.daily_limits):
            return math.inf
        return self.daily_limits[k]

    def sent_today(self, ip: str, now: float) -> int:
        """Messages admitted for ``ip`` on its current warm-up day."""
        k = self.day(ip, now)
        day, n = self._sent.get(ip, (-1, 0))
        return n if k is not None and day == k else 0

    def admit(self, ip: str, now: float) -> bool:
        """Whether ``ip`` may send one more message at ``now``; counts it if so."""
        k = self.day(ip, now)
        if k is None or k >= len(self.daily_limits):
            return True
        n = self.sent_today(ip, now)
        if n >= self.daily_limits[k]:
            return False
        self._sent[ip] = (k, n + 1)
        return True


STRATEGIES = ("shared", "sender-hash", "by-class", "by-reputation", "dedicated")


def _stable_hash(text: str) -> int:
    # crc32, not hash(): str hashes change between processes (style.md §4.5).
    return zlib.crc32(text.encode())


class PoolAssigner:
    """Which outbound IP a message leaves from.

    ``pools`` maps pool names to lists of IPs. Strategies:

    - ``"shared"``: one pool for everyone (``pools`` has exactly one entry).
    - ``"sender-hash"``: one pool; each sender always uses the IP its name hashes to
      (crc32), so an IP carries a fixed subset of senders.
    - ``"by-class"``: pools named by sender class (e.g. transactional vs marketing, as
      SendGrid and Postmark separate them); a class without a pool uses ``"default"``.
    - ``"by-reputation"``: pools ``"good"`` and ``"bad"`` (and optionally ``"new"``);
      a sender with fewer than ``min_volume`` messages in the window of ``stats`` goes to
      ``"new"`` if that pool exists, else to ``"good"``; otherwise to ``"bad"`` if its
      bounce rate is ``>= bad_bounce_rate`` or its complaint rate ``>= bad_complaint_rate``
      (defaults: the SES review lines, as for :class:`SenderSuspension`), else ``"good"``.
      Re-evaluated at every pick (Mailgun's dynamic pools, mail-facts.md §7, check
      periodically; picks are the finest period).
    - ``"dedicated"``: senders in ``dedicated`` (sender -> IP or list of IPs) use their
      own IPs; everyone else uses pool ``"shared"``.

    Inside a pool, ``within="round-robin"`` takes the pool's IPs in turn, pick by pick
    (retries thus usually leave from another IP); ``within="hash"`` keeps a sender on the
    IP its name hashes to. With ``rotate_on_retry``, hashed choices move on by
    ``attempt_index`` IPs, like Gmail's retries from other addresses (mail-facts.md §6).
    """

    def __init__(
        self,
        strategy: str,
        pools: Mapping[str, Sequence[str]],
        *,
        dedicated: Mapping[str, str | Sequence[str]] | None = None,
        stats: SenderStats | None = None,
        bad_bounce_rate: float = 0.05,
        bad_complaint_rate: float = 0.001,
        min_volume: int = 200,
        within: str = "round-robin",
        rotate_on_retry: bool = False,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown pool strategy {strategy!r}; use one of {STRATEGIES}")
        if within not in ("round-robin", "hash"):
            raise ValueError("within must be 'round-robin' or 'hash'")
        self.pools = {name: tuple(ips) for name, ips in pools.items()}
        for name, ips in self.pools.items():
            if not ips:
                raise ValueError(f"pool {name!r} has no IPs")
        need: tuple[str, ...] = ()
        if strategy in ("shared", "sender-hash") and len(self.pools) != 1:
            raise ValueError(f"strategy {strategy!r} takes exactly one pool")
        if strategy == "by-reputation":
            need = ("good", "bad")
            if stats is None:
                raise ValueError("strategy 'by-reputation' needs stats (a SenderStats)")
        if strategy == "dedicated":
            need = ("shared",)
        missing = [n for n in need if n not in self.pools]
        if missing:
            raise ValueError(f"strategy {strategy!r} needs pools {missing}")
        self.strategy = strategy
        self.dedicated = {
            s: (ips,) if isinstance(ips, str) else tuple(ips)
            for s, ips in (dedicated or {}).items()
        }
        self.stats = stats
        self.bad_bounce_rate = bad_bounce_rate
        self.bad_complaint_rate = bad_complaint_rate
        self.min_volume = min_volume
        self.within = within
        self.rotate_on_retry = rotate_on_retry
        self._turn: dict[str, int] = {}

    def pool_of(self, sender: str, sender_class: Any = None, now: float = 0.0) -> str:
        """Name of the pool ``sender`` draws from at ``now`` (``"dedicated"`` for its own)."""
        strategy = self.strategy
        if strategy in ("shared", "sender-hash"):
            return next(iter(self.pools))
        if strategy == "by-class":
            if sender_class in self.pools:
                return sender_class
            if "default" in self.pools:
                return "default"
            raise KeyError(f"no pool for sender class {sender_class!r} and no 'default' pool")
        if strategy == "dedicated":
            return "dedicated" if sender in self.dedicated else "shared"
        sent, bounce_rate, complaint_rate = self.stats.rates(sender, now)
        if sent < self.min_volume:
            return "new" if "new" in self.pools else "good"
        if bounce_rate >= self.bad_bounce_rate or complaint_rate >= self.bad_complaint_rate:
            return "bad"
        return "good"

    def pick(
        self, sender: str, sender_class: Any = None, now: float = 0.0, attempt_index: int = 0
    ) -> str:
        """The source IP for attempt ``attempt_index`` (0 = first) of a message from
        ``sender`` of class ``sender_class`` at ``now``."""
        pool = self.pool_of(sender, sender_class, now)
        if pool == "dedicated":
            ips = self.dedicated[sender]
            return ips[(attempt_index if self.rotate_on_retry else 0) % len(ips)]
        ips = self.pools[pool]
        if self.strategy == "sender-hash" or self.within == "hash":
            shift = attempt_index if self.rotate_on_retry else 0
            return ips[(_stable_hash(sender) + shift) % len(ips)]
        turn = self._turn.get(pool, 0)
        self._turn[pool] = turn + 1
        return ips[turn % len(ips)]
