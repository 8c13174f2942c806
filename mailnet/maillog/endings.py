"""How queue files end: expiry, the DSNs they send, and their removal.

Expiry is a ``qmgr`` ``status=expired, returned to sender`` line when a recipient's last
attempt was a deferral and the row ended expired (or dropped, for a DSN). Each DSN gives
a ``bounce`` line on the file of the message it reports on (``dsn_of``, at the DSN's
hop, the file holding ``dsn_recipient``): ``sender non-delivery notification`` or
``sender delay notification``, with the DSN's queue ID, when the DSN was created: for a
non-delivery notification the end of the active-queue pass in which its recipients
bounced (Postfix's qmgr flushes them then, ``qmgr_active.c``; the model records it). A
file whose recipients are all done ends with ``removed``.
"""

from __future__ import annotations

from mailnet.maillog.deliveries import LastAttempts
from mailnet.maillog.events import EXPIRED, GENERATION, NOTIFY, REMOVED, Events
from mailnet.maillog.queue import QueueFiles
from mailnet.maillog.source import Attempts, Messages


def log_expiry(
    events: Events, queue: QueueFiles, msgs: Messages, attempts: Attempts, last: LastAttempts
) -> None:
    """One ``expired`` line per queue file and instant at which recipients expired."""
    logged: set[tuple[int, float]] = set()
    for i, status in enumerate(msgs.status):
        if status not in ("expired", "dropped"):
            continue
        mid, rcpt = msgs.mid[i], msgs.rcpt[i]
        k = last.get((mid, rcpt))
        if k is None or attempts.outcome[k] not in ("deferred", "suspended"):
            continue
        end = attempts.end[k]
        qf = queue.find(attempts.hop[k], mid, attempts.start[k], rcpt)
        qf.done[rcpt] = end
        if (id(qf), end) in logged:
            continue
        logged.add((id(qf), end))
        events.emit(
            end,
            qf.gen * GENERATION + EXPIRED,
            qf.host,
            "qmgr",
            f"{qf.qid}: from=<{qf.sender}>, status=expired, returned to sender",
        )


def log_notifications(events: Events, queue: QueueFiles, msgs: Messages) -> None:
    """The ``bounce`` line of every DSN, on the file of the message it reports on."""
    for qf in queue.files:
        if qf.origin != "bounce" or not qf.rcpts:
            continue
        row = msgs.rows_of[qf.mid][0]
        original, about = msgs.dsn_of[row], msgs.dsn_recipient[row]
        if original is None or about is None:
            continue
        parent = queue.holding(qf.hop, original, qf.arrival, about)
        if parent is None:
            continue
        kind = "delay" if msgs.dsn_kind[row] == "delayed" else "non-delivery"
        events.emit(
            qf.arrival,
            parent.gen * GENERATION + NOTIFY,
            parent.host,
            "bounce",
            f"{parent.qid}: sender {kind} notification: {qf.qid}",
        )


def log_removals(events: Events, queue: QueueFiles) -> None:
    """``removed`` for each file whose recipients all left it, when the last one did."""
    for qf in queue.files:
        if qf.rcpts and len(qf.done) >= len(qf.rcpt_set) and qf.rcpt_set.issubset(qf.done):
            events.emit(
                max(qf.done.values()), REMOVED + qf.gen, qf.host, "qmgr", f"{qf.qid}: removed"
            )
