"""Arrival of each queue file at its host, and the local deliveries made on arrival.

A submitted message arrives by the submission service, whose smtpd logs the client and
its SASL login (``postfix/submission/smtpd … client=…, sasl_method=PLAIN,
sasl_username=…``, mail-facts.md §12), gets its ``cleanup`` Message-ID line and enters
the active queue (``qmgr … (queue active)``); mail refused at submission ends at
``cleanup`` with a ``milter-reject`` line giving the recorded reason. A file received by SMTP starts
at ``cleanup``. Recipients stored at that host (``stored_by``) get a ``local`` line at
once, as do the provider's local users that do not exist (``unknown user``).
"""

from __future__ import annotations

from mailnet.maillog.events import CLEANUP, GENERATION, LOCAL, QMGR, RECEIPT, Events
from mailnet.maillog.format import SUBMISSION_CLIENT
from mailnet.maillog.queue import QueueFile, QueueFiles
from mailnet.maillog.source import Hosts, Messages


def log_arrivals(events: Events, queue: QueueFiles, msgs: Messages, hosts: Hosts) -> None:
    """Every queue file's arrival lines, then its local deliveries."""
    for qf in list(queue.files):
        if qf.origin == "unknown":
            continue
        g = qf.gen * GENERATION
        if qf.origin in ("pickup", "rejected"):
            text = (
                f"{qf.qid}: client={SUBMISSION_CLIENT}, sasl_method=PLAIN, "
                f"sasl_username={qf.sender}"
            )
            events.emit(qf.arrival, g + RECEIPT, qf.host, "submission/smtpd", text)
        message_id = queue.message_ids[qf.mid]
        events.emit(
            qf.arrival, g + CLEANUP, qf.host, "cleanup", f"{qf.qid}: message-id={message_id}"
        )
        if qf.origin == "rejected":
            _refusal(events, qf, msgs)
            continue
        events.emit(
            qf.arrival,
            g + QMGR,
            qf.host,
            "qmgr",
            f"{qf.qid}: from=<{qf.sender}>, size={qf.size}, nrcpt={len(qf.rcpts)} (queue active)",
        )
        log_local_deliveries(events, qf, msgs, hosts)


def _refusal(events: Events, qf: QueueFile, msgs: Messages) -> None:
    """The MSA's refusal of a submitted message, with the reply it recorded."""
    row = msgs.rows_of[qf.mid][0]
    events.emit(
        qf.arrival,
        qf.gen * GENERATION + CLEANUP,
        qf.host,
        "cleanup",
        f"{qf.qid}: milter-reject: END-OF-MESSAGE from {SUBMISSION_CLIENT}: "
        f"{msgs.enhanced[row]} {msgs.reply[row]}; from=<{qf.sender}> "
        f"to=<{qf.rcpts[0]}> proto=ESMTP helo=<localhost>",
    )


def log_local_deliveries(events: Events, qf: QueueFile, msgs: Messages, hosts: Hosts) -> None:
    """``local`` lines of the recipients ``qf``'s host delivers itself on arrival."""
    if qf.origin == "smtpd":
        for rcpt in qf.rcpts:
            if msgs.stored_by[msgs.row_of[(qf.mid, rcpt)]] == qf.hop:
                _local_line(
                    events, qf, rcpt, dsn="2.0.0", status="sent", text="delivered to mailbox"
                )
        return
    domains = hosts.local_domains.get(qf.hop)
    if qf.origin not in ("pickup", "bounce") or not domains:
        return
    for i in msgs.rows_of[qf.mid]:
        if msgs.domain[i] not in domains:
            continue
        status = msgs.status[i]
        if msgs.stored_by[i] == qf.hop:
            _local_line(
                events, qf, msgs.rcpt[i], dsn="2.0.0", status="sent", text="delivered to mailbox"
            )
        elif status == "bounced" or (status == "dropped" and msgs.is_dsn[i]):
            user = msgs.rcpt[i].partition("@")[0]
            dsn = msgs.enhanced[i] or "5.1.1"
            _local_line(
                events, qf, msgs.rcpt[i], dsn=dsn, status="bounced", text=f'unknown user: "{user}"'
            )


def _local_line(
    events: Events, qf: QueueFile, rcpt: str, *, dsn: str, status: str, text: str
) -> None:
    events.emit(
        qf.arrival,
        qf.gen * GENERATION + LOCAL,
        qf.host,
        "local",
        f"{qf.qid}: to=<{rcpt}>, relay=local, delay=0, delays=0/0/0/0, dsn={dsn}, "
        f"status={status} ({text})",
    )
    qf.done[rcpt] = qf.arrival
