"""The receiving servers' ``smtpd`` lines: each session's client, and each refused RCPT.

A session that had a recipient accepted logs ``client=HOST[IP]`` under its queue ID when
the first recipient is accepted; each refused recipient gives a ``reject: RCPT from``
line with the reply the server recorded (``NOQUEUE`` until a recipient was accepted), or
``reject: END-OF-MESSAGE from`` for a reply given after the message data.
"""

from __future__ import annotations

import math

from mailnet.maillog.events import GENERATION, RECEIPT, Events
from mailnet.maillog.format import receiver_said, reply_stage
from mailnet.maillog.queue import QueueFiles
from mailnet.maillog.source import Attempts, Hosts, Messages


def log_sessions(
    events: Events, queue: QueueFiles, attempts: Attempts, msgs: Messages, hosts: Hosts
) -> None:
    """The ``smtpd`` lines of every session, in the order the attempts were recorded."""
    for key, rows in queue.sessions.items():
        mid, hop, mx, _start = key
        qf = queue.by_session.get(key)
        client = hosts.host(hop)
        rank = (1 if msgs.dsn(mid) else 0) * GENERATION + RECEIPT
        accepted = False
        for i in rows:
            at = attempts.session[i]
            if math.isnan(at):
                continue
            ip = attempts.ip[i]
            if attempts.outcome[i] == "sent":
                if not accepted and qf is not None:
                    accepted = True
                    events.emit(at, rank, mx, "smtpd", f"{qf.qid}: client={client}[{ip}]")
                continue
            rcpt = attempts.rcpt[i]
            queue_id = qf.qid if accepted and qf is not None else "NOQUEUE"
            reply = receiver_said(attempts.reply[i], rcpt, mx in hosts.relays)
            stage = "RCPT" if reply_stage(attempts.reply[i]) == "RCPT TO" else "END-OF-MESSAGE"
            events.emit(
                at,
                rank,
                mx,
                "smtpd",
                f"{queue_id}: reject: {stage} from {client}[{ip}]: {attempts.code[i]} "
                f"{attempts.enhanced[i]} {reply}; from=<{msgs.sender_of(mid)}> to=<{rcpt}> "
                f"proto=ESMTP helo=<{client}>",
            )
