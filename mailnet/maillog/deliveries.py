"""The sending hops' ``smtp`` lines, in the order attempts ended: a status line per
attempt row that settles its recipient for this delivery, an info line per recipient
passed on to the next host, and one per failed connection.

Fields are Postfix's, ``to=<…>, relay=…, delay=…, delays=a/b/c/d, dsn=…, status=… (…)``.
The text in parentheses is the recorded reply as Postfix's SMTP client words it:
``250 2.0.0 Ok: queued as ID`` (the receiving file's queue ID); ``host H[IP] said: …
(in reply to RCPT TO command)`` for a refused recipient; ``connect to H[IP]:25: …``
(``relay=none``) or ``host H[IP] refused to talk to me: …`` for a connection without a
session; the client's own text for no connection at all (DNS failures, a null MX, with
the enhanced codes Postfix's client gives them). Replies given after the message data
(a full mailbox, a recipient rate limit) say ``(in reply to end of DATA command)``. Mail
deferred at a dead destination never reaches the SMTP client: qmgr hands it to the
``error`` agent, which logs the recorded reason (mail-facts.md §12).

A recipient ``passed_on`` at a host that is not the final one gets no status line, only
the host's reply under the queue ID (``smtp_trouble.c``); a failed TCP connection, at any
host, logs ``connect to H[IP]:25: …`` without a queue ID (``smtp_connect.c``;
mail-facts.md §11).

``delay`` runs from the file's arrival; ``delays`` are: a, time before the last entry
into the active queue (0 on the first attempt, else up to the start of the delivery); b,
on the first attempt the wait before the delivery; c, connection set-up, from the start
of the delivery (the hosts tried before in it included) to the session, or to the end
of the last failed connection; d, the session.
"""

from __future__ import annotations

import math

from mailnet.maillog.events import DELIVERY, GENERATION, Events
from mailnet.maillog.format import (
    SUSPENDED_PREFIX,
    client_dsn,
    client_said,
    format_delay,
    format_delays,
    receiver_said,
    reply_stage,
)
from mailnet.maillog.queue import QueueFile, QueueFiles, SessionKey
from mailnet.maillog.source import Attempts, Hosts

# Postfix logs a deferral without a connection (a dead destination, a held host) as deferred
_STATUS = {"suspended": "deferred", "skipped": "deferred"}

LastAttempts = dict[tuple[int, str], int]
"""The attempt row that ended last, by (message, recipient)."""


def log_deliveries(
    events: Events, queue: QueueFiles, attempts: Attempts, hosts: Hosts
) -> LastAttempts:
    """Every attempt row's ``smtp`` line; returns each recipient's last attempt."""
    last: LastAttempts = {}
    begun: dict[tuple[int, str, str], float] = {}
    failed: set[SessionKey] = set()
    a = attempts
    for i in sorted(range(len(a)), key=lambda k: (a.end[k], k)):
        mid, rcpt, start, end = a.mid[i], a.rcpt[i], a.start[i], a.end[i]
        qf = queue.find(a.hop[i], mid, start, rcpt)
        mx = a.mx[i]
        if mx is not None and math.isnan(a.session[i]):
            key = (mid, a.hop[i], mx, start)
            if key not in failed:  # one line per connection, not per recipient
                failed.add(key)
                _failed_connection(events, i, a, qf, hosts)
        if a.outcome[i] == "passed_on":
            # the delivery goes on at the next host: its set-up time runs from here
            begun.setdefault((mid, rcpt, a.hop[i]), start)
            if not math.isnan(a.session[i]):
                _passed_on(events, i, a, qf, hosts)
            continue
        prev = last.get((mid, rcpt))
        if prev is None or a.end[prev] <= end:
            last[(mid, rcpt)] = i
        relay, text = _outcome(i, a, queue, hosts)
        dsn, program = a.enhanced[i], "smtp"
        if a.mx[i] is None:
            if not a.ip[i] and a.reply[i].startswith(SUSPENDED_PREFIX):
                program = "error"
            dsn = client_dsn(a.reply[i], dsn)
        handoff = begun.pop((mid, rcpt, a.hop[i]), start)
        events.emit(
            end,
            qf.gen * GENERATION + DELIVERY,
            qf.host,
            program,
            f"{qf.qid}: to=<{rcpt}>, relay={relay}, "
            f"delay={format_delay(end - qf.arrival)}, delays={_delays(i, a, qf, handoff)}, "
            f"dsn={dsn}, status={_STATUS.get(a.outcome[i], a.outcome[i])} ({text})",
        )
        if a.outcome[i] in ("sent", "bounced"):
            qf.done[rcpt] = end
    return last


def _failed_connection(events: Events, i: int, a: Attempts, qf: QueueFile, hosts: Hosts) -> None:
    """The info line of a connection that got no session, at any host: a TCP failure
    without a queue ID (``smtp_connect.c`` logs the reason alone), a server that refused
    to talk at a host that is not the final one under the queue ID (``smtp_trouble.c``;
    at the final host the status lines say it)."""
    mx = a.mx[i]
    assert mx is not None
    hostip = hosts.hostip(mx)
    rank = qf.gen * GENERATION + DELIVERY
    if (a.code[i], a.enhanced[i]) == (421, "4.4.1"):
        events.emit(a.end[i], rank, qf.host, "smtp", f"connect to {hostip}:25: {a.reply[i]}")
    elif a.outcome[i] == "passed_on":
        text = f"host {hostip} refused to talk to me: {a.code[i]} {a.enhanced[i]} {a.reply[i]}"
        events.emit(a.end[i], rank, qf.host, "smtp", f"{qf.qid}: {text}")


def _passed_on(events: Events, i: int, a: Attempts, qf: QueueFile, hosts: Hosts) -> None:
    """The info line of a recipient kept for the next host (``smtp_trouble.c``): the
    host's reply under the queue ID, and no status."""
    mx = a.mx[i]
    assert mx is not None
    hostip = hosts.hostip(mx)
    said = receiver_said(a.reply[i], a.rcpt[i], mx in hosts.relays)
    text = (
        f"host {hostip} said: {a.code[i]} {a.enhanced[i]} {said} "
        f"(in reply to {reply_stage(a.reply[i])} command)"
    )
    events.emit(a.end[i], qf.gen * GENERATION + DELIVERY, qf.host, "smtp", f"{qf.qid}: {text}")


def _delays(i: int, a: Attempts, qf: QueueFile, handoff: float) -> str:
    """``delays=a/b/c/d`` of attempt row ``i`` of a recipient of ``qf``, whose delivery
    began at ``handoff``: the set-up ``c`` runs from there, so it holds the hosts tried
    before in the same delivery (Postfix's ``smtp_connect.c``: the time spent on earlier
    hosts "must be counted as connection set-up time for the session with the good
    host")."""
    rcpt, end, session = a.rcpt[i], a.end[i], a.session[i]
    first = rcpt not in qf.tried
    qf.tried.add(rcpt)
    queued_for = max(0.0, handoff - qf.arrival)
    wait, before = (0.0, queued_for) if first else (queued_for, 0.0)
    if math.isnan(session):
        setup, transfer = end - handoff, 0.0
    else:
        setup, transfer = session - handoff, end - session
    return format_delays(wait, before, setup, transfer)


def _outcome(i: int, a: Attempts, queue: QueueFiles, hosts: Hosts) -> tuple[str, str]:
    """``(relay, text)`` of attempt row ``i``."""
    mx, code, enhanced, reply = a.mx[i], a.code[i], a.enhanced[i], a.reply[i]
    if mx is None:
        if not a.ip[i]:
            return "none", reply  # no source address: a dead destination or warm-up caps
        return "none", client_said(reply, a.rcpt[i].rpartition("@")[2])
    hostip = hosts.hostip(mx)
    if math.isnan(a.session[i]):
        if (code, enhanced) == (421, "4.4.1"):
            return "none", f"connect to {hostip}:25: {reply}"
        return f"{hostip}:25", f"host {hostip} refused to talk to me: {code} {enhanced} {reply}"
    relay = f"{hostip}:25"
    if a.outcome[i] == "sent":
        receiver = queue.by_session.get((a.mid[i], a.hop[i], mx, a.start[i]))
        queued = f" as {receiver.qid}" if receiver is not None else ""
        return relay, f"{code} {enhanced} {reply}{queued}"
    said = receiver_said(reply, a.rcpt[i], mx in hosts.relays)
    stage = reply_stage(reply)
    return relay, f"host {hostip} said: {code} {enhanced} {said} (in reply to {stage} command)"
