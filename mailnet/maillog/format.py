"""How a Postfix log line looks: timestamps, queue IDs, process IDs, delays, reply wording.

Nothing here knows the run; these are the log's formats (mail-facts.md §10).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from mailnet import smtp

EPOCH = datetime(2026, 3, 1, 0, 0, 0)
"""Wall-clock time of simulation time 0 in the log."""

MESSAGE_SIZE = 4096
"""Bytes logged for every message (the model's default message size)."""

DSN_SIZE = 6144
"""Bytes logged for every DSN (the returned message plus the report)."""

SUBMISSION_CLIENT = "localhost[127.0.0.1]"
"""The client a submission comes from (the provider's webmail or a local MUA)."""

INODE_BASE = 0x1E240
"""Inode number of the first queue file; each further file takes the next one."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MILLION = 1_000_000
_MAX_USE = 100
_DAEMONS = frozenset({"qmgr", "pickup"})

# Postfix's wording of replies whose text in the model is shorter: the receiver's
# unknown-user reply (a relay or backup MX looks users up in its relay recipient table),
# and the SMTP client's own outcomes (with the domain in them); a missing domain is
# looked up as an A record after its MX lookup fails (mail-facts.md §11, §12)
_UNKNOWN_USER = "Recipient address rejected: User unknown in {table} recipient table"
_CLIENT_WORDING = {
    smtp.NULL_MX.text: "Domain {domain} does not accept mail (nullMX)",
    smtp.DNS_NXDOMAIN.text: (
        "Host or domain name not found. Name service error for name={domain} type=A: Host not found"
    ),
    smtp.DNS_TEMPFAIL.text: (
        "Host or domain name not found. Name service error for name={domain} "
        "type=MX: Host not found, try again"
    ),
    "mail for domain loops back to myself": "mail for {domain} loops back to myself",
}
# the enhanced codes Postfix's SMTP client gives these outcomes (smtp_addr.c)
_CLIENT_DSN = {smtp.NULL_MX.text: "5.1.0", smtp.DNS_NXDOMAIN.text: "5.4.4"}
# replies a receiving server gives after the message data, not at RCPT
_AFTER_DATA = frozenset({smtp.MAILBOX_FULL.text, smtp.RECIPIENT_RATE.text})
SUSPENDED_PREFIX = "delivery temporarily suspended"
"""How the reply of mail deferred at a dead destination begins (logged by ``error``)."""


def format_delay(seconds: float) -> str:
    """A delay as Postfix logs it: ``format_tv(sec, usec, 2, delay_logging_resolution_limit=2)``.

    Whole seconds from 10 s on (two significant digits below 100 s), one decimal from 1 s
    to 10 s, two decimals below 1 s; trailing zeros are dropped and anything under 5 ms
    is ``0``. Negative values count as 0.
    """
    micros = round(seconds * _MILLION) if seconds > 0 else 0
    sec, usec = divmod(micros, _MILLION)
    sig_dig, max_dig = 2, 2
    wid = 10**sig_dig
    ures = _MILLION // 10**max_dig
    if ures < _MILLION:
        if sec > 0:
            n = 1
            while sec >= n and n <= wid // 10:
                n *= 10
            ures = (_MILLION // wid) * n
        else:
            while usec >= wid * ures:
                ures *= 10
    if ures > 1:
        usec += ures // 2
        if usec >= _MILLION:
            sec += 1
            usec -= _MILLION
    out = str(sec)
    if usec >= ures:
        digits = []
        rem, n = usec, _MILLION // 10
        while rem >= ures and n > 0:
            digits.append("0123456789"[rem // n])
            rem %= n
            n //= 10
        out += "." + "".join(digits)
    return out


def format_delays(wait: float, before: float, setup: float, transfer: float) -> str:
    """Postfix's ``delays=a/b/c/d`` value (seconds each)."""
    return "/".join(format_delay(x) for x in (wait, before, setup, transfer))


def queue_id(created: float, inode: int) -> str:
    """Postfix's short queue ID: five hex digits of the creation microsecond, then the
    queue file's inode number in hex."""
    usec = math.floor(created * _MILLION) % _MILLION
    return f"{usec:05X}{inode:05X}"


def receiver_said(text: str, rcpt: str, relay: bool = False) -> str:
    """A receiver's reply text as Postfix logs it for recipient ``rcpt`` (or none);
    ``relay``: the server is a backup MX or relay."""
    if text == smtp.NO_SUCH_USER.text:
        text = _UNKNOWN_USER.format(table="relay" if relay else "local")
    if text.startswith("Recipient address rejected") and rcpt:
        return f"<{rcpt}>: {text}"
    return text


def client_said(text: str, domain: str) -> str:
    """The SMTP client's text of an outcome without a connection, for ``domain``."""
    template = _CLIENT_WORDING.get(text)
    return text if template is None else template.format(domain=domain)


def client_dsn(text: str, enhanced: str) -> str:
    """The enhanced code Postfix logs for an outcome without a connection."""
    return _CLIENT_DSN.get(text, enhanced)


def reply_stage(text: str) -> str:
    """The command a receiver's reply answered: ``end of DATA`` or ``RCPT TO``."""
    return "end of DATA" if text in _AFTER_DATA else "RCPT TO"


class Clock:
    """Syslog timestamps (``Mar  1 12:00:05``) of simulation times, cached per day."""

    def __init__(self, epoch: datetime):
        self.epoch = epoch
        self._offset = epoch.hour * 3600 + epoch.minute * 60 + epoch.second
        self._days: dict[int, str] = {}
        self._last: tuple[int | None, str] = (None, "")

    def stamp(self, t: float) -> str:
        whole = math.floor(t) + self._offset
        if whole == self._last[0]:
            return self._last[1]
        day, rest = divmod(whole, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            date = self.epoch.replace(hour=0, minute=0, second=0) + timedelta(days=day)
            prefix = f"{_MONTHS[date.month - 1]} {date.day:2d}"
            self._days[day] = prefix
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        text = f"{prefix} {hour:02d}:{minute:02d}:{second:02d}"
        self._last = (whole, text)
        return text

    def compact(self, t: float) -> str:
        """``YYYYMMDDhhmmss``, as in Postfix's own Message-Id."""
        return (self.epoch + timedelta(seconds=math.floor(t))).strftime("%Y%m%d%H%M%S")


def syslog_lines(entries: Iterable[tuple[float, str, str, str]], clock: Clock) -> Iterator[str]:
    """``(time, host, program, text)`` entries, in order, as syslog lines.

    Process IDs are stable per host and program; a delivery agent or smtpd gets a new
    PID after ``_MAX_USE`` uses (Postfix's max_use), the daemons never.
    """
    stamp = clock.stamp
    pids: dict[tuple[str, str], list[int]] = {}
    next_pid: dict[str, int] = {}
    for t, host, program, text in entries:
        slot = pids.get((host, program))
        if slot is None or (program not in _DAEMONS and slot[1] >= _MAX_USE):
            pid = next_pid.get(host)
            if pid is None:
                pid = 1000 + zlib.crc32(host.encode()) % 20000
            pid += 1 + zlib.crc32(f"{host}/{program}/{pid}".encode()) % 97
            next_pid[host] = pid
            slot = [pid, 0]
            pids[(host, program)] = slot
        slot[1] += 1
        yield f"{stamp(t)} {host} postfix/{program}[{slot[0]}]: {text}"
