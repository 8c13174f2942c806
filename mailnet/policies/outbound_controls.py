"""What a mail provider does about its own senders: outbound spam filtering, suspension on
bad bounce or complaint rates, IP warm-up and IP pool assignment (the per-sender rate
limit is the MSA's shaper in ``mailnet.model.submission``).

Pure decisions, no simulation engine; randomness only from a numpy Generator passed in.
ESP practices and thresholds are from mail-facts.md §7. Times are seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from numpy.random import Generator

from mailnet.policies.windows import SlidingCount
from mailnet.scenario import (
    OutboundFilterConfig,
    Provider,
    SuspensionConfig,
    WarmupConfig,
)
from mailnet.units import DAY

SENDER_EVENTS = ("sent", "bounce", "complaint")


class OutboundSpamFilter:
    """Scans mail on the way out: stops a fraction ``catch_rate`` of spam, and a fraction
    ``fp_rate`` of ham (default none). One uniform draw from ``rng`` per message."""

    def __init__(self, catch_rate: float, rng: Generator, *, fp_rate: float = 0.0):
        if not (0 <= catch_rate <= 1 and 0 <= fp_rate <= 1):
            raise ValueError("catch_rate and fp_rate must be probabilities")
        self.catch_rate = float(catch_rate)
        self.fp_rate = float(fp_rate)
        self.rng = rng

    @classmethod
    def from_config(cls, config: OutboundFilterConfig, rng: Generator) -> OutboundSpamFilter:
        """The filter of ``[providers.NAME.outbound_filter]``."""
        return cls(config.catch_rate, rng, fp_rate=config.fp_rate)

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

    @classmethod
    def for_provider(cls, config: Provider) -> SenderStats | None:
        """Counts for a provider whose controls read them (suspension or pools by
        reputation), over the suspension's window (else 7 days); ``None`` otherwise."""
        if config.suspension is None and config.pool_strategy != "by-reputation":
            return None
        return cls(config.suspension.window if config.suspension else 7 * DAY)

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
    suspended for ``duration`` seconds (``None``: for good).

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

    @classmethod
    def from_config(
        cls, config: SuspensionConfig, stats: SenderStats, log: list | None = None
    ) -> SenderSuspension:
        """The rule of ``[providers.NAME.suspension]``, counting in ``stats``."""
        return cls(
            config.bounce_rate,
            config.complaint_rate,
            config.window,
            config.min_volume,
            duration=config.duration,
            stats=stats,
            log=log,
        )

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


class WarmupSchedule:
    """Daily sending caps for IPs that are being warmed up.

    An IP in ``starts`` (IP -> start time, seconds) may send ``daily_limits[k]``
    messages on day ``k = floor((now - start) / DAY)`` of its warm-up, days counted from
    its start, and without a cap once the list is exhausted. Other IPs are established
    and uncapped. The default schedule is the scenario's (``[providers.NAME.warmup]``).
    """

    def __init__(self, daily_limits: Sequence[int], *, starts: Mapping[str, float]):
        if any(n < 0 for n in daily_limits):
            raise ValueError("daily limits must not be negative")
        self.daily_limits = tuple(int(n) for n in daily_limits)
        self._starts: dict[str, float] = dict(starts)
        self._sent: dict[str, tuple[int, int]] = {}

    @classmethod
    def from_config(cls, config: WarmupConfig) -> WarmupSchedule:
        """The schedule of ``[providers.NAME.warmup]``: its addresses start together."""
        return cls(config.daily_limits, starts=dict.fromkeys(config.ips, config.start))

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


STRATEGIES = ("by-class", "by-reputation", "dedicated")
"""Pool strategies of ``[providers.NAME] pool_strategy`` besides ``shared`` (one pool,
addresses taken by the provider's ``ip_selection``)."""


class PoolAssigner:
    """Which outbound IP a message leaves from.

    ``pools`` maps pool names to lists of IPs. Strategies:

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
      own IPs, the first of them; everyone else uses pool ``"shared"``.

    Inside a pool the IPs are taken in turn, pick by pick (retries thus usually leave
    from another IP).
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
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown pool strategy {strategy!r}; use one of {STRATEGIES}")
        self.pools = {name: tuple(ips) for name, ips in pools.items()}
        for name, ips in self.pools.items():
            if not ips:
                raise ValueError(f"pool {name!r} has no IPs")
        need: tuple[str, ...] = ()
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
        self._turn: dict[str, int] = {}

    @classmethod
    def for_provider(cls, config: Provider, stats: SenderStats | None) -> PoolAssigner | None:
        """The pools of ``config``; ``None`` for one shared pool (``ip_selection``).
        Dedicated pools are named after sender groups; the shared pool is every other
        address (all of them if none is left)."""
        if config.pool_strategy == "shared":
            return None
        pools = {name: list(ips) for name, ips in config.pools.items()}
        if config.pool_strategy == "dedicated":
            own = {ip for ips in pools.values() for ip in ips}
            shared = [ip for ip in config.ips if ip not in own] or list(config.ips)
            return cls("dedicated", {"shared": shared}, dedicated=pools)
        limits = config.pool_thresholds
        return cls(
            config.pool_strategy,
            pools,
            stats=stats,
            bad_bounce_rate=limits.bounce_rate,
            bad_complaint_rate=limits.complaint_rate,
            min_volume=limits.min_volume,
        )

    def pool_of(self, sender: str, sender_class: Any = None, now: float = 0.0) -> str:
        """Name of the pool ``sender`` draws from at ``now`` (``"dedicated"`` for its own)."""
        strategy = self.strategy
        if strategy == "by-class":
            if sender_class in self.pools:
                return str(sender_class)
            if "default" in self.pools:
                return "default"
            raise KeyError(f"no pool for sender class {sender_class!r} and no 'default' pool")
        if strategy == "dedicated":
            return "dedicated" if sender in self.dedicated else "shared"
        assert self.stats is not None  # checked in __init__ for by-reputation
        sent, bounce_rate, complaint_rate = self.stats.rates(sender, now)
        if sent < self.min_volume:
            return "new" if "new" in self.pools else "good"
        if bounce_rate >= self.bad_bounce_rate or complaint_rate >= self.bad_complaint_rate:
            return "bad"
        return "good"

    def pick(self, sender: str, sender_class: Any = None, now: float = 0.0) -> str:
        """The source IP for the next attempt of a message from ``sender`` of class
        ``sender_class`` at ``now``."""
        pool = self.pool_of(sender, sender_class, now)
        if pool == "dedicated":
            return self.dedicated[sender][0]
        ips = self.pools[pool]
        turn = self._turn.get(pool, 0)
        self._turn[pool] = turn + 1
        return ips[turn % len(ips)]
