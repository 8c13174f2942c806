"""Which of its addresses an MTA sends an attempt from.

A provider's pool strategy (:class:`~mailnet.policies.outbound_controls.PoolAssigner`)
picks the address when it has one; otherwise ``ip_selection`` does: round-robin,
uniformly at random, or by a hash of the sender (crc32, stable across processes). A retry
keeps the address of the attempt before unless the retry policy moves retries to other
addresses. Addresses in warm-up are capped per day; a capped address gives way to the next
one of the pool that may still send.
"""

from __future__ import annotations

import zlib

import numpy as np

from mailnet.model.message import Delivery
from mailnet.policies.outbound_controls import PoolAssigner, SenderStats, WarmupSchedule
from mailnet.scenario import Provider


class SourceAddresses:
    """The source addresses of one MTA and how an attempt gets one."""

    def __init__(
        self,
        ips: list[str],
        ip_selection: str,
        rng: np.random.Generator,
        *,
        assigner: PoolAssigner | None = None,
        warmup: WarmupSchedule | None = None,
    ):
        self.ips = list(ips)
        self.ip_selection = ip_selection
        self.rng = rng
        self.assigner = assigner
        self.warmup = warmup
        self._rr = 0

    @classmethod
    def for_provider(
        cls, config: Provider, rng: np.random.Generator, stats: SenderStats | None
    ) -> SourceAddresses:
        """The addresses, pools and warm-up of ``[providers.NAME]``; ``stats`` are the
        per-sender counts pools by reputation read."""
        return cls(
            config.ips,
            config.ip_selection,
            rng,
            assigner=PoolAssigner.for_provider(config, stats),
            warmup=None if config.warmup is None else WarmupSchedule.from_config(config.warmup),
        )

    def pick(self, delivery: Delivery, now: float, rotate: bool) -> str | None:
        """The source address of ``delivery``'s attempt at ``now``, or ``None`` when
        warm-up caps forbid all; ``rotate``: the retry policy moves retries elsewhere."""
        if delivery.source_ip is not None and not rotate and self.assigner is None:
            ip = delivery.source_ip
        else:
            ip = self._choose(delivery, now)
        warmup = self.warmup
        if warmup is not None and not warmup.admit(ip, now):
            # a capped address: take the next one of the pool that may still send today
            others = [o for o in self.ips if o != ip]
            found = next((o for o in others if warmup.admit(o, now)), None)
            delivery.source_ip = found
            return found
        delivery.source_ip = ip
        return ip

    def _choose(self, delivery: Delivery, now: float) -> str:
        message = delivery.message
        if self.assigner is not None:
            key = message.group if self.assigner.strategy == "dedicated" else message.sender
            return self.assigner.pick(key, message.sender_class, now)
        ips = self.ips
        if len(ips) == 1:
            return ips[0]
        if self.ip_selection == "sender-hash":
            return ips[zlib.crc32(message.sender.encode()) % len(ips)]
        if self.ip_selection == "random":
            return ips[int(self.rng.integers(len(ips)))]
        self._rr += 1
        return ips[(self._rr - 1) % len(ips)]
