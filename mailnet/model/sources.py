"""Which of its addresses an MTA sends an attempt from.

A provider's pool strategy (:class:`~mailnet.policies.outbound_controls.PoolAssigner`)
picks the address when it has one; otherwise ``ip_selection`` does: round-robin,
uniformly at random, or by a hash of the sender (crc32, stable across processes). A retry
keeps the address of the attempt before unless the retry policy moves retries to other
addresses. Addresses in warm-up are capped per day; a capped address gives way to the next
one of the pool that may still send. Senders the provider quarantined leave from its
quarantine addresses, which nobody else uses. When a message first leaves for a
destination, the blocklists' trap networks hear of it from that address
(:class:`~mailnet.policies.traps.TrapFeed`).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from mailnet.model.message import Delivery
from mailnet.policies.outbound_controls import PoolAssigner, SenderStats, WarmupSchedule
from mailnet.policies.traps import TrapFeed
from mailnet.scenario import Provider


class SourceAddresses:
    """The source addresses of one MTA and how an attempt gets one.

    ``quarantine_ips`` are kept out of the normal rotation for quarantined senders
    (:meth:`quarantine`). ``feed`` (with the MTA's ``asn``), when set, hears of every
    message's first attempt to each destination.
    """

    def __init__(
        self,
        ips: list[str],
        ip_selection: str,
        rng: np.random.Generator,
        *,
        assigner: PoolAssigner | None = None,
        warmup: WarmupSchedule | None = None,
        quarantine_ips: list[str] | None = None,
    ):
        self.ips = list(ips)
        self.quarantine_ips = tuple(quarantine_ips or ())
        self._rotation = [ip for ip in self.ips if ip not in self.quarantine_ips] or self.ips
        self.ip_selection = ip_selection
        self.rng = rng
        self.assigner = assigner
        self.warmup = warmup
        self.feed: TrapFeed | None = None
        self.asn: Any = None
        self._rr = 0
        self._qrr = 0
        self._quarantined: dict[str, float] = {}

    @classmethod
    def for_provider(
        cls, config: Provider, rng: np.random.Generator, stats: SenderStats | None
    ) -> SourceAddresses:
        """The addresses, pools, quarantine and warm-up of ``[providers.NAME]``; ``stats``
        are the per-sender counts pools by reputation read."""
        return cls(
            config.ips,
            config.ip_selection,
            rng,
            assigner=PoolAssigner.for_provider(config, stats),
            warmup=None if config.warmup is None else WarmupSchedule.from_config(config.warmup),
            quarantine_ips=None if config.quarantine is None else config.quarantine.ips,
        )

    def attach(self, feed: TrapFeed, asn: Any) -> None:
        """Report first attempts to ``feed``, from addresses in AS ``asn``."""
        self.feed = feed if feed.active else None
        self.asn = asn

    def quarantine(self, sender: str, now: float, duration: float | None) -> None:
        """Send ``sender``'s mail from the quarantine addresses from ``now`` on, for
        ``duration`` seconds (``None``: for good)."""
        if not self.quarantine_ips:
            raise ValueError("this MTA has no quarantine addresses")
        self._quarantined[sender] = math.inf if duration is None else now + duration

    def quarantined(self, sender: str, now: float) -> bool:
        """Whether ``sender`` is in quarantine at ``now``."""
        until = self._quarantined.get(sender)
        return until is not None and now < until

    def pick(self, delivery: Delivery, now: float, rotate: bool) -> str | None:
        """The source address of ``delivery``'s attempt at ``now``, or ``None`` when
        warm-up caps forbid all; ``rotate``: the retry policy moves retries elsewhere."""
        first = delivery.source_ip is None
        message = delivery.message
        ip: str | None
        if self._quarantined and self.quarantined(message.sender, now):
            ip = self.quarantine_ips[self._qrr % len(self.quarantine_ips)]
            self._qrr += 1
        elif delivery.source_ip is not None and not rotate and self.assigner is None:
            ip = delivery.source_ip
        else:
            ip = self._choose(delivery, now)
        warmup = self.warmup
        if warmup is not None and not warmup.admit(ip, now):
            # a capped address: take the next one of the pool that may still send today
            others = [o for o in self._rotation if o != ip]
            ip = next((o for o in others if warmup.admit(o, now)), None)
        delivery.source_ip = ip
        if first and ip is not None and self.feed is not None and message.group:
            recipients = len(delivery.recipients)
            self.feed.sent(message.group, message.sender, ip, recipients, now, asn=self.asn)
        return ip

    def _choose(self, delivery: Delivery, now: float) -> str:
        message = delivery.message
        if self.assigner is not None:
            key = message.group if self.assigner.strategy == "dedicated" else message.sender
            return self.assigner.pick(key, message.sender_class, now)
        ips = self._rotation
        if len(ips) == 1:
            return ips[0]
        if self.ip_selection == "sender-hash":
            return ips[zlib.crc32(message.sender.encode()) % len(ips)]
        if self.ip_selection == "random":
            return ips[int(self.rng.integers(len(ips)))]
        self._rr += 1
        return ips[(self._rr - 1) % len(ips)]
