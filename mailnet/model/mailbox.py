"""Mailbox stores and their retrieval by the recipients' clients (POP polling).

Each recipient's client polls (POP) at its domain's ``poll_interval`` from a random phase;
a message stored at time t is retrieved at the client's first poll at or after t. The poll
times are arithmetic, so no simulation process is needed per mailbox. A domain whose
clients use IMAP push (IDLE) has each message retrieved as soon as it is stored.
"""

from __future__ import annotations

import math

import numpy as np

from mailnet.model.message import is_trap
from mailnet.records import MessageTable


class Mailboxes:
    """The final stores of every domain; records delivery and retrieval times."""

    def __init__(
        self,
        poll_intervals: dict[str, float],
        horizon: float,
        table: MessageTable,
        rng: np.random.Generator,
        push_domains: set[str] | None = None,
    ):
        self._poll = poll_intervals
        self._push = push_domains or set()
        self._horizon = horizon
        self._table = table
        self._rng = rng
        self._phase: dict[str, float] = {}
        self.stored = 0

    def store(self, row: int, recipient: str, domain: str, now: float) -> None:
        """Deliver a message row to ``recipient``'s mailbox at ``now``."""
        table = self._table
        table.delivered_at[row] = now
        table.settle(row, "delivered", 250, "2.0.0", "delivered to mailbox")
        if is_trap(recipient):
            self.stored += 1
            return  # nobody reads a spam trap
        retrieved = self.retrieval_time(recipient, domain, now)
        if retrieved <= self._horizon:
            table.retrieved_at[row] = retrieved
        self.stored += 1

    def retrieval_time(self, recipient: str, domain: str, now: float) -> float:
        if domain in self._push:
            return now
        interval = self._poll.get(domain, 600.0)
        phase = self._phase.get(recipient)
        if phase is None:
            phase = float(self._rng.uniform(0.0, interval))
            self._phase[recipient] = phase
        polls = math.ceil((now - phase) / interval)
        return phase + max(polls, 0) * interval
