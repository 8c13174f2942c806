"""Messages and queue entries: plain records, never simulation processes of their own."""

from __future__ import annotations

from enum import StrEnum

import simpy

from mailnet.records import MessageTable


class SenderClass(StrEnum):
    """What kind of mail a sender sends (``class`` of ``[senders.NAME]``)."""

    HAM = "ham"
    BULK = "bulk"
    SPAM = "spam"


SUBMISSION_HOPS = 1
"""Received: headers of a message as its provider's MSA accepted it."""


class Message:
    """A message as submitted: envelope sender, class and the table rows of its recipients.

    ``rows`` maps each envelope recipient to its row in the messages table. A DSN has the
    null sender ``""`` and ``is_dsn`` set. ``group`` is the sender group that wrote it
    (empty for DSNs); ``retries`` is false for spamware that never retries or bounces.
    ``hops`` counts, per recipient, the MTAs its copy has passed (its Received: headers):
    one from submission, one more at each relay or backup MX that accepts it.
    ``relayed_from`` maps a recipient to the client address that handed its copy to a
    backup MX or relay (the external relay of its Received: chain), or is ``None``.
    """

    __slots__ = (
        "created_at",
        "group",
        "hops",
        "id",
        "is_dsn",
        "provider",
        "relayed_from",
        "retries",
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
    ):
        self.id = id
        self.sender = sender
        self.sender_class = sender_class
        self.provider = provider
        self.is_dsn = is_dsn
        self.created_at = created_at
        self.rows: dict[str, int] = {}
        self.hops: dict[str, int] = {}
        self.relayed_from: dict[str, str] | None = None
        self.group = group
        self.retries = retries

    def add_hop(self, recipient: str) -> int:
        """Count one more MTA on ``recipient``'s copy; the number of hops it has now."""
        hops = self.hops.get(recipient, SUBMISSION_HOPS) + 1
        self.hops[recipient] = hops
        return hops

    @property
    def legitimate(self) -> bool:
        """Mail whose sender is not a spammer (ham, bulk, and DSNs of either)."""
        return self.sender_class != SenderClass.SPAM


class MessageFactory:
    """Creates messages with consecutive ids, one messages-table row per recipient."""

    def __init__(self, env: simpy.Environment, table: MessageTable):
        self.env = env
        self._table = table
        self._next_id = 0

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
        now = self.env.now
        message = Message(
            self._next_id,
            sender,
            sender_class,
            provider,
            is_dsn=is_dsn,
            created_at=now,
            group=group,
            retries=retries,
        )
        self._next_id += 1
        table = self._table
        for rcpt in recipients:
            message.rows[rcpt] = table.add(
                message.id, rcpt, sender, sender_class, provider, domain_of(rcpt), is_dsn, now
            )
        return message

    def link_dsn(self, dsn: Message, original: Message, kind: str, recipient: str) -> None:
        """Record that ``dsn`` reports ``kind`` (failed, delayed, expired) on ``recipient``
        of ``original``; a DSN is released to its MTA as soon as it is made."""
        table = self._table
        now = self.env.now
        for row in dsn.rows.values():
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
