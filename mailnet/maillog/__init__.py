"""A run as a Postfix mail log: one combined syslog of every MTA and MX host.

``maillog_lines(result)`` yields the lines, ``write_maillog(result, path)`` writes them.
Every host of the scenario logs as a Postfix instance would (mail-facts.md §10): a
provider's MTA (host name ``providers.NAME.hostname``, else ``mta.<first local
domain>``) and each MX host (named as in ``[servers]``). The log is written from the
recorded tables alone (``mailnet.tables``), phase by phase:

- ``queue``: the queue files, one per message at its provider's MTA and one per session
  in which a server accepted mail, with their queue IDs;
- ``arrivals``: ``pickup``, ``cleanup`` and ``qmgr`` lines as each file arrives, the
  ``milter-reject`` of mail refused at submission, and ``local`` deliveries;
- ``smtpd``: the servers' ``client=`` and ``reject: RCPT from`` lines;
- ``deliveries``: an ``smtp`` line per attempt row;
- ``endings``: expiry, the DSNs' ``bounce`` lines, and ``removed``.

``format`` holds the line formats: syslog timestamps from ``EPOCH`` (2026-03-01
00:00:00, year-less as pflogsumm expects), Postfix's short queue IDs (five hex digits of
the creation microsecond and an inode number unique over the log), process IDs stable
per host and program (a new one after 100 uses for delivery agents and smtpd),
``format_delay``, and Postfix's wording of the recorded replies. Delivery lines have no
``tls=`` or ``conn_use=`` field, which is what pflogsumm 1.1.5 parses. Message sizes are
not part of the tables: every message is ``MESSAGE_SIZE`` bytes and every DSN
``DSN_SIZE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mailnet.maillog.arrivals import log_arrivals
from mailnet.maillog.deliveries import log_deliveries
from mailnet.maillog.endings import log_expiry, log_notifications, log_removals
from mailnet.maillog.events import Events
from mailnet.maillog.format import DSN_SIZE, EPOCH, MESSAGE_SIZE, Clock, format_delay
from mailnet.maillog.queue import QueueFiles
from mailnet.maillog.smtpd import log_sessions
from mailnet.maillog.source import Attempts, Hosts, Messages
from mailnet.output import atomic_path

if TYPE_CHECKING:
    from mailnet.simulate import RunResult

__all__ = ["DSN_SIZE", "EPOCH", "MESSAGE_SIZE", "format_delay", "maillog_lines", "write_maillog"]


def maillog_lines(result: RunResult, epoch: datetime = EPOCH) -> Iterator[str]:
    """The Postfix log lines (without newlines) of a run, in time order over all hosts."""
    clock = Clock(epoch)
    msgs = Messages(result.messages)
    attempts = Attempts(result.attempts)
    hosts = Hosts(result.scenario)
    queue = QueueFiles(msgs, attempts, hosts, clock)
    events = Events()
    log_arrivals(events, queue, msgs, hosts)
    log_sessions(events, queue, attempts, msgs, hosts)
    last = log_deliveries(events, queue, attempts, hosts)
    log_expiry(events, queue, msgs, attempts, last)
    log_notifications(events, queue, msgs)
    log_removals(events, queue)
    return events.lines(clock)


def write_maillog(result: RunResult, path: str | Path, epoch: datetime = EPOCH) -> Path:
    """Write the run's combined Postfix log to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in maillog_lines(result, epoch))
    return path
