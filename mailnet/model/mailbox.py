"""Mailbox stores and their retrieval by the recipients' clients (POP polling).

Each recipient's client polls (POP) at its domain's ``poll_interval`` from a random phase;
a message stored at time t is retrieved at the client's first poll at or after t. The poll
times are arithmetic, so no simulation process is needed per mailbox. A domain whose
clients use IMAP push (IDLE) has each message retrieved as soon as it is stored.
"""

from __future__ import annotations

import math

import numpy as np

from mailnet import smtp
from mailnet.model.message import Message, address_exists, domain_of, is_trap
from mailnet.records import MessageTable
from mailnet.scenario import Domain

_DEFAULT = Domain()
"""Retrieval of a domain the scenario does not name: the defaults of ``[domains.NAME]``."""


class Mailboxes:
    """The final stores of every domain; records delivery and retrieval times."""

    def __init__(
        self,
        domains: dict[str, Domain],
        horizon: float,
        table: MessageTable,
        rng: np.random.Generator,
    ):
        self._poll = {name: d.poll_interval for name, d in domains.items()}
        self._push = {name for name, d in domains.items() if d.retrieval == "imap"}
        self._horizon = horizon
        self._table = table
        self._rng = rng
        self._phase: dict[str, float] = {}

    def deliver(self, message: Message, recipient: str, now: float) -> smtp.Reply:
        """Local delivery by the sending MTA itself (its own domains): store, or answer
        550 5.1.1 for a mailbox that does not exist."""
        if not address_exists(recipient):
            return smtp.NO_SUCH_USER
        row = message.rows[recipient]
        self._table.stored_by[row] = message.provider
        self.store(row, recipient, domain_of(recipient), now)
        return smtp.OK

    def store(self, row: int, recipient: str, domain: str, now: float) -> None:
        """Deliver a message row to ``recipient``'s mailbox at ``now``."""
        table = self._table
        table.delivered_at[row] = now
        table.settle(row, "delivered", smtp.OK.code, smtp.OK.enhanced, "delivered to mailbox")
        if is_trap(recipient):
            return  # nobody reads a spam trap
        retrieved = self.retrieval_time(recipient, domain, now)
        if retrieved <= self._horizon:
            table.retrieved_at[row] = retrieved

    def retrieval_time(self, recipient: str, domain: str, now: float) -> float:
        """When ``recipient``'s client fetches a message stored at ``now`` (seconds)."""
        if domain in self._push:
            return now
        interval = self._poll.get(domain, _DEFAULT.poll_interval)
        phase = self._phase.get(recipient)
        if phase is None:
            phase = float(self._rng.uniform(0.0, interval))
            self._phase[recipient] = phase
        polls = math.ceil((now - phase) / interval)
        return phase + max(polls, 0) * interval
