"""A run as a Postfix mail log: one combined syslog of every MTA and MX host.

``maillog_lines(result)`` yields the lines, ``write_maillog(result, path)`` writes them.
Every host of the scenario logs as a Postfix instance would (mail-facts.md §10):

- a provider's MTA (host name ``providers.NAME.hostname``, else ``mta.<first local
  domain>``) logs each submitted message as ``pickup`` (``uid=… from=<…>``), ``cleanup``
  (``message-id=<…>``) and ``qmgr`` (``from=<…>, size=…, nrcpt=… (queue active)``) lines,
  then an ``smtp`` line per attempt row and a ``local`` line per recipient in one of its
  own domains;
- an MX host (named as in ``[servers]``) logs each session that it accepts mail in as
  ``smtpd`` ``client=HOST[IP]`` (the sending hop's host name and source address), then
  ``cleanup`` and ``qmgr``; a primary delivers at once (``local``, ``relay=local``), a
  backup MX or relay queues the mail and logs its own ``smtp`` attempts. Each recipient
  a server refuses in a session (4xx or 5xx reply to RCPT TO) gives an ``smtpd``
  ``NOQUEUE: reject: RCPT from …`` line (with the queue ID instead of ``NOQUEUE`` once an
  earlier recipient of the session was accepted);
- expiry is a ``qmgr`` ``from=<…>, status=expired, returned to sender`` line, each DSN a
  ``bounce`` ``sender non-delivery notification: NEWID`` line (``sender delay
  notification`` for a delay warning) followed by the DSN's own ``cleanup`` and ``qmgr``
  lines (the null sender ``from=<>``), and a queue file whose recipients are all done
  ends with ``qmgr`` ``removed``.

Delivery lines keep Postfix's field order, ``to=<…>, relay=…, delay=…, delays=a/b/c/d,
dsn=…, status=… (…)`` with no ``tls=`` or ``conn_use=`` field, which is what pflogsumm
1.1.5 parses. ``dsn`` is the attempt row's enhanced code. The text in parentheses is
rebuilt from the row: ``250 2.0.0 Ok: queued as ID`` (the receiver's queue ID); ``host
H[IP] said: CODE X.Y.Z … (in reply to RCPT TO command)`` for a refused recipient;
``connect to H[IP]:25: Connection timed out`` or ``… refused`` (``relay=none``; a
timeout is an attempt that lasted longer than the server's connect time); ``host H[IP]
refused to talk to me: …`` for other replies without a session; ``delivery temporarily
suspended: `` and the hop's last connection failure for that domain (dead destination);
Postfix's texts for a null MX and DNS failures. Receiver policy replies (greylisting,
DNSBL, reputation) get the texts of ``mailnet.policies``, for the receiver the server
names in the scenario. ``delay`` runs from the queue file's arrival at that host; ``delays`` are:
a, time before the last entry into the active queue (0 on the first attempt, else up to
the start of the attempt); b, on the first attempt the wait before the connection; c,
connection set-up (up to the server's session, or the whole failed connection); d, the
session. Times are formatted by ``format_delay`` (Postfix ``format_tv`` with two
significant digits and at most two decimals).

Time 0 of the simulation is ``EPOCH`` (2026-03-01 00:00:00), and timestamps are syslog's
year-less ``Mar  1 00:00:05`` (what pflogsumm expects). Queue IDs are Postfix's short
form: five hex digits of the arrival microsecond and a hexadecimal inode number that is
unique over the whole log. Process IDs are stable per host and program; delivery agents
and smtpd get a new PID after 100 uses (Postfix's max_use). Message sizes are not part of
the tables: every message is ``MESSAGE_SIZE`` bytes and every DSN ``DSN_SIZE``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

import pandas as pd

from mailnet import smtp
from mailnet.policies.blocklists import PRESETS
from mailnet.policies.greylisting import Greylist
from mailnet.policies.reputation import reject_reply, throttle_reply

EPOCH = datetime(2026, 3, 1, 0, 0, 0)
"""Wall-clock time of simulation time 0 in the log."""

MESSAGE_SIZE = 4096
"""Bytes logged for every message (the model's default message size)."""

DSN_SIZE = 6144
"""Bytes logged for every DSN (the returned message plus the report)."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MILLION = 1_000_000
_INODE_BASE = 0x1E240
_MAX_USE = 100
_DAEMONS = frozenset({"qmgr", "pickup"})

# Sort ranks of lines that share one instant: a queue file's lines in Postfix's order,
# the lines of a DSN after those of the mail that caused it, "removed" last.
_RECEIPT, _CLEANUP, _QMGR, _DELIVERY, _LOCAL, _EXPIRED, _NOTIFY = 0, 1, 2, 3, 3.5, 4, 5
_REMOVED = 100

# Receiver policy replies whose text names the client: blocklist actions and the
# reputation styles that throttle (mailnet.policies.blocklists and .reputation)
_BLOCKLIST_ACTIONS = {(554, "5.7.1"): "reject", (451, "4.7.1"): "defer"}
_THROTTLE_STYLES = {
    (421, "4.7.28"): "gmail",
    (451, "4.7.650"): "microsoft",
    (421, "4.7.0"): "yahoo",
}


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


class _Clock:
    """Syslog timestamps (``Mar  1 12:00:05``) of simulation times, cached per day."""

    def __init__(self, epoch: datetime):
        self.epoch = epoch
        self._offset = epoch.hour * 3600 + epoch.minute * 60 + epoch.second
        self._days: dict[int, str] = {}
        self._last = (None, "")

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


class _QueueFile:
    """One queue file on one host: a message as it sits in that host's queue."""

    __slots__ = (
        "hop",
        "host",
        "mid",
        "sender",
        "arrival",
        "created",
        "rcpts",
        "rcpt_set",
        "gen",
        "origin",
        "local",
        "size",
        "qid",
        "done",
        "order",
        "tried",
    )

    def __init__(
        self, hop, host, mid, sender, arrival, rcpts, gen, origin, local, size, order, created=None
    ):
        self.created = arrival if created is None else created
        self.hop = hop
        self.host = host
        self.mid = mid
        self.sender = sender
        self.arrival = arrival
        self.rcpts = rcpts
        self.rcpt_set = set(rcpts)
        self.gen = gen
        self.origin = origin
        self.local = local
        self.size = size
        self.qid = ""
        self.done: dict[str, float] = {}
        self.order = order
        self.tried: set[str] = set()


def _column(frame, name) -> list:
    """A column as a list of Python values, missing values as ``None``."""
    series = frame[name]
    values = series.astype(object).tolist()
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
        for v in values
    ]


def _floats(frame, name) -> list[float]:
    return frame[name].astype(float).tolist()


def _known_replies() -> dict[tuple[int, str], str]:
    """Reply texts of the model's fixed replies, by (code, enhanced code)."""
    texts: dict[tuple[int, str], str] = {}
    for value in vars(smtp).values():
        if isinstance(value, smtp.Reply):
            texts.setdefault((value.code, value.enhanced), value.text)
    return texts


class _Writer:
    """Builds the events of one run and renders them in time order."""

    def __init__(self, result, epoch: datetime):
        self.result = result
        self.scenario = result.scenario
        self.clock = _Clock(epoch)
        self.events: list[tuple] = []
        self.seq = count()
        self.replies = _known_replies()
        providers = self.scenario.providers
        servers = self.scenario.servers
        self.hostnames: dict[str, str] = {}
        for name, cfg in providers.items():
            self.hostnames[name] = getattr(cfg, "hostname", None) or f"mta.{cfg.local_domains[0]}"
        for name in servers:
            self.hostnames[name] = name
        self.server_ip = {name: cfg.ip for name, cfg in servers.items()}
        self.local_domains = {name: set(cfg.local_domains) for name, cfg in providers.items()}

    # ------------------------------------------------------------------ helpers
    def host(self, hop: str) -> str:
        return self.hostnames.get(hop, hop)

    def emit(self, t: float, rank: float, host: str, program: str, text: str) -> None:
        self.events.append((t, rank, next(self.seq), host, program, text))

    def hostip(self, server: str) -> str:
        return f"{server}[{self.server_ip.get(server, '0.0.0.0')}]"

    def zone(self, server: str, action: str) -> str | None:
        """The DNSBL zone ``server``'s receiver names when it will ``action`` a client."""
        cfg = self.scenario.servers.get(server)
        receivers = getattr(self.scenario, "receivers", None) or {}
        receiver = receivers.get(getattr(cfg, "receiver", None))
        lists = dict(getattr(receiver, "blocklists", None) or {})
        names = [name for name, act in lists.items() if act == action] or list(lists)
        if not names:
            return None
        blocklist = (getattr(self.scenario, "blocklists", None) or {}).get(names[0])
        preset = getattr(blocklist, "preset", None) or names[0]
        return getattr(blocklist, "zone", None) or PRESETS.get(preset, {}).get("zone") or names[0]

    def style(self, server: str) -> str:
        """The reply style of ``server``'s receiver reputation (gmail unless it says)."""
        cfg = self.scenario.servers.get(server)
        receivers = getattr(self.scenario, "receivers", None) or {}
        receiver = receivers.get(getattr(cfg, "receiver", None))
        return getattr(getattr(receiver, "reputation", None), "style", None) or "gmail"

    def reply_text(self, code: int, enhanced: str, rcpt: str, client_ip: str, server: str) -> str:
        """The text after ``CODE X.Y.Z`` of ``server``'s reply (rebuilt from the codes)."""
        key = (code, enhanced)
        if key == (550, "5.1.1"):
            return f"<{rcpt}>: Recipient address rejected: User unknown in local recipient table"
        if key == (450, "4.2.0") and rcpt:
            return Greylist.reply(rcpt).text
        if key in _BLOCKLIST_ACTIONS:
            zone = self.zone(server, _BLOCKLIST_ACTIONS[key])
            if zone is not None:
                return f"Service unavailable; Client host [{client_ip}] blocked using {zone}"
        if key in _THROTTLE_STYLES:
            return throttle_reply(_THROTTLE_STYLES[key], client_ip).text
        if key == (550, "5.7.1"):
            return reject_reply(self.style(server), client_ip).text
        text = self.replies.get(key)
        if text is None:
            text = (
                "Requested action not taken"
                if code >= 500
                else "Requested action aborted: try again later"
            )
        if text.startswith("Recipient address rejected") and rcpt:
            return f"<{rcpt}>: {text}"
        return text

    # ------------------------------------------------------------------ the run
    def build(self) -> None:
        result = self.result
        m = result.messages
        a = result.attempts

        # messages: one record per message id, rows in table order
        m_mid = m["message_id"].astype(int).tolist()
        m_rcpt = _column(m, "recipient")
        m_sender = [s or "" for s in _column(m, "sender")]
        m_provider = _column(m, "provider")
        m_domain = _column(m, "recipient_domain")
        m_dsn = m["is_dsn"].astype(bool).tolist()
        m_created = _floats(m, "created_at")
        m_status = _column(m, "status")
        m_attempts = m["attempts"].astype(int).tolist()
        m_enh = _column(m, "final_enhanced_code")
        m_released = _floats(m, "released_at")
        m_dsn_of = _column(m, "dsn_of")
        m_dsn_kind = _column(m, "dsn_kind")
        m_dsn_rcpt = _column(m, "dsn_recipient")
        rows_of: dict[int, list[int]] = {}
        for i, mid in enumerate(m_mid):
            rows_of.setdefault(mid, []).append(i)
        sender_of = {mid: m_sender[rows[0]] for mid, rows in rows_of.items()}
        dsn_of = {mid: m_dsn[rows[0]] for mid, rows in rows_of.items()}

        # attempts
        a_mid = a["message_id"].astype(int).tolist()
        a_rcpt = _column(a, "recipient")
        a_hop = _column(a, "hop")
        a_ip = [ip or "" for ip in _column(a, "source_ip")]
        a_mx = _column(a, "mx_host")
        a_start = _floats(a, "started_at")
        a_session = _floats(a, "session_at")
        a_end = _floats(a, "ended_at")
        a_code = a["code"].astype(int).tolist()
        a_enh = [e or "" for e in _column(a, "enhanced_code")]
        a_out = _column(a, "outcome")
        a_reply = _column(a, "reply")
        m_reply = _column(m, "final_reply")

        # ---------------------------------------------------------- queue files
        files: list[_QueueFile] = []
        order = count()
        for mid, rows in rows_of.items():
            first = rows[0]
            hop = m_provider[first]
            dsn = m_dsn[first]
            local = self.local_domains.get(hop, set())
            origin = "bounce" if dsn else "pickup"
            released = m_released[first]
            # a queue file starts when the MSA released the message
            arrival = m_created[first] if math.isnan(released) else released
            if not dsn and any(
                m_status[i] == "bounced"
                and m_attempts[i] == 0
                and (m_domain[i] not in local or (m_enh[i] or "").startswith("5.7"))
                for i in rows
            ):
                # refused at submission by the provider's outbound controls
                origin = "rejected"
            files.append(
                _QueueFile(
                    hop,
                    self.host(hop),
                    mid,
                    m_sender[first],
                    arrival,
                    [m_rcpt[i] for i in rows],
                    1 if dsn else 0,
                    origin,
                    False,
                    DSN_SIZE if dsn else MESSAGE_SIZE,
                    next(order),
                )
            )

        sessions: dict[tuple, list[int]] = {}
        for i, mx in enumerate(a_mx):
            if mx is not None:
                sessions.setdefault((a_mid[i], a_hop[i], mx, a_start[i]), []).append(i)
        session_file: dict[tuple, _QueueFile] = {}
        roles = {name: cfg.role for name, cfg in self.scenario.servers.items()}
        for key, rows in sessions.items():
            sent = [i for i in rows if a_out[i] == "sent"]
            if not sent:
                continue
            mid, _hop, mx, _start = key
            dsn = dsn_of.get(mid, False)
            qf = _QueueFile(
                mx,
                self.host(mx),
                mid,
                sender_of.get(mid, ""),
                a_end[sent[0]],
                [a_rcpt[i] for i in sent],
                1 if dsn else 0,
                "smtpd",
                roles.get(mx, "primary") == "primary",
                DSN_SIZE if dsn else MESSAGE_SIZE,
                next(order),
                created=a_session[sent[0]],
            )
            files.append(qf)
            session_file[key] = qf

        # queue IDs in the order the files were created (an smtpd file at its first
        # accepted RCPT TO, i.e. when the session began)
        files.sort(key=lambda f: (f.created, f.order))
        by_hop: dict[tuple[str, int], list[_QueueFile]] = {}
        message_ids: dict[int, str] = {}
        for inode, qf in enumerate(files, start=_INODE_BASE):
            usec = int(math.floor(qf.created * _MILLION)) % _MILLION
            qf.qid = f"{usec:05X}{inode:05X}"
            by_hop.setdefault((qf.hop, qf.mid), []).append(qf)
            if qf.mid not in message_ids:
                message_ids[qf.mid] = f"<{self.clock.compact(qf.created)}.{qf.qid}@{qf.host}>"

        def find(hop: str, mid: int, t: float, rcpt: str) -> _QueueFile:
            candidates = by_hop.get((hop, mid))
            if not candidates:
                qf = _QueueFile(
                    hop,
                    self.host(hop),
                    mid,
                    sender_of.get(mid, ""),
                    t,
                    [rcpt],
                    1 if dsn_of.get(mid) else 0,
                    "unknown",
                    False,
                    MESSAGE_SIZE,
                    next(order),
                )
                usec = int(math.floor(t * _MILLION)) % _MILLION
                qf.qid = f"{usec:05X}{_INODE_BASE + len(files):05X}"
                files.append(qf)
                by_hop[(hop, mid)] = [qf]
                return qf
            best = None
            for qf in reversed(candidates):
                if qf.arrival <= t + 1e-9:
                    if rcpt in qf.rcpt_set:
                        return qf
                    if best is None:
                        best = qf
            return best or candidates[0]

        # ---------------------------------------------------------- arrivals
        for qf in list(files):
            if qf.origin == "unknown":
                continue
            g = qf.gen * 10
            if qf.origin in ("pickup", "rejected"):
                local, _, _ = qf.sender.partition("@")
                uid = 1000 + zlib.crc32(local.encode()) % 30000
                self.emit(
                    qf.arrival,
                    g + _RECEIPT,
                    qf.host,
                    "pickup",
                    f"{qf.qid}: uid={uid} from=<{qf.sender}>",
                )
            self.emit(
                qf.arrival,
                g + _CLEANUP,
                qf.host,
                "cleanup",
                f"{qf.qid}: message-id={message_ids[qf.mid]}",
            )
            if qf.origin == "rejected":
                row = rows_of[qf.mid][0]
                self.emit(
                    qf.arrival,
                    g + _CLEANUP,
                    qf.host,
                    "cleanup",
                    f"{qf.qid}: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: "
                    f"{m_enh[row]} {m_reply[row]}; from=<{qf.sender}> "
                    f"to=<{qf.rcpts[0]}> proto=ESMTP helo=<localhost>",
                )
                continue
            self.emit(
                qf.arrival,
                g + _QMGR,
                qf.host,
                "qmgr",
                f"{qf.qid}: from=<{qf.sender}>, size={qf.size}, nrcpt={len(qf.rcpts)} "
                "(queue active)",
            )
            if qf.local:
                for rcpt in qf.rcpts:
                    self.local_line(qf, rcpt, "2.0.0", "sent", "delivered to mailbox")
            elif qf.origin in ("pickup", "bounce") and qf.hop in self.local_domains:
                domains = self.local_domains[qf.hop]
                for i in rows_of[qf.mid]:
                    if m_domain[i] not in domains or m_attempts[i] != 0:
                        continue
                    status = m_status[i]
                    if status == "delivered":
                        self.local_line(qf, m_rcpt[i], "2.0.0", "sent", "delivered to mailbox")
                    elif status == "bounced" or (status == "dropped" and m_dsn[i]):
                        user = m_rcpt[i].partition("@")[0]
                        self.local_line(
                            qf, m_rcpt[i], m_enh[i] or "5.1.1", "bounced", f'unknown user: "{user}"'
                        )

        # ---------------------------------------------------------- receivers' smtpd
        for key, rows in sessions.items():
            mid, hop, mx, _start = key
            qf = session_file.get(key)
            client = self.host(hop)
            g = (1 if dsn_of.get(mid) else 0) * 10
            accepted = False
            for i in rows:
                at = a_session[i]
                if math.isnan(at):
                    continue
                if a_out[i] == "sent":
                    if not accepted and qf is not None:
                        accepted = True
                        self.emit(
                            at, g + _RECEIPT, mx, "smtpd", f"{qf.qid}: client={client}[{a_ip[i]}]"
                        )
                    continue
                rcpt = a_rcpt[i]
                queue = qf.qid if accepted else "NOQUEUE"
                reply = self.reply_text(a_code[i], a_enh[i], rcpt, a_ip[i], mx)
                self.emit(
                    at,
                    g + _RECEIPT,
                    mx,
                    "smtpd",
                    f"{queue}: reject: RCPT from {client}[{a_ip[i]}]: {a_code[i]} "
                    f"{a_enh[i]} {reply}; from=<{sender_of.get(mid, '')}> to=<{rcpt}> "
                    f"proto=ESMTP helo=<{client}>",
                )

        # ---------------------------------------------------------- senders' smtp
        last_attempt: dict[tuple[int, str], int] = {}
        for i in sorted(range(len(a_mid)), key=lambda k: (a_end[k], k)):
            mid, rcpt, hop, mx = a_mid[i], a_rcpt[i], a_hop[i], a_mx[i]
            start, end, outcome = a_start[i], a_end[i], a_out[i]
            qf = find(hop, mid, start, rcpt)
            prev = last_attempt.get((mid, rcpt))
            if prev is None or a_end[prev] <= end:
                last_attempt[(mid, rcpt)] = i
            domain = rcpt.rpartition("@")[2]
            if mx is None:
                relay = "none"
                text = self.no_connection(i, domain, a_code, a_enh, a_ip, a_reply)
            elif math.isnan(a_session[i]):
                relay, text = self.site_failure(i, mx, a_code, a_enh, a_start, a_end, a_ip)
            else:
                relay = f"{self.hostip(mx)}:25"
                if outcome == "sent":
                    receiver = session_file.get((mid, hop, mx, start))
                    queued = f" as {receiver.qid}" if receiver is not None else ""
                    text = f"{a_code[i]} {a_enh[i]} Ok: queued{queued}"
                else:
                    reply = self.reply_text(a_code[i], a_enh[i], rcpt, a_ip[i], mx)
                    text = (
                        f"host {self.hostip(mx)} said: {a_code[i]} {a_enh[i]} {reply} "
                        "(in reply to RCPT TO command)"
                    )
            first = rcpt not in qf.tried
            qf.tried.add(rcpt)
            session = a_session[i]
            queued_for = max(0.0, start - qf.arrival)
            wait, before = (0.0, queued_for) if first else (queued_for, 0.0)
            if math.isnan(session):
                setup, transfer = end - start, 0.0
            else:
                setup, transfer = session - start, end - session
            delays = "/".join(format_delay(x) for x in (wait, before, setup, transfer))
            self.emit(
                end,
                qf.gen * 10 + _DELIVERY,
                qf.host,
                "smtp",
                f"{qf.qid}: to=<{rcpt}>, relay={relay}, "
                f"delay={format_delay(end - qf.arrival)}, delays={delays}, "
                f"dsn={a_enh[i]}, status={outcome} ({text})",
            )
            if outcome in ("sent", "bounced"):
                qf.done[rcpt] = end

        # ---------------------------------------------------------- expiry
        expired_at: set[tuple[int, float]] = set()
        for i, status in enumerate(m_status):
            if status not in ("expired", "dropped"):
                continue
            last = last_attempt.get((m_mid[i], m_rcpt[i]))
            if last is None or a_out[last] != "deferred":
                continue
            end = a_end[last]
            qf = find(a_hop[last], m_mid[i], a_start[last], m_rcpt[i])
            qf.done[m_rcpt[i]] = end
            if (id(qf), end) in expired_at:
                continue
            expired_at.add((id(qf), end))
            self.emit(
                end,
                qf.gen * 10 + _EXPIRED,
                qf.host,
                "qmgr",
                f"{qf.qid}: from=<{qf.sender}>, status=expired, returned to sender",
            )

        # ---------------------------------------------------------- DSNs
        # each DSN names the message it reports on and its first reported recipient
        for qf in files:
            if qf.origin != "bounce" or not qf.rcpts:
                continue
            row = rows_of[qf.mid][0]
            if m_dsn_of[row] is None:
                continue
            parent = find(qf.hop, int(m_dsn_of[row]), qf.arrival, m_dsn_rcpt[row])
            kind = "delay" if m_dsn_kind[row] == "delayed" else "non-delivery"
            self.emit(
                qf.arrival,
                parent.gen * 10 + _NOTIFY,
                parent.host,
                "bounce",
                f"{parent.qid}: sender {kind} notification: {qf.qid}",
            )

        # ---------------------------------------------------------- removal
        for qf in files:
            if qf.rcpts and len(qf.done) >= len(qf.rcpt_set) and qf.rcpt_set.issubset(qf.done):
                self.emit(
                    max(qf.done.values()), _REMOVED + qf.gen, qf.host, "qmgr", f"{qf.qid}: removed"
                )

    # ------------------------------------------------------------------ pieces
    def local_line(self, qf: _QueueFile, rcpt: str, dsn: str, status: str, text: str) -> None:
        self.emit(
            qf.arrival,
            qf.gen * 10 + _LOCAL,
            qf.host,
            "local",
            f"{qf.qid}: to=<{rcpt}>, relay=local, delay=0, delays=0/0/0/0, dsn={dsn}, "
            f"status={status} ({text})",
        )
        qf.done[rcpt] = qf.arrival

    def site_failure(self, i, mx, codes, enhanced, starts, ends, ips) -> tuple[str, str]:
        """(relay, text) of an attempt that reached ``mx`` but got no session."""
        code, enh = codes[i], enhanced[i]
        hostip = self.hostip(mx)
        if (code, enh) == (421, "4.4.1"):
            server = self.scenario.servers.get(mx)
            connect = float(getattr(server, "connect_time", 0.0)) if server else 0.0
            why = (
                "Connection timed out"
                if ends[i] - starts[i] > connect + 1e-6
                else "Connection refused"
            )
            return "none", f"connect to {hostip}:25: {why}"
        reply = self.reply_text(code, enh, "", ips[i], mx)
        return f"{hostip}:25", f"host {hostip} refused to talk to me: {code} {enh} {reply}"

    def no_connection(self, i, domain, codes, enhanced, ips, replies) -> str:
        """The text of an attempt that made no connection at all."""
        code, enh = codes[i], enhanced[i]
        if not ips[i]:
            # no source address: a dead destination (the row names the failure that
            # made it dead) or every address at its warm-up cap
            return replies[i]
        key = (code, enh)
        if key == (smtp.NULL_MX.code, smtp.NULL_MX.enhanced):
            return f"Domain {domain} does not accept mail (nullMX)"
        if key == (smtp.DNS_NXDOMAIN.code, smtp.DNS_NXDOMAIN.enhanced):
            return (
                f"Host or domain name not found. Name service error for name={domain} "
                "type=MX: Host not found"
            )
        if key == (smtp.DNS_TEMPFAIL.code, smtp.DNS_TEMPFAIL.enhanced):
            return (
                f"Host or domain name not found. Name service error for name={domain} "
                "type=MX: Host not found, try again"
            )
        if key == (554, "5.4.6"):
            return f"mail for {domain} loops back to myself"
        return self.replies.get(key, "delivery failed")

    # ------------------------------------------------------------------ output
    def lines(self) -> Iterator[str]:
        self.events.sort(key=lambda e: (e[0], e[1], e[2]))
        stamp = self.clock.stamp
        pids: dict[tuple[str, str], list[int]] = {}
        next_pid: dict[str, int] = {}
        for t, _rank, _seq, host, program, text in self.events:
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


def maillog_lines(result, epoch: datetime = EPOCH) -> Iterator[str]:
    """The Postfix log lines (without newlines) of a run, in time order over all hosts."""
    writer = _Writer(result, epoch)
    writer.build()
    return writer.lines()


def write_maillog(result, path, epoch: datetime = EPOCH) -> Path:
    """Write the run's combined Postfix log to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in maillog_lines(result, epoch))
    return path
