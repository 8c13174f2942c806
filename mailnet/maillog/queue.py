"""Queue files: a message as it sits in one host's queue, with its Postfix queue ID.

A provider's MTA has one queue file per message it queued: submitted mail (``pickup``,
from the MSA's release on), mail refused at submission (``rejected``), and DSNs
(``bounce``). A receiving server has one per session in which it accepted recipients
(``smtpd``). Queue IDs are numbered in the order the files were created.
"""

from __future__ import annotations

import math
from itertools import count

from mailnet.maillog.format import DSN_SIZE, INODE_BASE, MESSAGE_SIZE, Clock, queue_id
from mailnet.maillog.source import Attempts, Hosts, Messages

SessionKey = tuple[int, str, str, float]
"""An attempt's connection: (message, sending hop, server, start)."""


class QueueFile:
    """One queue file on one host. ``done`` holds when each finished recipient left it,
    ``tried`` the recipients with a delivery attempt logged so far."""

    __slots__ = (
        "arrival",
        "created",
        "done",
        "gen",
        "hop",
        "host",
        "mid",
        "order",
        "origin",
        "qid",
        "rcpt_set",
        "rcpts",
        "sender",
        "size",
        "tried",
    )

    def __init__(
        self,
        hop: str,
        host: str,
        mid: int,
        sender: str,
        *,
        arrival: float,
        rcpts: list[str],
        dsn: bool,
        origin: str,
        order: int,
        created: float | None = None,
    ):
        self.hop = hop
        self.host = host
        self.mid = mid
        self.sender = sender
        self.arrival = arrival
        self.created = arrival if created is None else created
        self.rcpts = rcpts
        self.rcpt_set = set(rcpts)
        self.gen = 1 if dsn else 0
        self.origin = origin
        self.size = DSN_SIZE if dsn else MESSAGE_SIZE
        self.order = order
        self.qid = ""
        self.done: dict[str, float] = {}
        self.tried: set[str] = set()


class QueueFiles:
    """Every queue file of a run, numbered; ``sessions`` groups the attempt rows of each
    connection, ``by_session`` is the file a connection created at its server."""

    def __init__(self, msgs: Messages, attempts: Attempts, hosts: Hosts, clock: Clock):
        self._msgs = msgs
        self._hosts = hosts
        self._order = count()
        self.files: list[QueueFile] = []
        self.sessions: dict[SessionKey, list[int]] = {}
        self.by_session: dict[SessionKey, QueueFile] = {}
        self.message_ids: dict[int, str] = {}
        self._by_hop: dict[tuple[str, int], list[QueueFile]] = {}
        self._submitted()
        self._received(attempts)
        self._number(clock)

    def _submitted(self) -> None:
        """The files of the providers' MTAs: one per message, from its release on."""
        msgs = self._msgs
        for mid, rows in msgs.rows_of.items():
            first = rows[0]
            dsn = msgs.is_dsn[first]
            released = msgs.released[first]
            origin = "bounce" if dsn else "pickup"
            if not dsn and math.isnan(released) and any(msgs.status[i] == "bounced" for i in rows):
                origin = "rejected"  # refused at submission: never released
            hop = msgs.provider[first]
            arrival = msgs.created[first] if math.isnan(released) else released
            self.files.append(
                QueueFile(
                    hop,
                    self._hosts.host(hop),
                    mid,
                    msgs.sender[first],
                    arrival=arrival,
                    rcpts=[msgs.rcpt[i] for i in rows],
                    dsn=dsn,
                    origin=origin,
                    order=next(self._order),
                )
            )

    def _received(self, attempts: Attempts) -> None:
        """The servers' files: one per connection that had a recipient accepted."""
        for i, mx in enumerate(attempts.mx):
            if mx is not None:
                key = (attempts.mid[i], attempts.hop[i], mx, attempts.start[i])
                self.sessions.setdefault(key, []).append(i)
        for key, rows in self.sessions.items():
            sent = [i for i in rows if attempts.outcome[i] == "sent"]
            if not sent:
                continue
            mid, _hop, mx, _start = key
            qf = QueueFile(
                mx,
                self._hosts.host(mx),
                mid,
                self._msgs.sender_of(mid),
                arrival=attempts.end[sent[0]],
                rcpts=[attempts.rcpt[i] for i in sent],
                dsn=self._msgs.dsn(mid),
                origin="smtpd",
                order=next(self._order),
                created=attempts.session[sent[0]],
            )
            self.files.append(qf)
            self.by_session[key] = qf

    def _number(self, clock: Clock) -> None:
        """Queue IDs in the order the files were created (an smtpd file when its session
        began), and each message's Message-Id from its first file."""
        self.files.sort(key=lambda f: (f.created, f.order))
        for inode, qf in enumerate(self.files, start=INODE_BASE):
            qf.qid = queue_id(qf.created, inode)
            self._by_hop.setdefault((qf.hop, qf.mid), []).append(qf)
            if qf.mid not in self.message_ids:
                self.message_ids[qf.mid] = f"<{clock.compact(qf.created)}.{qf.qid}@{qf.host}>"

    def holding(self, hop: str, mid: int, t: float, rcpt: str) -> QueueFile | None:
        """The file at ``hop`` that held ``rcpt`` of message ``mid`` at ``t`` (else the
        latest there by then, else the first); ``None`` when ``hop`` had none."""
        candidates = self._by_hop.get((hop, mid))
        if not candidates:
            return None
        best = None
        for qf in reversed(candidates):
            if qf.arrival <= t + 1e-9:
                if rcpt in qf.rcpt_set:
                    return qf
                if best is None:
                    best = qf
        return best or candidates[0]

    def find(self, hop: str, mid: int, t: float, rcpt: str) -> QueueFile:
        """Like ``holding``, but a hop without a file for the message gets one (an
        ``unknown`` file, arriving at ``t``)."""
        qf = self.holding(hop, mid, t, rcpt)
        if qf is not None:
            return qf
        qf = QueueFile(
            hop,
            self._hosts.host(hop),
            mid,
            self._msgs.sender_of(mid),
            arrival=t,
            rcpts=[rcpt],
            dsn=self._msgs.dsn(mid),
            origin="unknown",
            order=next(self._order),
        )
        qf.size = MESSAGE_SIZE
        qf.qid = queue_id(t, INODE_BASE + len(self.files))
        self.files.append(qf)
        self._by_hop[(hop, mid)] = [qf]
        return qf
