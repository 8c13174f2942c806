"""DNS blocklists (DNSBLs): which IPs, prefixes and ASes a list names, and when.

Pure decisions, no simulation engine. A ``Blocklist`` is fed what its sensors see
(``observe("trap" | "complaint" | "spam", ip, asn, now)``) and, for lists that judge
reports against an address's volume (SpamCop), how much mail each address sends
(``observe_volume``). It lists single IPs past per-kind thresholds or past a
volume-relative report rule in a sliding window, delists them a fixed time after their
last counted observation, takes removal requests where the list offers them (and relists
at once an address detected again soon after a removal), and escalates to a whole prefix
or AS when enough of it is listed (UCEPROTECT levels 2 and 3), which is how senders that
never spammed get blocked for sharing addresses with those who did. Presets are in
``mailnet.policies.blocklist_presets`` (mail-facts.md §7, §17). Times are seconds; calls
must come in non-decreasing time.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from mailnet.policies.blocklist_presets import PRESETS
from mailnet.policies.escalation import Escalation
from mailnet.policies.listings import COLUMNS, FLOAT_COLUMNS, Listing, ListingRecord
from mailnet.policies.windows import BucketCount, SlidingCount
from mailnet.smtp import Reply
from mailnet.units import DAY, HOUR

__all__ = ["PRESETS", "Blocklist", "Listing", "ListingRecord", "SlidingCount"]

KINDS = ("trap", "complaint", "spam")
"""What a list's sensors can report about an IP: a spamtrap hit, a user complaint
(report), or spam seen by its own mail sensors."""

SCOPES = ("ip", "prefix", "asn")

VOLUME_RESOLUTION = HOUR
"""Bucket size of the per-address volume count (seconds): volume leaves the window up to
an hour early, which moves a volume-relative decision by at most 1/168 of a week's mail."""


@dataclass(slots=True)
class _IpState:
    counts: dict[str, SlidingCount]
    asn: Any = None
    record: ListingRecord | None = None
    expires_at: float = 0.0
    volume: BucketCount | None = None
    removal_at: float | None = None
    removals: deque[float] = field(default_factory=deque)
    probation_until: float = -math.inf
    first_volume_at: float = 0.0
    due: float = math.inf  # the earliest expiry check queued for the IP (none: inf)


class Blocklist:
    """One DNSBL with IP listings, removal requests, and optional prefix and AS escalation.

    Parameters (seconds unless noted):

    - ``name``: the list's name in records and frames; ``zone`` (default ``name``) is
      the DNS zone named in reject replies.
    - ``trap_hits``, ``complaints``, ``spam_volume``: an IP is listed as soon as the
      number of observations of that kind within the trailing ``window`` reaches the
      threshold; ``None`` ignores that kind.
    - ``min_reports``, ``trap_weight``, ``volume_ratio`` (SpamCop's rule): with
      ``min_reports`` set, the weighted reports ``R = complaints + trap_weight * traps``
      in the window list an IP once ``R >= min_reports`` and ``R >= volume_ratio * V``,
      where ``V`` is the number of recipients the IP sent in the window
      (:meth:`observe_volume`, scaled up to a whole window for an IP seen for less;
      ``volume_ratio=None`` leaves volume out). A busy clean address thus absorbs a stray
      trap hit that lists a quiet one.
    - ``duration``: a listed IP is delisted exactly ``duration`` after its last counted
      observation: observations while listed extend it. Delisting needs no query; the
      recorded ``delisted_at`` is that true time even when it is only noticed at a later
      call. After delisting, the next observation relists the IP if the window still
      holds enough events (the fast relisting PreSTA saw).
    - ``removal_delay`` and ``removal_limit``: a removal request (:meth:`request_removal`)
      delists the IP ``removal_delay`` later (``None``: the list takes no requests), at
      most ``removal_limit`` times per IP within ``window``; while it is pending,
      observations do not extend the listing. For ``window`` after a removal the IP is on
      probation: any counted observation relists it at once.
    - ``prefix_len`` and ``prefix_threshold``: the IPv4 prefix (bits; IPv6 uses
      ``prefix_len + 32``) is listed while at least ``prefix_threshold`` of its IPs are
      listed, and delisted the moment the count drops below (UCEPROTECT level 2).
    - ``asn_share``, ``asn_min_listed`` and ``asn_sizes`` (AS -> number of addresses):
      the AS is listed while its listed IPs are at least ``asn_share`` of its addresses
      and at least ``asn_min_listed`` in number (UCEPROTECT level 3). UCEPROTECT counts
      level-1 impacts in 7 days; with its 7-day level-1 duration that is the number of
      IPs listed now. An IP observed with ``asn=None`` takes no part in AS escalation.

    Escalated entries count only IP listings; a prefix listing does not count towards
    its AS. ``records`` holds every listing period (:class:`ListingRecord`);
    ``listeners`` are called with each new IP listing's record.
    """

    def __init__(
        self,
        name: str,
        *,
        zone: str | None = None,
        trap_hits: int | None = 1,
        complaints: int | None = None,
        spam_volume: int | None = None,
        min_reports: float | None = None,
        trap_weight: float = 1.0,
        volume_ratio: float | None = None,
        window: float = 7 * DAY,
        duration: float = 24 * HOUR,
        removal_delay: float | None = None,
        removal_limit: int = 1,
        prefix_len: int = 24,
        prefix_threshold: int | None = None,
        asn_share: float | None = None,
        asn_min_listed: int = 1,
        asn_sizes: Mapping[Any, int] | None = None,
    ):
        thresholds = {"trap": trap_hits, "complaint": complaints, "spam": spam_volume}
        _check(
            name,
            thresholds,
            min_reports=min_reports,
            trap_weight=trap_weight,
            volume_ratio=volume_ratio,
            removal_delay=removal_delay,
        )
        if window <= 0 or duration <= 0:
            raise ValueError(f"{name}: window and duration must be positive")
        self.escalation = Escalation(
            name,
            self._open,
            prefix_len=prefix_len,
            prefix_threshold=prefix_threshold,
            asn_share=asn_share,
            asn_min_listed=asn_min_listed,
            asn_sizes=asn_sizes,
        )
        self.name = name
        self.zone = zone or name
        self.thresholds = {k: v for k, v in thresholds.items() if v is not None}
        self.min_reports = min_reports
        self.trap_weight = float(trap_weight)
        self.volume_ratio = volume_ratio if min_reports is not None else None
        self._counted = set(self.thresholds)
        if min_reports is not None:
            self._counted |= {"trap", "complaint"}
        self.window = float(window)
        self.duration = float(duration)
        self.removal_delay = removal_delay
        self.removal_limit = removal_limit
        self.prefix_threshold = prefix_threshold
        self.asn_min_listed = asn_min_listed
        self.records: list[ListingRecord] = []
        # told of every listing opened, at any scope (run-time changes' triggers)
        self.on_listing: list[Callable[[ListingRecord], None]] = []
        # told of an address's listing once its evidence is recorded (providers' abuse desks)
        self.listeners: list[Callable[[ListingRecord], None]] = []
        self._ips: dict[str, _IpState] = {}
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
            if at != state.due:
                continue  # superseded by an earlier check (a removal moved the end)
            state.due = math.inf
            if state.record is None:
                continue
            if state.expires_at == at:
                self._delist_ip(ip, state, at)
            else:  # extended since queued: check again at the new end
                heapq.heappush(heap, (state.expires_at, ip))
                state.due = state.expires_at

    # -- input --------------------------------------------------------------------------

    def observe(self, kind: str, ip: str, asn: Any, now: float, count: int = 1) -> None:
        """Record ``count`` observations of ``kind`` about ``ip`` (in AS ``asn``) at ``now``.

        Lists the IP, and escalates, at ``now`` if a rule is met (or the IP is on
        probation after a removal); extends a current listing to ``now + duration``
        unless a removal is pending. Kinds that no rule counts are ignored.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown observation kind {kind!r}; use one of {KINDS}")
        self.advance(now)
        if kind not in self._counted:
            return
        state = self._state(ip)
        if asn is not None and state.record is None:
            # The AS is fixed while listed, so that delisting leaves the group it joined.
            state.asn = self.escalation.known_asn(asn)
        counter = state.counts.get(kind)
        if counter is None:
            counter = state.counts[kind] = SlidingCount(self.window)
        counter.add(now, count)
        if state.record is not None:
            if state.removal_at is None:
                self._set_expiry(ip, state, now + self.duration)
        elif now < state.probation_until or self._over(state, kind, now):
            self._list_ip(ip, state, now, kind)

    def observe_volume(self, ip: str, now: float, recipients: int = 1) -> None:
        """``ip`` sent mail to ``recipients`` recipients at ``now``: the volume a
        volume-relative list weighs reports against (a no-op for other lists)."""
        if self.volume_ratio is None:
            return
        state = self._ips.get(ip) or self._state(ip)
        volume = state.volume
        if volume is None:
            volume = state.volume = BucketCount(self.window, VOLUME_RESOLUTION)
            state.first_volume_at = now
        volume.add(now, recipients)

    def request_removal(self, ip: str, now: float) -> float | None:
        """The owner of ``ip`` asks for its removal at ``now``: when the listing will end
        (seconds), or ``None`` if the list refuses (it takes no requests, the IP is not
        listed, or it had ``removal_limit`` removals in the window)."""
        self.advance(now)
        state = self._ips.get(ip)
        if self.removal_delay is None or state is None or state.record is None:
            return None
        if state.removal_at is not None:
            return state.removal_at
        removals = state.removals
        while removals and removals[0] <= now - self.window:
            removals.popleft()
        if len(removals) >= self.removal_limit:
            return None
        removals.append(now)
        at = now + self.removal_delay
        if at >= state.expires_at:
            return state.expires_at
        state.removal_at = at
        self._set_expiry(ip, state, at)
        return at

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
            return state.record.answer()
        if asn is None and state is not None:
            asn = state.asn
        record = self.escalation.covering(ip, asn, scopes)
        return None if record is None else record.answer()

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
        """Every listing period as a frame with the :class:`ListingRecord` fields.

        With ``now``, delistings due by then are applied first. ``delisted_at`` is NaN
        while a listing lasts.
        """
        if now is not None:
            self.advance(now)
        frame = pd.DataFrame([asdict(r) for r in self.records], columns=COLUMNS)
        return frame.astype({"ended": "str", **dict.fromkeys(FLOAT_COLUMNS, float)})

    # -- state changes ------------------------------------------------------------------

    def _state(self, ip: str) -> _IpState:
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState(counts={})
        return state

    def _total(self, state: _IpState, kind: str, now: float) -> float:
        counter = state.counts.get(kind)
        return 0.0 if counter is None else counter.total(now)

    def _over(self, state: _IpState, kind: str, now: float) -> bool:
        """Whether an observation of ``kind`` just now makes a rule list the IP."""
        threshold = self.thresholds.get(kind)
        if threshold is not None and self._total(state, kind, now) >= threshold:
            return True
        if self.min_reports is None:
            return False
        reports = self._total(state, "complaint", now)
        reports += self.trap_weight * self._total(state, "trap", now)
        if reports < self.min_reports:
            return False
        if self.volume_ratio is None or state.volume is None:
            return True
        return reports >= self.volume_ratio * self._volume(state, now)

    def _volume(self, state: _IpState, now: float) -> float:
        """The IP's volume in the window; an IP seen for less than a window is judged as
        if it had sent at the same rate for a whole one (the list's history of a steady
        sender), so that a simulation's start does not make every address look new."""
        assert state.volume is not None
        seen = max(now - state.first_volume_at, VOLUME_RESOLUTION)
        return state.volume.total(now) * max(1.0, self.window / seen)

    def _set_expiry(self, ip: str, state: _IpState, at: float) -> None:
        """End the IP's listing at ``at``. A check is queued only when ``at`` comes
        before the one already queued: an extension is found when that check comes due,
        so the queue holds about one entry per listed IP, not one per observation."""
        state.expires_at = at
        if at < state.due:
            heapq.heappush(self._expiries, (at, ip))
            state.due = at

    def _open(self, scope: str, key: str, now: float, trigger: str) -> ListingRecord:
        record = ListingRecord(self.name, scope, key, now, None, trigger)
        self.records.append(record)
        for hook in self.on_listing:
            hook(record)
        return record

    def _list_ip(self, ip: str, state: _IpState, now: float, trigger: str) -> None:
        record = state.record = self._open("ip", ip, now, trigger)
        record.traps = self._total(state, "trap", now)
        record.reports = self._total(state, "complaint", now)
        if self.volume_ratio is not None:
            record.volume = 0.0 if state.volume is None else self._volume(state, now)
        self._set_expiry(ip, state, now + self.duration)
        self.escalation.joined(ip, state.asn, now)
        for listener in self.listeners:
            listener(record)

    def _delist_ip(self, ip: str, state: _IpState, at: float) -> None:
        record = state.record
        if record is None:  # not listed: nothing to end
            return
        record.delisted_at = at
        if state.removal_at == at:
            record.ended = "removal"
            state.probation_until = at + self.window
        else:
            record.ended = "expiry"
        state.record = None
        state.removal_at = None
        self.escalation.left(ip, state.asn, at)


def _check(
    name: str,
    thresholds: dict[str, int | None],
    *,
    min_reports: float | None,
    trap_weight: float,
    volume_ratio: float | None,
    removal_delay: float | None,
) -> None:
    """Refuse rules that could never list or never end."""
    for kind, value in thresholds.items():
        if value is not None and value < 1:
            raise ValueError(f"{name}: threshold for {kind!r} must be >= 1 or None")
    if min_reports is not None and min_reports <= 0:
        raise ValueError(f"{name}: min_reports must be positive or None")
    if trap_weight <= 0 or (volume_ratio is not None and volume_ratio <= 0):
        raise ValueError(f"{name}: trap_weight and volume_ratio must be positive")
    if removal_delay is not None and removal_delay < 0:
        raise ValueError(f"{name}: removal_delay must not be negative")
