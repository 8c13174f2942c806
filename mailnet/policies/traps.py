"""The blocklists' own spam-trap networks, and the volume they weigh reports against.

Spam traps are addresses on domains the list operators (or their feeds) run: pristine
addresses seeded on the web, typo domains (mail-facts.md §18). They accept everything, so
a sender whose list holds them keeps hitting them whatever the big receivers do with the
rest of its mail; a listing thus lasts while the spam continues and lapses only after it
stops. ``TrapFeed`` is that sink: each time a provider's MTA sends a message to a
destination from an address, every list whose ``traps`` names the sender's group draws
how many of those recipients brought one of its traps along (each with the group's
share), and hears of the hits from that address; volume-relative lists (SpamCop) also
count the recipients sent. No SMTP session with the scenario's servers is involved.

Trap shares are model assumptions: no operator publishes trap rates of bought lists
(mail-facts.md §18). Draws come in blocks from one stream per list and sender group, so
a change in one group's volume does not shift another group's hits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mailnet.policies.blocklists import Blocklist
from mailnet.randomness import BlockDraws

TrapHit = tuple[float, str, str, str, str, int]
"""``(time, list, ip, group, sender, hits)``: trap hits of one message at one list."""

_RETENTION_SLACK = 1.0
"""Seconds a hit is kept beyond the look-back readers asked for, so that rounding in
``listed_at - window`` never drops a hit a reader counts."""


class TrapFeed:
    """Every list's trap network and volume sensor, fed by the providers' MTAs.

    ``shares`` maps list names to ``{sender group: share of its recipients}``;
    ``stream(list, group)`` gives the generator of that pair's draws. ``hits`` holds the
    trap hits as :data:`TrapHit` in time order, the evidence a provider reads to find the
    customer (:meth:`senders`).

    A hit can matter only while it is in some list's window, or while a reader may still
    look back to it (:meth:`retain`). Hits older than ``now - retention`` (the longest
    list window or look-back, plus a second) are dropped as new ones arrive, so ``hits``
    holds one retention's worth at most; a provider that looks back further must call
    :meth:`retain` first.
    """

    def __init__(
        self,
        lists: Mapping[str, Blocklist],
        shares: Mapping[str, Mapping[str, float]],
        stream: Callable[[str, str], np.random.Generator],
    ):
        self._feeds: dict[str, list[tuple[Blocklist, float, BlockDraws]]] = {}
        for name, groups in shares.items():
            for group, share in groups.items():
                if share > 0:
                    draws = BlockDraws(stream(name, group).random)
                    self._feeds.setdefault(group, []).append((lists[name], share, draws))
        self._volume = [b for b in lists.values() if b.volume_ratio is not None]
        self.hits: deque[TrapHit] = deque()
        self.retention = max((b.window for b in lists.values()), default=0.0) + _RETENTION_SLACK

    def retain(self, lookback: float) -> None:
        """Keep hits at least ``lookback`` seconds: a reader will ask :meth:`senders` for
        hits that far before the time it asks."""
        self.retention = max(self.retention, lookback + _RETENTION_SLACK)

    @property
    def active(self) -> bool:
        """Whether any list has traps or weighs volume (else the feed does nothing)."""
        return bool(self._feeds or self._volume)

    def sent(
        self, group: str, sender: str, ip: str, recipients: int, now: float, *, asn: Any = None
    ) -> None:
        """``sender`` of ``group`` sent a message to ``recipients`` recipients from ``ip``
        (in AS ``asn``) at ``now`` (seconds)."""
        for blocklist in self._volume:
            blocklist.observe_volume(ip, now, recipients)
        feeds = self._feeds.get(group)
        if feeds is None:
            return
        for blocklist, share, draws in feeds:
            n = 0
            for _ in range(recipients):
                if draws.next() < share:
                    n += 1
            if n:
                hits = self.hits
                edge = now - self.retention
                while hits and hits[0][0] < edge:
                    hits.popleft()
                hits.append((now, blocklist.name, ip, group, sender, n))
                blocklist.observe("trap", ip, asn, now, n)

    def senders(self, list_name: str, ip: str, since: float) -> list[str]:
        """Senders whose mail hit ``list_name``'s traps from ``ip`` at or after ``since``,
        most hits first (ties by first hit). ``since`` must lie within the
        retention (:meth:`retain`) before the time of the call."""
        counts: dict[str, int] = {}
        for at, name, hit_ip, _group, sender, n in self.hits:
            if at >= since and name == list_name and hit_ip == ip:
                counts[sender] = counts.get(sender, 0) + n
        return sorted(counts, key=lambda s: -counts[s])
