"""DNS blocklists (DNSBLs): which IPs, prefixes and ASes a list names, and when.

Pure decisions, no simulation engine. A ``Blocklist`` is fed what its sensors see
(``observe("trap" | "complaint" | "spam", ip, asn, now)``), lists single IPs past per-kind
thresholds in a sliding window, delists them a fixed time after their last trigger, and
escalates to a whole prefix or AS when enough of it is listed (UCEPROTECT levels 2 and 3),
which is how senders that never spammed get blocked for sharing addresses with those who
did. Presets follow mail-facts.md §7. Times are seconds; calls must come in
non-decreasing time.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from mailnet.smtp import Reply
from mailnet.units import DAY, HOUR

KINDS = ("trap", "complaint", "spam")
"""What a list's sensors can report about an IP: a spamtrap hit, a user complaint
(report), or spam seen by its own mail sensors."""

SCOPES = ("ip", "prefix", "asn")


@lru_cache(maxsize=65536)
def _prefix_of(ip: str, bits: int) -> str:
    addr = ipaddress.ip_address(ip)
    bits = bits if addr.version == 4 else min(128, bits + 32)
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _asn_key(asn: Any) -> str:
    return f"AS{asn}" if isinstance(asn, int) else str(asn)


class SlidingCount:
    """A count of events in the trailing window ``(now - window, now]`` (seconds).

    ``add(now, n)`` and ``total(now)`` must be called with non-decreasing ``now``. An
    event exactly ``window`` seconds old has left the window.
    """

    __slots__ = ("_events", "_sum", "window")

    def __init__(self, window: float):
        self.window = float(window)
        self._events: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def _prune(self, now: float) -> None:
        edge = now - self.window
        events = self._events
        while events and events[0][0] <= edge:
            self._sum -= events.popleft()[1]
        if not events:
            self._sum = 0.0

    def add(self, now: float, n: float = 1) -> None:
        self._prune(now)
        self._events.append((now, n))
        self._sum += n

    def total(self, now: float) -> float:
        self._prune(now)
        return self._sum


@dataclass(frozen=True, slots=True)
class Listing:
    """An answer to a DNSBL query: the entry that covers the queried IP.

    ``scope`` is ``"ip"``, ``"prefix"`` or ``"asn"``; ``key`` is the IP, the prefix
    (``"203.0.113.0/24"``) or the AS (``"AS64500"``); ``listed_at`` in seconds.
    """

    list: str
    scope: str
    key: str
    listed_at: float
    trigger: str


@dataclass(slots=True)
class ListingRecord:
    """One listing period; ``delisted_at`` is ``None`` while it lasts.

    ``trigger`` is the observation kind that listed an IP, or ``"escalation"`` for a
    prefix or AS.
    """

    list: str
    scope: str
    key: str
    listed_at: float
    delisted_at: float | None
    trigger: str


@dataclass(slots=True)
class _IpState:
    counts: dict[str, SlidingCount]
    asn: Any = None
    record: ListingRecord | None = None
    expires_at: float = 0.0


@dataclass(slots=True)
class _Group:
    listed_ips: set[str] = field(default_factory=set)
    record: ListingRecord | None = None


PRESETS: dict[str, dict[str, Any]] = {
    # SpamCop SCBL (mail-facts.md §7, spamcop.net/bl.shtml and rblmon's quote of its rule):
    # reports older than a week are ignored, a spamtrap hit weighs five reports, and the
    # listing lapses ~24 h (12-48 h) after reports stop. Thresholds are this model's
    # reading of that rule for a low-volume IP: one trap hit or five reports in 7 days.
    "spamcop": {
        "zone": "bl.spamcop.net",
        "trap_hits": 1,
        "complaints": 5,
        "spam_volume": None,
        "window": 7 * DAY,
        "duration": 24 * HOUR,
    },
    # UCEPROTECT (mail-facts.md §7, uceprotect.net policy pages): level 1 lists an IP on a
    # spamtrap hit and expires 7 days after the last one; level 2 lists a /24 once more
    # than 4 of its IPs are on level 1 (2024 revision: 4); level 3 lists an AS once level-1
    # IPs reach 50 per 100,000 of its addresses and number at least 50.
    "uceprotect": {
        "zone": "dnsbl.uceprotect.net",
        "trap_hits": 1,
        "complaints": None,
        "spam_volume": None,
        "window": 7 * DAY,
        "duration": 7 * DAY,
        "prefix_len": 24,
        "prefix_threshold": 5,
        "asn_share": 50 / 100_000,
        "asn_min_listed": 50,
    },
    # Spamhaus CSS, returned as 127.0.0.3 by zen.spamhaus.org (mail-facts.md §7): automated
    # listings of low-reputation senders, "automatically expired after 3 days". What
    # triggers it is not public; one spamtrap hit in 7 days is this model's stand-in.
    "spamhaus-css": {
        "zone": "zen.spamhaus.org",
        "trap_hits": 1,
        "complaints": None,
        "spam_volume": None,
        "window": 7 * DAY,
        "duration": 3 * DAY,
    },
}
"""Parameters of :meth:`Blocklist.preset`, per list name (see the comments for sources)."""


class Blocklist:
    """One DNSBL with IP listings and optional prefix and AS escalation.

    Parameters (seconds unless noted):

    - ``name``: the list's name in records and frames; ``zone`` (default ``name``) is
      the DNS zone named in reject replies.
    - ``trap_hits``, ``complaints``, ``spam_volume``: an IP is listed as soon as the
      number of observations of that kind within the trailing ``window`` reaches the
      threshold; ``None`` ignores that kind.
    - ``duration``: a listed IP is delisted exactly ``duration`` after its last counted
      observation (any kind with a threshold): observations while listed extend it.
      Delisting needs no query; the recorded ``delisted_at`` is that true time even when
      it is only noticed at a later call. After delisting, the next observation relists
      the IP if the window still holds enough events (the fast relisting PreSTA saw).
    - ``prefix_len`` and ``prefix_threshold``: the IPv4 prefix (bits; IPv6 uses
      ``prefix_len + 32``) is listed while at least ``prefix_threshold`` of its IPs are
      listed, and delisted the moment the count drops below (UCEPROTECT level 2).
    - ``asn_share``, ``asn_min_listed`` and ``asn_sizes`` (AS -> number of addresses):
      the AS is listed while its listed IPs are at least ``asn_share`` of its addresses
      and at least ``asn_min_listed`` in number (UCEPROTECT level 3). UCEPROTECT counts
      level-1 impacts in 7 days; with its 7-day level-1 duration that is the number of
      IPs listed now. An IP observed with ``asn=None`` takes no part in AS escalation.

    Escalated entries count only IP listings; a prefix listing does not count towards
    its AS. ``records`` holds every listing period (:class:`ListingRecord`).
    """

    def __init__(
        self,
        name: str,
        *,
        zone: str | None = None,
        trap_hits: int | None = 1,
        complaints: int | None = None,
        spam_volume: int | None = None,
        window: float = 7 * DAY,
        duration: float = 24 * HOUR,
        prefix_len: int = 24,
        prefix_threshold: int | None = None,
        asn_share: float | None = None,
        asn_min_listed: int = 1,
        asn_sizes: Mapping[Any, int] | None = None,
    ):
        thresholds = {"trap": trap_hits, "complaint": complaints, "spam": spam_volume}
        for kind, value in thresholds.items():
            if value is not None and value < 1:
                raise ValueError(f"{name}: threshold for {kind!r} must be >= 1 or None")
        if window <= 0 or duration <= 0:
            raise ValueError(f"{name}: window and duration must be positive")
        if prefix_threshold is not None and prefix_threshold < 1:
            raise ValueError(f"{name}: prefix_threshold must be >= 1 or None")
        if asn_share is not None:
            if not 0 < asn_share <= 1:
                raise ValueError(f"{name}: asn_share must be in (0, 1]")
            if asn_sizes is None:
                raise ValueError(f"{name}: asn_share needs asn_sizes (AS -> address count)")
        self.name = name
        self.zone = zone or name
        self.thresholds = {k: v for k, v in thresholds.items() if v is not None}
        self.window = float(window)
        self.duration = float(duration)
        self.prefix_len = prefix_len
        self.prefix_threshold = prefix_threshold
        self.asn_share = asn_share
        self.asn_min_listed = asn_min_listed
        self.asn_sizes = dict(asn_sizes or {})
        self.records: list[ListingRecord] = []
        self.on_listing: list[Callable[[ListingRecord], None]] = []  # run-time changes' hooks
        self._ips: dict[str, _IpState] = {}
        self._prefixes: dict[str, _Group] = {}
        self._asns: dict[str, _Group] = {}
        self._expiries: list[tuple[float, str]] = []
        self._now = float("-inf")

    @classmethod
    def preset(cls, preset: str, *, name: str | None = None, **overrides: Any) -> Blocklist:
        """A list with the parameters of ``PRESETS[preset]``, then ``overrides``.

        ``"uceprotect"`` needs ``asn_sizes`` (or ``asn_share=None`` to leave level 3 out).
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown blocklist preset {preset!r}; known: {sorted(PRESETS)}")
        return cls(name or preset, **{**PRESETS[preset], **overrides})

    # -- time ---------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply every delisting due by ``now`` at its true time; ``now`` must not decrease."""
        if now < self._now:
            raise ValueError(f"{self.name}: time went back from {self._now} to {now}")
        self._now = now
        heap = self._expiries
        while heap and heap[0][0] <= now:
            at, ip = heapq.heappop(heap)
            state = self._ips[ip]
            if state.record is not None and state.expires_at == at:
                self._delist_ip(ip, state, at)

    # -- input --------------------------------------------------------------------------

    def observe(self, kind: str, ip: str, asn: Any, now: float, count: int = 1) -> None:
        """Record ``count`` observations of ``kind`` about ``ip`` (in AS ``asn``) at ``now``.

        Lists the IP, and escalates, at ``now`` if a threshold is reached; extends a
        current listing to ``now + duration``. Kinds without a threshold are ignored.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown observation kind {kind!r}; use one of {KINDS}")
        self.advance(now)
        threshold = self.thresholds.get(kind)
        if threshold is None:
            return
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState(counts={})
        if asn is not None and state.record is None:
            # The AS is fixed while listed, so that delisting leaves the group it joined.
            if self.asn_share is not None and asn not in self.asn_sizes:
                raise ValueError(f"{self.name}: no size for {_asn_key(asn)} in asn_sizes")
            state.asn = asn
        counter = state.counts.get(kind)
        if counter is None:
            counter = state.counts[kind] = SlidingCount(self.window)
        counter.add(now, count)
        if state.record is not None:
            self._set_expiry(ip, state, now + self.duration)
        elif counter.total(now) >= threshold:
            self._list_ip(ip, state, now, kind)

    # -- queries ------------------------------------------------------------------------

    def listed(
        self, ip: str, asn: Any = None, now: float | None = None, scopes: tuple[str, ...] = SCOPES
    ) -> Listing | None:
        """The most specific entry covering ``ip`` at ``now`` (IP, then prefix, then AS).

        ``asn`` is the AS the querying receiver attributes ``ip`` to; without it the AS
        recorded from observations is used. ``scopes`` restricts which levels count (a
        receiver using only UCEPROTECT level 1 passes ``("ip",)``). ``now=None`` asks
        at the time of the last call.
        """
        if now is not None:
            self.advance(now)
        state = self._ips.get(ip)
        if "ip" in scopes and state is not None and state.record is not None:
            return self._answer(state.record)
        if "prefix" in scopes and self.prefix_threshold is not None:
            group = self._prefixes.get(_prefix_of(ip, self.prefix_len))
            if group is not None and group.record is not None:
                return self._answer(group.record)
        if "asn" in scopes and self.asn_share is not None:
            if asn is None and state is not None:
                asn = state.asn
            group = self._asns.get(_asn_key(asn)) if asn is not None else None
            if group is not None and group.record is not None:
                return self._answer(group.record)
        return None

    def expires_at(self, ip: str) -> float | None:
        """When the IP's own listing ends unless extended (seconds), or ``None``."""
        state = self._ips.get(ip)
        return state.expires_at if state is not None and state.record is not None else None

    def reply(self, action: str, ip: str) -> Reply:
        """What a receiver using this list says to a listed client.

        ``"reject"``: Postfix ``reject_rbl_client`` with ``maps_rbl_reject_code = 554``;
        ``"defer"``: the same text as a 451 4.7.1 temporary failure.
        """
        text = f"Service unavailable; Client host [{ip}] blocked using {self.zone}"
        if action == "reject":
            return Reply(554, "5.7.1", text)
        if action == "defer":
            return Reply(451, "4.7.1", text)
        raise ValueError(f"unknown blocklist action {action!r}; use 'reject' or 'defer'")

    def records_frame(self, now: float | None = None) -> pd.DataFrame:
        """Every listing period as a frame: list, scope, key, listed_at, delisted_at, trigger.

        With ``now``, delistings due by then are applied first. ``delisted_at`` is NaN
        while a listing lasts.
        """
        if now is not None:
            self.advance(now)
        columns = ["list", "scope", "key", "listed_at", "delisted_at", "trigger"]
        frame = pd.DataFrame([asdict(r) for r in self.records], columns=columns)
        return frame.astype({"listed_at": float, "delisted_at": float})

    # -- state changes ------------------------------------------------------------------

    def _answer(self, record: ListingRecord) -> Listing:
        return Listing(record.list, record.scope, record.key, record.listed_at, record.trigger)

    def _set_expiry(self, ip: str, state: _IpState, at: float) -> None:
        state.expires_at = at
        heapq.heappush(self._expiries, (at, ip))

    def _open(self, scope: str, key: str, now: float, trigger: str) -> ListingRecord:
        record = ListingRecord(self.name, scope, key, now, None, trigger)
        self.records.append(record)
        for hook in self.on_listing:
            hook(record)
        return record

    def _list_ip(self, ip: str, state: _IpState, now: float, trigger: str) -> None:
        state.record = self._open("ip", ip, now, trigger)
        self._set_expiry(ip, state, now + self.duration)
        if self.prefix_threshold is not None:
            key = _prefix_of(ip, self.prefix_len)
            group = self._prefixes.setdefault(key, _Group())
            group.listed_ips.add(ip)
            if group.record is None and len(group.listed_ips) >= self.prefix_threshold:
                group.record = self._open("prefix", key, now, "escalation")
        if self.asn_share is not None and state.asn is not None:
            key = _asn_key(state.asn)
            group = self._asns.setdefault(key, _Group())
            group.listed_ips.add(ip)
            if group.record is None and self._asn_over(state.asn, group):
                group.record = self._open("asn", key, now, "escalation")

    def _delist_ip(self, ip: str, state: _IpState, at: float) -> None:
        record = state.record
        if record is None:  # not listed: nothing to end
            return
        record.delisted_at = at
        state.record = None
        if self.prefix_threshold is not None:
            group = self._prefixes[_prefix_of(ip, self.prefix_len)]
            group.listed_ips.discard(ip)
            if group.record is not None and len(group.listed_ips) < self.prefix_threshold:
                group.record.delisted_at = at
                group.record = None
        if self.asn_share is not None and state.asn is not None:
            group = self._asns[_asn_key(state.asn)]
            group.listed_ips.discard(ip)
            if group.record is not None and not self._asn_over(state.asn, group):
                group.record.delisted_at = at
                group.record = None

    def _asn_over(self, asn: Any, group: _Group) -> bool:
        n = len(group.listed_ips)
        return n >= self.asn_min_listed and n / self.asn_sizes[asn] >= self.asn_share
