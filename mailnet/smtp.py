"""SMTP replies: the shared vocabulary of every outcome in the model.

Every delivery outcome is a ``Reply`` with a basic code (RFC 5321) and an enhanced status
code (RFC 3463): 2xx accepted, 4xx transient (retry), 5xx permanent (bounce).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply, e.g. ``Reply(450, "4.2.0", "Greylisted")``."""

    code: int
    enhanced: str
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


# Client-side outcomes carry the code Postfix reports for them (mail-facts.md §5, §10).
OK = Reply(250, "2.0.0", "Ok: queued")
CONNECT_TIMEOUT = Reply(421, "4.4.1", "Connection timed out")
CONNECT_REFUSED = Reply(421, "4.4.1", "Connection refused")
BACKLOG_FULL = Reply(421, "4.3.2", "Service not available, too many connections")
NO_SUCH_USER = Reply(550, "5.1.1", "Recipient address rejected: User unknown")
NULL_MX = Reply(556, "5.1.10", "Recipient address has null MX")
MX_LOOP = Reply(554, "5.4.6", "mail for domain loops back to myself")
"""A relay that is itself the best MX: RFC 5321 §5.1, bounce (Postfix ``smtp_addr.c``)."""
NO_PRIMARY_RELAY = Reply(451, "4.4.4", "unable to find primary relay")
"""A backup MX whose more preferred MX hosts have no address: defer (Postfix
``smtp_addr.c``; mail-facts.md §11)."""
TOO_MANY_HOPS = Reply(554, "5.4.0", "Error: too many hops")
"""A copy that passed hopcount_limit MTAs (Received: headers, Postfix's cleanup; mail-facts.md §11)."""
SUSPENDED = Reply(421, "4.4.1", "delivery temporarily suspended: destination is dead")
EXPIRED = Reply(554, "5.4.7", "delivery time expired")
DNS_TEMPFAIL = Reply(451, "4.4.3", "Host or domain name lookup failed: temporary failure")
DNS_NXDOMAIN = Reply(550, "5.1.2", "Host or domain name not found")
MAILBOX_FULL = Reply(452, "4.2.2", "Mailbox full")
RECIPIENT_RATE = Reply(
    450,
    "4.2.1",
    "The user you are trying to contact is receiving mail at a "
    "rate that prevents additional messages from being delivered",
)
WARMUP_CAP = Reply(451, "4.7.0", "delivery deferred: every source address is at its warm-up cap")
OUTBOUND_SPAM = Reply(554, "5.7.1", "Message rejected: outbound spam filter")
SUSPENDED_SENDER = Reply(554, "5.7.1", "Sending suspended: bounce or complaint rate too high")
