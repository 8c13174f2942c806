"""Messages and queue entries: plain records, never simulation processes of their own.

Each message also carries a ``draw_key``: the root of its own random substream, so that
the draws made for it (its filing, its recipients' complaints) do not depend on how many
other messages the run holds (:func:`message_uniform`).
"""

from __future__ import annotations

import hashlib
import sys
from enum import StrEnum
from typing import Final

import numpy as np
import simpy

from mailnet.message_table import MessageTable


class SenderClass(StrEnum):
    """What kind of mail a sender sends (``class`` of ``[senders.NAME]``)."""

    HAM = "ham"
    BULK = "bulk"
    SPAM = "spam"


SPAM: Final = "spam"
"""``SenderClass.SPAM``'s text, for the model's per-message tests: a compiled module reads
an enum member as a generic attribute lookup, a constant as a literal."""


SUBMISSION_HOPS = 1
"""Received: headers of a message as its provider's MSA accepted it."""


_MASK = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijection of 64-bit integers
    whose outputs pass BigCrush for consecutive inputs; about 0.3 us in Python."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def mix64_block(x: np.ndarray) -> np.ndarray:
    """:func:`mix64` of each element of the ``uint64`` array ``x``: numpy's unsigned
    arithmetic wraps modulo 2**64 as the masks of :func:`mix64` do, at about 10 ns an
    element instead of 1 us."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


KEY_BLOCK = 64
"""Draw keys a sender group computes at once (:func:`draw_keys`) at first; a group's
blocks then grow with the messages it has sent (a 32nd of them), up to
``KEY_BLOCK_MAX``: a block costs about 140,000 instructions of numpy calls whatever its
size, so a group sending many messages pays it rarely, and a group's keys held at once
stay within a 32nd of its messages. A key depends on the rank alone, never on the block."""

KEY_BLOCK_MAX = 1024

SMALL_INDEX = 64
"""Recipient indices whose :func:`mix64` is computed once, at import."""


def draw_keys(group: int, first: int, count: int) -> list[int]:
    """The draw keys of a sender group's messages ``first`` to ``first + count - 1`` (its
    rank among the group's messages, from 1): ``mix64(group ^ mix64(rank))`` each, where
    ``group`` is the group's key (:func:`group_key`)."""
    ranks = np.arange(first, first + count, dtype=np.uint64)
    keys: list[int] = mix64_block(np.uint64(group) ^ mix64_block(ranks)).tolist()
    return keys


def message_uniform(stream: int, message: Message, index: int) -> float:
    """A uniform in [0, 1) for recipient ``index`` of ``message`` in substream ``stream``.

    A keyed, counter-based draw: ``mix64(stream ^ message.draw_key ^ mix64(index))``, top
    53 bits. ``stream`` is a 64-bit key drawn once from a named stream (one per use: a
    receiver's filter, the complaints), ``draw_key`` is fixed by the message's sender
    group and its rank among that group's messages. The same message of the same group
    thus gets the same draws whatever other groups send (common random numbers that
    survive a change of the spam volume), at ~1 us a draw instead of ~20 us for a numpy
    Generator per message.
    """
    mixed = _MIXED_INDEX[index] if index < SMALL_INDEX else mix64(index)
    return (mix64(stream ^ message.draw_key ^ mixed) >> 11) * (1.0 / (1 << 53))


_MIXED_INDEX: tuple[int, ...] = tuple(mix64(i) for i in range(SMALL_INDEX))


def stream_key(rng) -> int:
    """A 64-bit substream key drawn from numpy Generator ``rng`` (once, at build time)."""
    return int(rng.integers(0, 1 << 63, dtype="int64")) | (int(rng.integers(0, 2)) << 63)


def group_key(group: str) -> int:
    """A stable 64-bit key for a sender group's name (unlike ``hash()``, the same in
    every process)."""
    return int.from_bytes(hashlib.blake2b(group.encode(), digest_size=8).digest(), "little")


class Message:
    """A message as submitted: envelope sender, class and the table rows of its recipients.

    Each envelope recipient has a row in the messages table (:meth:`row_of`,
    :meth:`recipients`, :meth:`table_rows`): a message of one recipient (most mail) keeps
    it in ``recipient`` and ``row``, one of several in ``rows``, recipient -> row in their
    order (``None`` for one: a one-entry dict would cost 184 bytes for as long as the
    message is queued). A DSN has the null sender ``""`` and ``is_dsn`` set. ``group``
    is the sender group that wrote it (empty for DSNs); ``retries`` is false for spamware
    that never retries or bounces.
    ``hops`` counts, per recipient, the MTAs its copy has passed (its Received: headers):
    one from submission, one more at each relay or backup MX that accepts it
    (:meth:`add_hop`). ``relayed_from`` holds, per recipient, the client address that
    handed its copy to a backup MX or relay (the external relay of its Received: chain;
    :meth:`note_origin`, :meth:`origin`). Each is ``None`` until a relay writes it, then
    the value itself for a message of one recipient and a list in the order of its
    recipients for several.
    ``domain`` is the authenticated sending domain (DKIM d=, Return-Path) receivers keep
    reputation for (empty for DSNs); ``draw_key`` roots the message's own random
    substream (:func:`message_uniform`).
    """

    __slots__ = (
        "created_at",
        "domain",
        "draw_key",
        "group",
        "hops",
        "id",
        "is_dsn",
        "provider",
        "recipient",
        "relayed_from",
        "retries",
        "row",
        "rows",
        "sender",
        "sender_class",
    )

    def __init__(
        self,
        id: int,
        sender: str,
        sender_class: str,
        provider: str,
        *,
        is_dsn: bool,
        created_at: float,
        group: str = "",
        retries: bool = True,
        domain: str = "",
        draw_key: int = 0,
    ):
        self.id = id
        self.sender = sender
        self.sender_class = sender_class
        self.provider = provider
        self.is_dsn = is_dsn
        self.created_at = created_at
        self.recipient = ""
        self.row = -1  # none yet
        self.rows: dict[str, int] | None = None
        self.hops: int | list[int] | None = None
        self.relayed_from: str | list[str | None] | None = None
        self.group = group
        self.retries = retries
        self.domain = domain
        self.draw_key = draw_key

    def add_hop(self, recipient: str) -> int:
        """Count one more MTA on ``recipient``'s copy; the number of hops it has now."""
        hops = self.hops
        if isinstance(hops, list):
            i = self.index(recipient)
            n = hops[i] + 1
            hops[i] = n
            return n
        if self.rows is None:
            n = (SUBMISSION_HOPS if hops is None else hops) + 1
            self.hops = n
            return n
        counts = self.hops = [SUBMISSION_HOPS] * len(self.rows or ())
        i = self.index(recipient)
        counts[i] += 1
        return counts[i]

    def note_origin(self, recipient: str, client_ip: str) -> None:
        """Note ``client_ip`` as the client that relayed ``recipient``'s copy."""
        origins = self.relayed_from
        if self.rows is None:
            self.relayed_from = client_ip
            return
        if not isinstance(origins, list):
            origins = self.relayed_from = [None] * len(self.rows or ())
        origins[self.index(recipient)] = client_ip

    def origin(self, recipient: str) -> str | None:
        """The client noted as relaying ``recipient``'s copy (``None``: none was)."""
        origins = self.relayed_from
        if isinstance(origins, list):
            return origins[self.index(recipient)]
        return origins

    def add_row(self, recipient: str, row: int) -> None:
        """Give ``recipient`` its ``row`` of the messages table (after the others')."""
        if self.row < 0:
            self.recipient, self.row = recipient, row
            return
        rows = self.rows
        if rows is None:
            rows = self.rows = {self.recipient: self.row}
        rows[recipient] = row

    def row_of(self, recipient: str) -> int:
        """``recipient``'s row in the messages table (``KeyError``: not a recipient)."""
        rows = self.rows
        if rows is not None:
            return rows[recipient]
        if recipient != self.recipient or self.row < 0:
            raise KeyError(recipient)
        return self.row

    def recipients(self) -> list[str]:
        """The envelope recipients, in order."""
        rows = self.rows
        if rows is not None:
            return list(rows)
        return [self.recipient] if self.row >= 0 else []

    def table_rows(self) -> list[int]:
        """The recipients' rows in the messages table, in order."""
        rows = self.rows
        if rows is not None:
            return list(rows.values())
        return [self.row] if self.row >= 0 else []

    def index(self, recipient: str) -> int:
        """The position of ``recipient`` among the message's recipients (its substream
        counter): ``rows`` keeps them in order, each once (a summary-only run reuses
        table rows, so their numbers need not be consecutive)."""
        rows = self.rows
        return 0 if rows is None else list(rows).index(recipient)

    @property
    def legitimate(self) -> bool:
        """Mail whose sender is not a spammer (ham, bulk, and DSNs of either)."""
        return self.sender_class != SPAM


class MessageFactory:
    """Creates messages with consecutive ids, one messages-table row per recipient.

    ``sender_domains`` maps sender groups to their own sending domain; other mail is
    authenticated with the domain of its envelope sender (the provider's shared domain).
    """

    def __init__(
        self,
        env: simpy.Environment,
        table: MessageTable,
        sender_domains: dict[str, str] | None = None,
    ):
        self.env = env
        self._table = table
        self._next_id = 0
        self._domains = sender_domains or {}
        # group -> [its key, messages so far, messages before its block]
        self._ranks: dict[str, list[int]] = {}
        self._keys: dict[str, list[int]] = {}  # group -> the draw keys of its block

    def new(
        self,
        sender: str,
        sender_class: str,
        provider: str,
        recipients: list[str],
        *,
        is_dsn: bool,
        group: str = "",
        retries: bool = True,
    ) -> Message:
        """A message created now, with a table row per recipient."""
        now = self.env._now
        rank = self._ranks.get(group)
        if rank is None:
            rank = self._ranks[group] = [group_key(group), 0, 0]
            keys = self._keys[group] = []
        else:
            keys = self._keys[group]
        n = rank[1]
        rank[1] = n + 1
        at = n - rank[2]
        if at == len(keys):  # the group's next block: its ranks from n + 1
            size = min(KEY_BLOCK_MAX, max(KEY_BLOCK, n >> 5))
            keys = self._keys[group] = draw_keys(rank[0], n + 1, size)
            rank[2], at = n, 0
        # domain_of, interned: one string per domain, not one per message in the queues
        domain = self._domains.get(group) or sys.intern(sender.rpartition("@")[2])
        message = Message(
            self._next_id,
            sender,
            sender_class,
            provider,
            is_dsn=is_dsn,
            created_at=now,
            group=group,
            retries=retries,
            domain=domain,
            draw_key=keys[at],
        )
        message_id = self._next_id
        self._next_id = message_id + 1
        add = self._table.add
        for rcpt in recipients:
            message.add_row(
                rcpt,
                add(
                    message_id,
                    rcpt,
                    sender,
                    sender_class,
                    provider,
                    sys.intern(rcpt.rpartition("@")[2]),  # domain_of, inlined: once per recipient
                    is_dsn,
                    now,
                    domain,
                ),
            )
        return message

    def link_dsn(self, dsn: Message, original: Message, kind: str, recipient: str) -> None:
        """Record that ``dsn`` reports ``kind`` (failed, delayed, expired) on ``recipient``
        of ``original``; a DSN is released to its MTA as soon as it is made."""
        table = self._table
        now = self.env._now
        for row in dsn.table_rows():
            table.link_dsn(row, original.id, kind, recipient)
            table.release(row, now)


class Delivery:
    """A queue entry of one MTA: one message for one destination domain.

    ``recipients`` still pending; ``arrival`` is when this MTA queued it (seconds);
    ``first_failure`` the time of its first failed attempt here (or None); ``source_ip``
    the address of its last attempt.
    """

    __slots__ = (
        "arrival",
        "attempts",
        "domain",
        "first_failure",
        "message",
        "recipients",
        "source_ip",
        "warned",
    )

    def __init__(self, message: Message, domain: str, recipients: list[str], arrival: float):
        self.message = message
        self.domain = domain
        self.recipients = recipients
        self.arrival = arrival
        self.first_failure: float | None = None
        self.attempts = 0
        self.warned = False
        self.source_ip: str | None = None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def address_exists(address: str) -> bool:
    """Whether a mailbox exists: local parts starting with ``nosuch`` do not (550 5.1.1)."""
    return not address.startswith("nosuch")


def is_trap(address: str) -> bool:
    """Spam traps: addresses whose local part starts with ``trap``; they accept mail, report
    the sending address to the blocklists and are never read."""
    return address.startswith("trap")
