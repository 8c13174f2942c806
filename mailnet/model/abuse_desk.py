"""A provider's abuse desk: what it does when a list names one of its addresses.

Providers watch the blocklists for their addresses. When one is listed, the desk may ask
the list to remove it (``[providers.NAME.removal_requests]``), which lists such as
Spamhaus CSS grant "within limits" and follow with quick relisting if the spam goes on
(mail-facts.md §17), and may move the customers whose mail hit that list's traps to a
quarantine pool (``[providers.NAME.quarantine]``), as ESPs split shared pools by sender
quality (mail-facts.md §20). The customer is found from the trap evidence of the listing
window; a listing without trap evidence (complaints only) quarantines nobody.
"""

from __future__ import annotations

from typing import Any

import simpy

from mailnet.model.sources import SourceAddresses
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.listings import ListingRecord
from mailnet.policies.traps import TrapFeed
from mailnet.scenario import Provider


class AbuseDesk:
    """The desk of provider ``name``: listens to ``lists`` for listings of its addresses.

    ``actions`` records what it did, one dict per action: ``provider``, ``action``
    (``removal`` or ``quarantine``), ``list``, ``ip``, ``at`` (seconds), and ``until``
    (when the removal takes effect, ``None`` if refused) or ``sender``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: Provider,
        *,
        sources: SourceAddresses,
        lists: dict[str, Blocklist],
        feed: TrapFeed,
        actions: list[dict[str, Any]],
    ):
        self.env = env
        self.name = name
        self.removal = config.removal_requests
        self.quarantine = config.quarantine
        self.sources = sources
        self.feed = feed
        self.actions = actions
        self.ips = frozenset(config.ips)
        for list_name, blocklist in lists.items():
            removes = self.removal is not None and _names(self.removal.lists, list_name)
            quarantines = self.quarantine is not None and _names(self.quarantine.lists, list_name)
            if removes or quarantines:
                blocklist.listeners.append(self._listener(blocklist, removes, quarantines))
            if quarantines:
                assert self.quarantine is not None
                # _isolate reads the hits of the window before the listing, after a delay
                feed.retain(blocklist.window + self.quarantine.after)

    def _listener(self, blocklist: Blocklist, removes: bool, quarantines: bool):
        def listed(record: ListingRecord) -> None:
            if record.key not in self.ips:
                return
            if removes:
                assert self.removal is not None
                self._after(self.removal.after, lambda: self._request(blocklist, record))
            if quarantines:
                assert self.quarantine is not None
                self._after(self.quarantine.after, lambda: self._isolate(blocklist, record))

        return listed

    def _after(self, delay: float, action) -> None:
        timer = self.env.timeout(delay)
        timer.callbacks.append(lambda _event: action())

    def _request(self, blocklist: Blocklist, record: ListingRecord) -> None:
        """Ask for removal if the listing still lasts."""
        if record.delisted_at is not None and record.delisted_at <= self.env.now:
            return
        now = self.env.now
        until = blocklist.request_removal(record.key, now)
        self._log("removal", blocklist.name, record.key, until=until)

    def _isolate(self, blocklist: Blocklist, record: ListingRecord) -> None:
        """Quarantine the senders whose trap hits stand behind the listing."""
        assert self.quarantine is not None
        now = self.env.now
        since = record.listed_at - blocklist.window
        for sender in self.feed.senders(blocklist.name, record.key, since):
            if not self.sources.quarantined(sender, now):
                self.sources.quarantine(sender, now, self.quarantine.duration)
                self._log("quarantine", blocklist.name, record.key, sender=sender)

    def _log(self, action: str, list_name: str, ip: str, **details: Any) -> None:
        self.actions.append(
            {
                "provider": self.name,
                "action": action,
                "list": list_name,
                "ip": ip,
                "at": self.env.now,
                **details,
            }
        )


def _names(lists: list[str] | None, name: str) -> bool:
    return lists is None or name in lists
