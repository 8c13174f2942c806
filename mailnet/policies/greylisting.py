"""Greylisting as postgrey does it: defer unseen (client /24, sender, recipient) triplets.

Pure decisions, no simulation engine: ``Greylist.check(client_ip, sender, recipient, now)``
returns ``None`` (pass) or the 450 reply Postfix sends for postgrey's ``DEFER_IF_PERMIT``.
Semantics follow ``smtpd_access_policy`` in postgrey (``schweikert/postgrey``); defaults are
postgrey 1.37's (mail-facts.md §6). Times are seconds.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from mailnet.scenario import GreylistConfig
from mailnet.smtp import Reply
from mailnet.units import DAY, HOUR

_AWL_COUNT_SPACING = HOUR
"""postgrey counts at most one successful triplet per client and hour (``$cawl_last + 3600``)."""

_ROTATION_SLACK = HOUR
"""How much longer than ``max_age`` a generation of the triplet table lasts (seconds):
enough that rounding never drops a triplet seen exactly ``max_age`` ago, and that a
tiny ``max_age`` does not rotate the table at nearly every lookup."""


@lru_cache(maxsize=65536)
def client_network(ip: str, ipv4_prefix: int = 24, ipv6_prefix: int = 64) -> str:
    """The network ``ip`` belongs to, as ``"203.0.113.0/24"``; prefix lengths in bits.

    A string that is not an IP address is returned unchanged (it then keys on itself).
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    bits = ipv4_prefix if addr.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


_BARE_NUMBER = re.compile(r"\b\d+\b")


def normalize_sender(sender: str) -> str:
    """The sender part of the key, as postgrey's ``do_sender_substitutions`` builds it.

    BATV ``prvs=tag=local@`` keeps the local part, a ``+extension`` is stripped and bare
    numbers become ``#`` so that VERP addresses of one list share a key. An address
    without ``@`` (the null sender ``""`` of DSNs) is kept as it is. Lower-cased, as
    postgrey lower-cases the whole key.
    """
    local, at, domain = sender.partition("@")
    if not at:
        return sender.lower()
    if local.lower().startswith("prvs="):
        parts = local.split("=")
        if len(parts) == 3:
            tagged = re.compile(r"^[0-9a-z]{10}", re.IGNORECASE)
            if tagged.match(parts[1]) and not tagged.match(parts[2]):
                local = parts[2]
            elif tagged.match(parts[2]) and not tagged.match(parts[1]):
                local = parts[1]
            else:
                local = parts[2]
    local = local.split("+", 1)[0]
    local = _BARE_NUMBER.sub("#", local)
    return f"{local}@{domain}".lower()


@dataclass(slots=True)
class _Triplet:
    first: float
    last: float


@dataclass(slots=True)
class _Client:
    count: int
    last: float


class Greylist:
    """postgrey's greylist and client auto-whitelist for one receiving server.

    Parameters (seconds unless noted; defaults are postgrey 1.37's, mail-facts.md §6):

    - ``delay=300``: a triplet passes once ``now - first_seen >= delay``.
    - ``retry_window=2 d``: a triplet that has not yet passed and whose first sighting is
      more than ``retry_window`` old starts over (first seen := now).
    - ``max_age=35 d``: a triplet or auto-whitelist entry not seen for more than
      ``max_age`` is forgotten. postgrey deletes these in a nightly sweep; here they are
      ignored when next looked up, which is the same as a sweep run just before, and
      dropped from memory within ``2 * (max_age + 1 h)`` (see *Memory*).
    - ``auto_whitelist_clients=5``: a client with that many triplets that passed
      greylisting (at most one counted per hour) passes everything; ``0`` disables.
    - ``ipv4_prefix=24`` / ``ipv6_prefix=64``: bits of the client address kept in keys
      (postgrey ``--ipv4cidr``/``--ipv6cidr``; ``32`` behaves like ``--lookup-by-host``).

    Semantics, from postgrey's ``smtpd_access_policy``:

    - Key: ``(client network, normalize_sender(sender), recipient)``, lower-cased. The
      null sender of bounces and DSNs is ``""`` and greylisted like any other sender.
    - An early retry (before ``delay``) is deferred again and does **not** reset the
      first-seen time: postgrey only updates last-seen, so the triplet passes at
      ``first + delay`` however often it was tried in between.
    - Once a triplet has passed it keeps passing (postgrey's ``last_was_successful``),
      while it is seen at least every ``max_age``.
    - The auto-whitelist counts a client when one of its triplets passes for the first
      time and at least an hour has passed since the last counted one. The client key is
      the client network, like the triplet, so a sender rotating addresses inside a /24
      is whitelisted as one client. (postgrey 1.34 keys its client database on the full
      address.) Whitelisted clients are not entered in the triplet table, as in postgrey
      >= 1.22.
    - postgrey keeps the full address when the client's reverse DNS name contains its
      last two octets (dial-up pools); the model has no reverse DNS, so that rule is left
      out.
    - postgrey's nightly maintenance deletes stale entries; here they are ignored (and
      replaced) when next looked up, which gives the same answers.

    Memory: triplets are kept in two generations. The first ``check`` at least
    ``max_age + 1 h`` after the last rotation drops the older generation, whose entries
    were all last seen before that rotation and so more than ``max_age`` ago (forgotten:
    no answer changes), and starts a new one; a triplet looked up in the older
    generation moves to the new. Forgotten auto-whitelist entries are dropped at the
    same time. So the table holds at most the triplets seen in the last
    ``2 * (max_age + 1 h)``, for one extra dictionary lookup on a miss.
    """

    def __init__(
        self,
        delay: float = 300.0,
        retry_window: float = 2 * DAY,
        max_age: float = 35 * DAY,
        auto_whitelist_clients: int = 5,
        *,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 64,
    ):
        if delay < 0 or retry_window < 0 or max_age < 0:
            raise ValueError("delay, retry_window and max_age must not be negative")
        if auto_whitelist_clients < 0:
            raise ValueError("auto_whitelist_clients must be >= 0 (0 disables it)")
        if not (0 <= ipv4_prefix <= 32 and 0 <= ipv6_prefix <= 128):
            raise ValueError("ipv4_prefix must be in 0..32 and ipv6_prefix in 0..128")
        self.delay = float(delay)
        self.retry_window = float(retry_window)
        self.max_age = float(max_age)
        self.auto_whitelist_clients = int(auto_whitelist_clients)
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self._triplets: dict[tuple[str, str, str], _Triplet] = {}
        self._older: dict[tuple[str, str, str], _Triplet] = {}
        self._clients: dict[str, _Client] = {}
        # longer than max_age, so that a dropped generation holds only forgotten triplets
        self._period = self.max_age + _ROTATION_SLACK
        self._rotate_at = self._period

    @classmethod
    def from_config(cls, config: GreylistConfig) -> Greylist:
        """The greylist of ``[receivers.NAME.greylisting]``."""
        return cls(
            config.delay,
            config.retry_window,
            config.max_age,
            config.auto_whitelist_clients,
            ipv4_prefix=config.ipv4_prefix,
        )

    def key(self, client_ip: str, sender: str, recipient: str) -> tuple[str, str, str]:
        """The triplet a delivery attempt is filed under."""
        net = client_network(client_ip, self.ipv4_prefix, self.ipv6_prefix)
        return (net, normalize_sender(sender), recipient.lower())

    def _client_key(self, client_ip: str) -> str:
        return client_network(client_ip, self.ipv4_prefix, self.ipv6_prefix)

    def whitelisted(self, client_ip: str, now: float) -> bool:
        """Whether the client passes everything by the auto-whitelist at ``now``."""
        if not self.auto_whitelist_clients:
            return False
        entry = self._clients.get(self._client_key(client_ip))
        if entry is None:
            return False
        if now - entry.last > self.max_age:
            del self._clients[self._client_key(client_ip)]
            return False
        return entry.count >= self.auto_whitelist_clients

    def successes(self, client_ip: str) -> int:
        """Counted successful triplets of the client (the auto-whitelist counter); 0 once
        the client has been forgotten (not seen for ``max_age``) and dropped."""
        entry = self._clients.get(self._client_key(client_ip))
        return entry.count if entry else 0

    def check(self, client_ip: str, sender: str, recipient: str, now: float) -> Reply | None:
        """Decide one RCPT: ``None`` to pass, else the 450 4.2.0 greylisting reply.

        Updates the triplet and auto-whitelist state, so call it once per recipient of
        each delivery attempt, at the attempt's time ``now`` (seconds; not decreasing).
        """
        if now >= self._rotate_at:
            self._rotate(now)
        if self.whitelisted(client_ip, now):
            client = self._clients[self._client_key(client_ip)]
            if now >= client.last + _AWL_COUNT_SPACING:
                client.count += 1
                client.last = now
            return None

        key = self.key(client_ip, sender, recipient)
        entry = self._triplets.get(key)
        if entry is None and self._older:
            entry = self._older.pop(key, None)
        if entry is not None and now - entry.last > self.max_age:
            entry = None
        already_passed = False
        if entry is None:
            first = now
        else:
            first = entry.first
            if entry.last - entry.first >= self.delay:
                already_passed = True
            elif now - first > self.retry_window:
                first = now
        self._triplets[key] = _Triplet(first, now)

        if now - first < self.delay:
            return self.reply(recipient)
        if not already_passed:
            self._count_success(client_ip, now)
        return None

    def sizes(self) -> dict[str, int]:
        """Entries held in memory: ``triplets`` (both generations) and ``clients``."""
        return {"triplets": len(self._triplets) + len(self._older), "clients": len(self._clients)}

    def _rotate(self, now: float) -> None:
        """Drop the older generation and the forgotten clients; start a new generation."""
        self._older = self._triplets
        self._triplets = {}
        self._rotate_at = now + self._period
        max_age = self.max_age
        stale = [k for k, c in self._clients.items() if now - c.last > max_age]
        for k in stale:
            del self._clients[k]

    def _count_success(self, client_ip: str, now: float) -> None:
        if not self.auto_whitelist_clients:
            return
        ckey = self._client_key(client_ip)
        client = self._clients.get(ckey)
        if client is None:
            self._clients[ckey] = _Client(1, now)
        elif now >= client.last + _AWL_COUNT_SPACING:
            client.count += 1
            client.last = now

    @staticmethod
    def reply(recipient: str) -> Reply:
        """Postfix's reply to postgrey's ``DEFER_IF_PERMIT`` (mail-facts.md §6)."""
        domain = recipient.rpartition("@")[2]
        return Reply(
            450,
            "4.2.0",
            f"<{recipient}>: Recipient address rejected: Greylisted, "
            f"see http://postgrey.schweikert.ch/help/{domain}.html",
        )
