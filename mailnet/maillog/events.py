"""The log's lines before rendering: what each host's program says, when, and in which
order lines of one instant appear."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

from mailnet.maillog.format import Clock, syslog_lines

# Sort ranks of lines that share one instant: a queue file's lines in Postfix's order,
# the lines of a DSN after those of the mail that caused it (a DSN's queue file adds
# GENERATION to its ranks), "removed" last.
RECEIPT, CLEANUP, QMGR, DELIVERY, LOCAL, EXPIRED, NOTIFY = 0, 1, 2, 3, 3.5, 4, 5
GENERATION = 10
REMOVED = 100


class Events:
    """Log lines of a run, collected in any order and rendered in time order."""

    def __init__(self) -> None:
        self._events: list[tuple[float, float, int, str, str, str]] = []
        self._seq = count()

    def emit(self, t: float, rank: float, host: str, program: str, text: str) -> None:
        """``host``'s ``program`` logs ``text`` at ``t``; ties go by ``rank``, then by the
        order of emission."""
        self._events.append((t, rank, next(self._seq), host, program, text))

    def lines(self, clock: Clock) -> Iterator[str]:
        self._events.sort(key=lambda e: (e[0], e[1], e[2]))
        return syslog_lines(((e[0], e[3], e[4], e[5]) for e in self._events), clock)
