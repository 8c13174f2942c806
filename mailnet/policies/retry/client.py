"""Each preset's SMTP client: how one attempt connects, which hosts it may skip, how many
deliveries run at once. A preset is the whole MTA, not only its retry schedule.

:class:`ClientParams` is plain data a policy derives from its validated parameters
(``policy.client()``); the outbound MTA reads it when it is built. The per-host memories
it names live in :mod:`mailnet.model.host_status`. Times are seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mailnet.units import format_duration

Concurrency = Literal["postfix", "per-destination", "global"]
"""``postfix``: qmgr's slow-start window and dead destinations (the hop's own
``destination_concurrency_*`` keys); ``per-destination``: a fixed limit per destination,
no feedback, no dead destinations; ``global``: only the hop's total limit."""

Memory = Literal["none", "retry-records", "tcpto", "host-status", "next-hop"]
"""What the client remembers about failing hosts (see :mod:`mailnet.model.host_status`):
``retry-records`` Exim's per-host retry records, ``tcpto`` qmail's per-address timeout
table, ``host-status`` Sendmail's host status cache, ``next-hop`` Exchange's next-hop
queue in retry."""

POSTFIX_CONNECT_TIMEOUT = 30.0
"""smtp_connect_timeout (mail-facts.md §1)."""
POSTFIX_MX_ADDRESS_LIMIT = 5
"""smtp_mx_address_limit (mail-facts.md §1, §11)."""
POSTFIX_MX_SESSION_LIMIT = 2
"""smtp_mx_session_limit (mail-facts.md §1, §11)."""


@dataclass(frozen=True, slots=True)
class ClientParams:
    """One preset's SMTP client.

    ``connect_timeout``: seconds a connection to a host that drops SYNs costs;
    ``mx_address_limit``: hosts (addresses) tried per delivery, not counting skipped ones
    (``None``: all); ``mx_session_limit``: SMTP sessions per delivery, a 4xx at a
    non-final host moving the recipients on to the next (``None``: up to the address
    limit; 1: the first session is final); ``concurrency``: see :data:`Concurrency`;
    ``destination_limit``: the per-destination limit of ``per-destination``;
    ``max_connections``: the MTA's total (``None``: the hop's ``max_connections``);
    ``recipients_per_delivery``: 1 splits every message per recipient (``None``: all of a
    domain's recipients together); ``memory`` and ``memory_time``: the per-host memory
    and its hold (seconds); ``memory_count``/``memory_later``: for ``next-hop``, holds
    of ``memory_time`` for the first ``memory_count`` failures, then ``memory_later``.
    ``mta`` names the client, ``source`` where the values come from.
    """

    mta: str
    source: str
    connect_timeout: float = POSTFIX_CONNECT_TIMEOUT
    mx_address_limit: int | None = POSTFIX_MX_ADDRESS_LIMIT
    mx_session_limit: int | None = POSTFIX_MX_SESSION_LIMIT
    concurrency: Concurrency = "postfix"
    destination_limit: int | None = None
    max_connections: int | None = None
    recipients_per_delivery: int | None = None
    memory: Memory = "none"
    memory_time: float = 0.0
    memory_count: int = 0
    memory_later: float = 0.0

    @property
    def waits_for_hosts(self) -> bool:
        """A delivery whose every host is held waits for the first to come free (Exim,
        Exchange) instead of counting as a failed attempt of the message (qmail,
        Sendmail)."""
        return self.memory in ("retry-records", "next-hop")

    def describe(self) -> str:
        """One line for ``mailnet presets``: connect timeout, host limits, concurrency and
        memory, durations as text."""
        parts = [f"{self.mta}: connect {format_duration(self.connect_timeout)}"]
        hosts = "all" if self.mx_address_limit is None else str(self.mx_address_limit)
        sessions = "any" if self.mx_session_limit is None else str(self.mx_session_limit)
        parts.append(f"hosts {hosts}, sessions {sessions}")
        parts.append(_concurrency_text(self))
        if self.recipients_per_delivery is not None:
            parts.append(f"{self.recipients_per_delivery} rcpt per delivery")
        parts.append(_memory_text(self, format_duration))
        return "; ".join(parts)


def _concurrency_text(client: ClientParams) -> str:
    total = "hop max" if client.max_connections is None else str(client.max_connections)
    if client.concurrency == "postfix":
        return "window 5-20 per destination, dead after failed cohort"
    if client.concurrency == "per-destination":
        return f"{client.destination_limit} per destination, {total} in all"
    return f"{total} in all, no per-destination limit"


def _memory_text(client: ClientParams, fmt: Callable[[float], str]) -> str:
    hold = fmt(client.memory_time)
    return {
        "none": "no host memory",
        "retry-records": "per-host retry records (skip until retry time)",
        "tcpto": f"tcpto: skip address {hold} after 2 timeouts",
        "host-status": f"host status cache {hold}",
        "next-hop": f"next-hop queue in retry {hold}"
        + (
            f" x{client.memory_count}, then {fmt(client.memory_later)}"
            if client.memory_count
            else ""
        ),
    }[client.memory]


POSTFIX_CLIENT = ClientParams(
    "postfix smtp",
    "mail-facts.md §1, §11: smtp_connect_timeout 30 s, smtp_mx_address_limit 5, "
    "smtp_mx_session_limit 2, qmgr windows and 300 s dead destinations",
)
"""Postfix's SMTP client; also the client of the presets that are no MTA (rfc5321, the
webmail schedules, custom schedules)."""
