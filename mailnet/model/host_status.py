"""What an SMTP client remembers about failing hosts, without a simulation engine.

One memory per outbound MTA, of the kind its preset's client names
(:class:`~mailnet.policies.retry.client.ClientParams`): Exim's per-host retry records,
qmail's ``tcpto`` table, Sendmail's host status cache, Exchange's next-hop queues in
retry. Postfix has none (its dead destinations live in the destination scheduler). The
MTA asks :meth:`HostMemory.held_until` before connecting to a host, skips a held host
without a connection, and reports each connection with :meth:`HostMemory.failed` or
:meth:`HostMemory.succeeded`, and a delivery in which no host took a session with
:meth:`HostMemory.delivery_failed`. Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailnet import smtp
from mailnet.policies.retry import EximRetry, RetryPolicy
from mailnet.policies.retry.client import ClientParams
from mailnet.policies.retry.exim import HostRetryData


class HostMemory:
    """The interface, and a memory that holds nothing; subclasses remember."""

    def held_until(self, domain: str, host: str, ip: str, now: float) -> float | None:
        """When ``host`` (at ``ip``, an MX of ``domain``) may be tried again, or ``None``
        if it may be tried ``now``."""
        return None

    def __len__(self) -> int:
        """Entries remembered: at most one per host, address or destination."""
        return len(self._entries())

    def _entries(self) -> dict:
        return {}

    def failed(self, domain: str, host: str, ip: str, now: float, reply: smtp.Reply) -> None:
        """A connection to ``host`` failed at ``now`` with ``reply`` (no session)."""

    def succeeded(self, domain: str, host: str, ip: str) -> None:
        """A session with ``host`` was held."""

    def delivery_failed(self, domain: str, now: float, reply: smtp.Reply) -> None:
        """A delivery to ``domain`` ended at ``now`` without a session at any host."""

    def skip_reply(self, domain: str, host: str) -> smtp.Reply:
        """The deferral of a delivery whose every host was held (``host``: the last)."""
        return smtp.Reply(451, "4.4.1", f"no host of {domain} may be tried yet")


class RetryRecords(HostMemory):
    """Exim's host retry records (mail-facts.md §13): a host error (a failed connection)
    updates the host's record with the retry rules (Exim's ``retry_update`` without the
    message-age term, which applies to address errors only), and the host is not tried
    again, for any message, until its retry time; a session deletes the record."""

    def __init__(self, policy: EximRetry) -> None:
        self._policy = policy
        self._records: dict[str, HostRetryData] = {}

    def _entries(self) -> dict:
        return self._records

    def held_until(self, domain: str, host: str, ip: str, now: float) -> float | None:
        record = self._records.get(host)
        if record is None or now >= record.next_try:
            return None
        return record.next_try

    def failed(self, domain: str, host: str, ip: str, now: float, reply: smtp.Reply) -> None:
        self._policy.update(self._records, host, now, now)

    def succeeded(self, domain: str, host: str, ip: str) -> None:
        self._records.pop(host, None)

    def skip_reply(self, domain: str, host: str) -> smtp.Reply:
        return smtp.Reply(451, "4.4.1", f"retry time not reached for any host for '{domain}'")


@dataclass(slots=True)
class _Timeouts:
    count: int
    when: float


TCPTO_GAP = 120.0
"""A second connect timeout counts only this long after the first (``tcpto.c``)."""


class TcpTimeouts(HostMemory):
    """qmail's ``tcpto`` table (mail-facts.md §14, ``tcpto.c``), per address (the host
    name for a server without one): a connect
    timeout (not a refusal) counts once at least 120 s after the last counted one; from
    two counted timeouts on, the address is skipped until ``hold`` seconds after the last;
    a session clears it. The table's 64-entry limit is not modelled."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._table: dict[str, _Timeouts] = {}

    def _entries(self) -> dict:
        return self._table

    def held_until(self, domain: str, host: str, ip: str, now: float) -> float | None:
        entry = self._table.get(ip or host)
        if entry is None or entry.count < 2 or now >= entry.when + self.hold:
            return None
        return entry.when + self.hold

    def failed(self, domain: str, host: str, ip: str, now: float, reply: smtp.Reply) -> None:
        if reply != smtp.CONNECT_TIMEOUT:
            return
        key = ip or host
        entry = self._table.get(key)
        if entry is None:
            self._table[key] = _Timeouts(1, now)
        elif now - entry.when >= TCPTO_GAP:
            entry.count += 1
            entry.when = now

    def succeeded(self, domain: str, host: str, ip: str) -> None:
        self._table.pop(ip or host, None)

    def skip_reply(self, domain: str, host: str) -> smtp.Reply:
        return smtp.Reply(
            421, "4.4.1", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)"
        )


class HostStatusCache(HostMemory):
    """Sendmail's host status cache (mail-facts.md §15, ``mci.c``, ``deliver.c``): a host
    whose last connection failed is skipped, and answers with that failure, until the
    entry is ``timeout`` (Timeout.hoststatus) old; a session clears it."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._status: dict[str, tuple[float, smtp.Reply]] = {}

    def _entries(self) -> dict:
        return self._status

    def held_until(self, domain: str, host: str, ip: str, now: float) -> float | None:
        entry = self._status.get(host)
        if entry is None or now >= entry[0] + self.timeout:
            return None
        return entry[0] + self.timeout

    def failed(self, domain: str, host: str, ip: str, now: float, reply: smtp.Reply) -> None:
        self._status[host] = (now, reply)

    def succeeded(self, domain: str, host: str, ip: str) -> None:
        self._status.pop(host, None)

    def skip_reply(self, domain: str, host: str) -> smtp.Reply:
        entry = self._status.get(host)
        why = entry[1] if entry is not None else smtp.CONNECT_TIMEOUT
        return smtp.Reply(why.code, why.enhanced, f"{why.text} with {host}")


class NextHopRetry(HostMemory):
    """Exchange's next-hop queues (mail-facts.md §16): a delivery with no session puts the
    destination's queue in retry, no connection for any of its mail, for ``first`` seconds
    after each of the first ``count`` such failures in a row, then ``later``; a session
    ends the retry state. Failures of deliveries that were already under way when the
    queue went into retry count once with it: the queue retries with one connection.
    Exchange Server's own queue glitch retries (4 at 1 min) are not modelled."""

    def __init__(self, first: float, count: int, later: float) -> None:
        self.first = first
        self.count = count
        self.later = later
        self._queues: dict[str, tuple[int, float, smtp.Reply]] = {}

    def _entries(self) -> dict:
        return self._queues

    def held_until(self, domain: str, host: str, ip: str, now: float) -> float | None:
        entry = self._queues.get(domain)
        if entry is None or now >= entry[1]:
            return None
        return entry[1]

    def delivery_failed(self, domain: str, now: float, reply: smtp.Reply) -> None:
        entry = self._queues.get(domain)
        if entry is not None and now < entry[1]:
            return  # deliveries already under way when the queue went into retry
        failures = entry[0] + 1 if entry is not None else 1
        hold = self.first if failures <= self.count else self.later
        self._queues[domain] = (failures, now + hold, reply)

    def succeeded(self, domain: str, host: str, ip: str) -> None:
        self._queues.pop(domain, None)

    def skip_reply(self, domain: str, host: str) -> smtp.Reply:
        entry = self._queues.get(domain)
        why = entry[2] if entry is not None else smtp.CONNECT_TIMEOUT
        return smtp.Reply(451, "4.4.0", f'Primary target IP address responded with: "{why}"')


def host_memory(client: ClientParams, policy: RetryPolicy) -> HostMemory | None:
    """The memory ``client`` names, or ``None`` (Postfix: no memory, no per-host checks).
    Exim's records use ``policy``'s retry rules."""
    kind = client.memory
    if kind == "none":
        return None
    if kind == "retry-records":
        if not isinstance(policy, EximRetry):
            raise TypeError("per-host retry records need an Exim policy")
        return RetryRecords(policy)
    if kind == "tcpto":
        return TcpTimeouts(client.memory_time)
    if kind == "host-status":
        return HostStatusCache(client.memory_time)
    return NextHopRetry(client.memory_time, client.memory_count, client.memory_later)
