"""Escalation of a blocklist from single addresses to their prefix and their AS.

UCEPROTECT level 2 lists a whole allocation while enough of its addresses are on level 1,
level 3 a whole AS while enough of its addresses are (mail-facts.md §7): the mechanism by
which senders that never spammed are blocked for their neighbours. Pure bookkeeping: the
owning :class:`~mailnet.policies.blocklists.Blocklist` says when an address is listed or
delisted, and opens the records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mailnet.policies.listings import ListingRecord

Open = Callable[[str, str, float, str], ListingRecord]
"""``open(scope, key, now, trigger)``: start a listing record."""


@lru_cache(maxsize=65536)
def prefix_of(ip: str, bits: int) -> str:
    """The ``bits``-long IPv4 prefix of ``ip`` (IPv6: ``bits + 32``), as text."""
    addr = ipaddress.ip_address(ip)
    bits = bits if addr.version == 4 else min(128, bits + 32)
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def asn_key(asn: Any) -> str:
    """How an AS is written in listings: ``AS64500``."""
    return f"AS{asn}" if isinstance(asn, int) else str(asn)


@dataclass(slots=True)
class _Group:
    listed_ips: set[str] = field(default_factory=set)
    record: ListingRecord | None = None


class Escalation:
    """Prefix and AS listings derived from a list's IP listings.

    A prefix (``prefix_len`` bits) is listed while at least ``prefix_threshold`` of its
    IPs are (``None``: never); an AS while its listed IPs are at least ``asn_share`` of
    its addresses (``asn_sizes``: AS -> address count) and at least ``asn_min_listed``
    in number (``asn_share=None``: never). Both are delisted the moment the count drops
    below. An IP without an AS takes no part in AS escalation.
    """

    def __init__(
        self,
        name: str,
        open_record: Open,
        *,
        prefix_len: int,
        prefix_threshold: int | None,
        asn_share: float | None,
        asn_min_listed: int,
        asn_sizes: Mapping[Any, int] | None,
    ):
        if prefix_threshold is not None and prefix_threshold < 1:
            raise ValueError(f"{name}: prefix_threshold must be >= 1 or None")
        if asn_share is not None:
            if not 0 < asn_share <= 1:
                raise ValueError(f"{name}: asn_share must be in (0, 1]")
            if asn_sizes is None:
                raise ValueError(f"{name}: asn_share needs asn_sizes (AS -> address count)")
        self.name = name
        self._open = open_record
        self.prefix_len = prefix_len
        self.prefix_threshold = prefix_threshold
        self.asn_share = asn_share
        self.asn_min_listed = asn_min_listed
        self.asn_sizes = dict(asn_sizes or {})
        self._prefixes: dict[str, _Group] = {}
        self._asns: dict[str, _Group] = {}

    def known_asn(self, asn: Any) -> Any:
        """``asn`` if AS escalation can weigh it (its size is known), else ``None``: an
        address in an AS the scenario does not size (a backup MX's or relay's own
        network) takes no part in AS escalation."""
        if self.asn_share is not None and asn not in self.asn_sizes:
            return None
        return asn

    def joined(self, ip: str, asn: Any, now: float) -> None:
        """``ip`` (in ``asn``) was listed at ``now``: escalate where a threshold is met."""
        if self.prefix_threshold is not None:
            key = prefix_of(ip, self.prefix_len)
            group = self._prefixes.setdefault(key, _Group())
            group.listed_ips.add(ip)
            if group.record is None and len(group.listed_ips) >= self.prefix_threshold:
                group.record = self._open("prefix", key, now, "escalation")
        if self.asn_share is not None and asn is not None:
            key = asn_key(asn)
            group = self._asns.setdefault(key, _Group())
            group.listed_ips.add(ip)
            if group.record is None and self._asn_over(asn, group):
                group.record = self._open("asn", key, now, "escalation")

    def left(self, ip: str, asn: Any, at: float) -> None:
        """``ip`` was delisted at ``at``: de-escalate where the count drops below."""
        if self.prefix_threshold is not None:
            group = self._prefixes[prefix_of(ip, self.prefix_len)]
            group.listed_ips.discard(ip)
            if group.record is not None and len(group.listed_ips) < self.prefix_threshold:
                _deescalate(group, at)
        if self.asn_share is not None and asn is not None:
            group = self._asns[asn_key(asn)]
            group.listed_ips.discard(ip)
            if group.record is not None and not self._asn_over(asn, group):
                _deescalate(group, at)

    def covering(self, ip: str, asn: Any, scopes: tuple[str, ...]) -> ListingRecord | None:
        """The prefix listing, else the AS listing, that covers ``ip`` now."""
        if "prefix" in scopes and self.prefix_threshold is not None:
            group = self._prefixes.get(prefix_of(ip, self.prefix_len))
            if group is not None and group.record is not None:
                return group.record
        if "asn" in scopes and self.asn_share is not None and asn is not None:
            group = self._asns.get(asn_key(asn))
            if group is not None and group.record is not None:
                return group.record
        return None

    def _asn_over(self, asn: Any, group: _Group) -> bool:
        n = len(group.listed_ips)
        return n >= self.asn_min_listed and n / self.asn_sizes[asn] >= self.asn_share


def _deescalate(group: _Group, at: float) -> None:
    assert group.record is not None
    group.record.delisted_at = at
    group.record.ended = "deescalation"
    group.record = None
