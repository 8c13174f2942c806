"""Messages and queue entries: plain records, never simulation processes of their own."""

from __future__ import annotations


class Message:
    """A message as submitted: envelope sender, class and the table rows of its recipients.

    ``rows`` maps each envelope recipient to its row in the messages table. A DSN has the
    null sender ``""`` and ``is_dsn`` set.
    """

    __slots__ = (
        "id",
        "sender",
        "sender_class",
        "provider",
        "is_dsn",
        "created_at",
        "rows",
        "size",
        "original",
        "group",
        "retries",
    )

    def __init__(
        self,
        id,
        sender,
        sender_class,
        provider,
        is_dsn,
        created_at,
        size=4096,
        original=None,
        group="",
        retries=True,
    ):
        self.id = id
        self.sender = sender
        self.sender_class = sender_class
        self.provider = provider
        self.is_dsn = is_dsn
        self.created_at = created_at
        self.rows: dict[str, int] = {}
        self.size = size
        self.original = original
        self.group = group
        self.retries = retries

    @property
    def legitimate(self) -> bool:
        """Mail whose sender is not a spammer (ham, bulk, and DSNs of either)."""
        return self.sender_class != "spam"


class Delivery:
    """A queue entry of one MTA: one message for one destination domain.

    ``recipients`` still pending; ``arrival`` is when this MTA queued it (seconds);
    ``first_failure`` the time of its first failed attempt here (or None).
    """

    __slots__ = (
        "message",
        "domain",
        "recipients",
        "arrival",
        "first_failure",
        "attempts",
        "warned",
        "eligible",
        "source_ip",
    )

    def __init__(self, message: Message, domain: str, recipients: list[str], arrival: float):
        self.message = message
        self.domain = domain
        self.recipients = recipients
        self.arrival = arrival
        self.first_failure: float | None = None
        self.attempts = 0
        self.warned = False
        self.eligible = arrival
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
