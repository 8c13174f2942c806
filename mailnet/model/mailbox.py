"""Mailbox stores, full mailboxes, and retrieval by the recipients' clients.

Each recipient's client polls (POP) at its domain's ``poll_interval`` from a random phase;
a message stored at time t is retrieved at the client's first poll at or after t. The poll
times are arithmetic, so no simulation process is needed per mailbox. POP fetches the
inbox only (RFC 1939 has no folders): mail the receiver filed in the spam folder is never
retrieved. A domain whose clients use IMAP push (IDLE) has each message retrieved as soon
as it is stored, in the spam folder too (an IMAP client sees every folder).

A mailbox is full while one of its domain's ``mailbox_full`` episodes or windows covers it
(``is_full``): the primary MX answers 452 4.2.2 to every attempt in that time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mailnet import smtp
from mailnet.message_table import MessageTable
from mailnet.model.message import Message, address_exists, domain_of, is_trap
from mailnet.policies.episodes import Episodes, Windows, key_seed, stream_key, uniform
from mailnet.scenario import Domain

PHASE_CACHE = 1 << 16
"""Most POP clients' poll phases kept at once: a phase is a pure function of the seed and
the address, so the cache is cleared when full and phases are recomputed (one hash)."""

_OK_CODE, _OK_ENHANCED = smtp.OK.code, smtp.OK.enhanced

_DEFAULT = Domain()
"""Retrieval of a domain the scenario does not name: the defaults of ``[domains.NAME]``."""


class Mailboxes:
    """The final stores of every domain; records delivery and retrieval times.

    ``rng`` keys, without drawing from it, each POP client's phase and the
    ``mailbox_full`` episodes: a mailbox's poll times and full periods depend on the seed
    and its address only, not on the traffic it or others receive (nor on which mail is
    filed where).
    """

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
        self._key = stream_key(rng, "poll phases")
        self._phase: dict[str, float] = {}
        self._full: dict[str, Callable[[str, float], bool]] = {
            name: _full_source(name, d, rng)
            for name, d in domains.items()
            if d.mailbox_full is not None
        }

    @property
    def may_fill(self) -> bool:
        """Whether any domain's mailboxes are ever full (``mailbox_full``)."""
        return bool(self._full)

    def is_full(self, recipient: str, now: float) -> bool:
        """Whether ``recipient``'s mailbox is full at ``now`` (seconds); ``now`` must not
        decrease from one query of a mailbox to the next."""
        if not self._full:
            return False
        full = self._full.get(domain_of(recipient))
        return full is not None and full(recipient, now)

    def deliver(self, message: Message, recipient: str, now: float) -> smtp.Reply:
        """Local delivery by the sending MTA itself (its own domains): store, or answer
        550 5.1.1 for a mailbox that does not exist."""
        if not address_exists(recipient):
            return smtp.NO_SUCH_USER
        row = message.row_of(recipient)
        self._table.stored_by[row] = message.provider
        self.store(row, recipient, domain_of(recipient), now)
        return smtp.OK

    def store(self, row: int, recipient: str, domain: str, now: float) -> None:
        """Deliver a message row to ``recipient``'s mailbox at ``now``."""
        table = self._table
        table.delivered_at[row] = now
        table.settle(row, "delivered", _OK_CODE, _OK_ENHANCED, "delivered to mailbox")
        if is_trap(recipient):
            return  # nobody reads a spam trap
        if domain in self._push:
            retrieved = now
        elif table.folder[row] == "spam":
            return  # POP fetches the inbox only
        else:
            retrieved = self._next_poll(recipient, domain, now)
        if retrieved <= self._horizon:
            table.retrieved_at[row] = retrieved

    def retrieval_time(self, recipient: str, domain: str, now: float) -> float:
        """When ``recipient``'s client fetches a message stored at ``now`` (seconds)."""
        if domain in self._push:
            return now
        return self._next_poll(recipient, domain, now)

    def _next_poll(self, recipient: str, domain: str, now: float) -> float:
        """The first poll of ``recipient``'s POP client at or after ``now`` (seconds)."""
        interval = self._poll.get(domain, _DEFAULT.poll_interval)
        phase = self._phase.get(recipient)
        if phase is None:
            phase = uniform(key_seed(self._key, recipient), 0) * interval
            if len(self._phase) >= PHASE_CACHE:
                self._phase.clear()  # a cache of a pure function: nothing is lost
            self._phase[recipient] = phase
        if now <= phase:
            return phase
        return phase + math.ceil((now - phase) / interval) * interval


def _full_source(
    name: str, domain: Domain, rng: np.random.Generator
) -> Callable[[str, float], bool]:
    """``full(recipient, t)`` for the mailboxes of domain ``name``."""
    config = domain.mailbox_full
    if isinstance(config, list):
        suffix = "@" + name
        windows = Windows(
            (
                w.start,
                w.end,
                None if w.mailboxes is None else frozenset(m + suffix for m in w.mailboxes),
            )
            for w in config
        )
        return windows.on
    assert config is not None
    return Episodes(config.share, config.mean_duration, stream_key(rng, name)).on
