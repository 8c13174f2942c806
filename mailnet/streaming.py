"""A summary-only event log: the model writes to it as to ``records.EventLog``, and every
row is folded into the summary's accumulators and dropped, so memory follows the mail
in flight, not the length of the run.

The messages table hands out *slots*: a recipient row lives in a slot while the model can
still change it, and is folded, and its slot reused, once it is settled (delivered,
bounced, expired or dropped). Retrieval is known when the row is stored (``Mailboxes``
computes it), so a settled row is final; it is folded at the next row added, after the
model has finished writing it. Attempt rows and queue-level changes are folded as they
come (``streaming_summary``); reputation samples are not kept.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import Any

from mailnet.cohort import CohortFold
from mailnet.metrics import Summary, listing_counts
from mailnet.records import MessageTable, ScoreLog
from mailnet.scenario import Scenario
from mailnet.streaming_summary import RowFold, SessionFold, row_summary
from mailnet.timeseries import Settling

DEFERRALS = ("deferred", "suspended", "skipped")
"""Attempt outcomes that leave the recipient in a queue."""

_SERVER, _SESSION = 1, 2  # a connection key counted for its server; its session's wait
_CLOSED = 3  # the length of the marker ``FoldingAttempts.closed`` adds among the rows

BLOCK = 64
"""Settled rows folded at once (``FoldingTable``), or a 32nd of the rows created so far
when that is fewer, so that a short run keeps few slots: a block is one loop with its
columns bound once, where a fold per row costs several Python calls. Small, so that what
waits for the next block (the settled rows, the attempt rows since the last block) stays
a few dozen KB: the flat-memory tests compare single instants."""


STALE = {
    "delivered_at": math.nan,  # written before the row settles as delivered
    "final_code": 0,
    "final_enhanced_code": "",  # written by ``settle`` before the fold reads it
    "final_reply": None,
    "stored_by": None,
    "dsn_of": None,
    "dsn_kind": None,
    "dsn_recipient": None,
}
"""``MessageTable`` columns that neither the model nor the fold reads before writing them,
with their value in a new row: a freed slot keeps the folded row's values in them."""


def _nothing() -> None:
    pass


class Flight:
    """What the folds keep of a message of one row (most mail) while it is in flight:
    the end of its latest attempt (``ended``, -inf: none yet), whether an attempt was
    deferred, and its connection at its latest start (``hop``, ``host``, ``started`` and
    its ``flags``, ``_SERVER | _SESSION``), with the others at that start in ``more``
    (``FoldingAttempts._connections``). Compiled, so its fields are C values: about 90
    bytes a queued message, where two dicts, a set, a tuple and two floats took about
    370."""

    def __init__(self) -> None:
        self.ended = -math.inf
        self.deferred = False
        self.hop = ""
        self.host = ""
        self.started = -math.inf
        self.flags = 0
        self.more: dict[tuple[str, str], int] | None = None


class FoldingTable(MessageTable):
    """A ``MessageTable`` whose row indices are slots, reused once a row is folded.

    The folds keep a little state per recipient in flight: for a message of one row a
    ``Flight`` in ``flight``; for a message of several rows (those in ``several``) its
    connection keys in ``connections``, and by ``(message id, recipient)`` the end of
    each row's latest attempt in ``last_end`` and the rows with a deferred attempt in
    ``deferred`` (``FoldingAttempts`` writes them)."""

    def __init__(self, fold: RowFold, served: set[str], cohort: CohortFold):
        super().__init__()
        self._fold = fold
        self.cohort = cohort
        self._served = served
        self._free: list[int] = []
        self._settled: list[int] = []
        self._block = 1  # settled rows that make a block, grown as rows are created
        self.seq = array("q")  # the creation rank of the row in each slot
        self.created = 0
        self.counts = {"messages": 0, "dsn_messages": 0, "backscatter": 0}
        self._last_message = -1
        self._last_astray = -1
        # messages in slots: those of one row (most mail) counted, those of several by id
        # with their rows in slots; the folds keep the state of the two apart (above)
        self._single = 0
        self.several: dict[int, int] = {}
        self.flight: dict[int, Flight] = {}
        self.connections: dict[int, dict[tuple, int]] = {}
        self.last_end: dict[tuple[int, str], float] = {}
        self.deferred: set[tuple[int, str]] = set()
        self.before_fold: Callable[[], None] = _nothing  # folds what a block reads first

    def add(  # noqa: PLR0917
        self,
        message_id: int,
        recipient: str,
        sender: str,
        sender_class: str,
        provider: str,
        domain: str,
        is_dsn: bool,
        created_at: float,
        sender_domain: str = "",
    ) -> int:
        if len(self._settled) >= self._block:
            self.fold_settled()
        if message_id != self._last_message:
            self._last_message = message_id
            self.counts["dsn_messages" if is_dsn else "messages"] += 1
            self._single += 1
        else:  # a message's rows are added one after the other, before any attempt
            several = self.several
            n = several.get(message_id)
            if n is None:
                self._single -= 1
                several[message_id] = 2
            else:
                several[message_id] = n + 1
        if is_dsn and message_id != self._last_astray and domain not in self._served:
            self._last_astray = message_id
            self.counts["backscatter"] += 1
        seq = self.created
        self.created = seq + 1
        if not self._free:
            row = super().add(
                message_id,
                recipient,
                sender,
                sender_class,
                provider,
                domain,
                is_dsn,
                created_at,
                sender_domain,
            )
            self.seq.append(seq)
            return row
        row = self._free.pop()
        self.message_id[row] = message_id
        self.recipient[row] = recipient
        self.sender[row] = sender
        self.sender_class[row] = sender_class
        self.provider[row] = provider
        self.recipient_domain[row] = domain
        self.is_dsn[row] = is_dsn
        self.created_at[row] = created_at
        self.sender_domain[row] = sender_domain
        self.seq[row] = seq
        return row

    def in_flight(self) -> int:
        """Messages with a row not yet folded: queued, in a session, or settled and waiting
        for the next block. What a summary-only run holds grows with this, not with the
        messages created."""
        return self._single + len(self.several)

    def settle(self, row: int, status: str, code: int, enhanced: str, text: str = "") -> None:
        MessageTable.settle(self, row, status, code, enhanced, text)  # not super(): per row
        self._settled.append(row)

    def fold_settled(self) -> None:
        """Fold the rows settled so far, in the order they settled, and free their slots."""
        self.before_fold()
        settled, self._settled = self._settled, []
        ended, deferred = self._take_flight(settled)
        self._fold.fold_block(self, settled, self.seq, deferred)
        self.cohort.fold_block(self, settled, ended)
        self._free_slots(settled)
        self._block = min(BLOCK, (self.created >> 5) + 1)

    def finish(self) -> None:
        """At the end of the run: fold every row, the settled ones first, then those still
        in a queue by slot."""
        waiting = set(self._free) | set(self._settled)
        self._settled.extend(row for row in range(len(self)) if row not in waiting)
        self.fold_settled()

    def created_messages(self) -> int:
        return self._last_message + 1

    def _take_flight(self, rows: list[int]) -> tuple[list[float], list[bool]]:
        """For each of ``rows``, about to be folded: the end of its latest attempt (NaN:
        none) and whether an attempt was deferred. A row of a message of several rows
        gives its state up here; a message of one row keeps its ``Flight`` until its slot
        is freed (``_free_slots``)."""
        several, flight, last_end, deferred = (
            self.several,
            self.flight,
            self.last_end,
            self.deferred,
        )
        message_id, recipient = self.message_id, self.recipient
        ended: list[float] = []
        was_deferred: list[bool] = []
        nan = math.nan
        for row in rows:
            mid = message_id[row]
            if mid in several:
                key = (mid, recipient[row])
                ended.append(last_end.pop(key, nan))
                if key in deferred:
                    deferred.remove(key)
                    was_deferred.append(True)
                else:
                    was_deferred.append(False)
                continue
            f = flight.get(mid)  # made by the row's first attempt
            ended.append(nan if f is None else f.ended)
            was_deferred.append(f is not None and f.deferred)
        return ended, was_deferred

    def _free_slots(self, rows: list[int]) -> None:
        """``rows`` are folded into the summary: free their slots. Only the columns the
        model or the fold reads before writing them are reset; the others (``STALE``)
        keep the folded row's values until the next row in the slot writes them."""
        several, connections, message_id = self.several, self.connections, self.message_id
        flight = self.flight
        single = self._single
        retrieved, released, status = self.retrieved_at, self.released_at, self.status
        attempts, folder = self.attempts, self.folder
        collateral, own = self.collateral_cause, self.self_inflicted_cause
        nan = math.nan
        for row in rows:
            mid = message_id[row]
            left = several.get(mid, 1) - 1
            if left:
                several[mid] = left
            # otherwise no attempt of the message can come any more
            elif mid in several:
                del several[mid]
                connections.pop(mid, None)
            else:
                single -= 1
                flight.pop(mid, None)
            retrieved[row] = nan
            released[row] = nan
            status[row] = "in_queue"
            attempts[row] = 0
            folder[row] = None
            collateral[row] = None
            own[row] = None
        self._single = single
        self._free.extend(rows)

    def _clear_stale(self, rows: list[int]) -> None:
        """Reset the ``STALE`` columns of ``rows`` too, for a table that copies its rows
        out: each copied row must hold only what was written to it."""
        for name, value in STALE.items():
            column = getattr(self, name)
            for row in rows:
                column[row] = value

    def frame(self):
        raise TypeError("a summary-only run keeps no messages table")


ATTEMPT_BLOCK = 256
"""Attempt rows buffered before they are folded (at most; a block of settled rows folds
them first): about 40 KB of tuples, while retries go on and no row settles."""


class FoldingAttempts:
    """An ``AttemptLog`` that folds its rows: outcome counts, connections, session waits,
    and which recipients were ever deferred. ``add`` keeps the row; a block of rows is
    folded in one loop, always before the messages table folds a block of its own (which
    reads what the attempts left: its ``flight``, ``last_end`` and ``deferred``)."""

    def __init__(self, rows: RowFold, sessions: SessionFold, table: FoldingTable):
        self.rows = 0
        self.suspended = 0
        self.skipped = 0
        self._sessions = sessions
        self._table = table
        self._last: tuple | None = None
        self._buffer: list[tuple] = []
        table.before_fold = self.fold_pending

    def add(self, *row: Any) -> None:
        """One row, positional as in ``AttemptLog.add`` (message_id, recipient, hop,
        source_ip, mx_host, started_at, session_at, ended_at, code, enhanced, outcome,
        reply)."""
        self.rows += 1
        buffer = self._buffer
        buffer.append(row)
        if len(buffer) >= ATTEMPT_BLOCK:
            self.fold_pending()

    def closed(self, message_id: int, hop: str, now: float) -> None:
        """No delivery of ``message_id``, a message of several rows, is in a session at
        MTA ``hop`` any more (``OutboundMta``): its connection keys there that started
        before ``now`` cannot come again (``_connections``). Kept in order with the rows."""
        self._buffer.append((message_id, hop, now))

    def fold_pending(self) -> None:
        """Fold the rows added since the last time, in order."""
        rows, self._buffer = self._buffer, []
        t = self._table
        flight, several, last_end, deferred = t.flight, t.several, t.last_end, t.deferred
        for row in rows:
            if len(row) == _CLOSED:
                continue
            message_id = row[0]
            ended = row[7]
            outcome = row[10]
            deferral = outcome in DEFERRALS
            if message_id in several:
                key = (message_id, row[1])
                if ended > last_end.get(key, -math.inf):  # the row's latest attempt
                    last_end[key] = ended
                if deferral:
                    deferred.add(key)
            else:
                f = flight.get(message_id)
                if f is None:
                    f = flight[message_id] = Flight()
                if ended > f.ended:  # noqa: PLR1730 (compiled: a comparison, not a call)
                    f.ended = ended
                if deferral:
                    f.deferred = True
            if deferral:
                if outcome == "suspended":
                    self.suspended += 1
                elif outcome == "skipped":
                    self.skipped += 1
        self._connections(rows)

    def _connections(self, rows: list[tuple]) -> None:
        """Count each connection once for its server (after warm-up) and once for its
        session: the first attempt row of a connection key ``(hop, host, started)`` of a
        message counts, as ``drop_duplicates`` keeps it (``SessionFold.connection`` and
        ``SessionFold.wait``, inlined: once per attempt row).

        A message of several rows keeps the keys it has used at an MTA until the MTA says
        none of its deliveries there is in a session (``closed``): two of them (two
        domains on one host, or qmail's one delivery per recipient) can share a key, and
        either may end first. A message of one row keeps only the keys at its latest
        start (its ``Flight``). Its recipient's attempts at an MTA follow one another,
        and a relay's start after the MTA before it accepted the copy, so a key of an
        earlier start cannot come again, and one at the latest start only from an attempt
        that starts the instant a zero-length one ended, to the same host from the same
        MTA: which no MTA makes (a delivery tries each host once; a retry waits the
        policy's minimal backoff). So the counts stay those of the tables, and a message
        held in a queue for a day keeps one key instead of one per attempt."""
        s = self._sessions
        servers, connect, warmup = s.servers, s.connect_time, s.warmup
        sessions, waited, wait_total = s.sessions, s.waited, s.wait_total
        t = self._table
        several, seen_by, flight = t.several, t.connections, t.flight
        previous = self._last
        for row in rows:
            if len(row) == _CLOSED:
                _close(seen_by, row[0], row[1], row[2])
                continue
            message_id, _, hop, _, host, started, session_at = row[:7]
            if host is None:
                continue
            last = (message_id, hop, host, started, session_at)
            if last == previous:
                continue  # the same connection, for another recipient of the delivery
            previous = last
            if message_id in several:
                seen = seen_by.get(message_id)
                if seen is None:
                    seen = seen_by[message_id] = {}
                flags = seen.get((hop, host, started), 0)
                f = None
            else:
                seen = None
                f = flight[message_id]  # made by fold_pending
                flags = _flags(f, hop, host, started)
            if flags == _SERVER | _SESSION:
                continue
            has_session = not math.isnan(session_at)
            if has_session:  # the wait in the host's backlog (0 under float round-off)
                w = session_at - started - connect.get(host, math.nan)
                w = w if w > 1e-9 else 0.0
            new = flags
            if not flags & _SERVER and started >= warmup:
                new |= _SERVER
                entry = servers.get(host)
                if entry is None:
                    entry = servers[host] = [0, 0, 0, 0, 0.0]
                entry[0] += 1
                entry[1] += row[9] == "4.3.2"  # refused
                if has_session:
                    entry[2] += 1
                    entry[3] += w > 1e-9
                    entry[4] += w
            if has_session and not flags & _SESSION:
                new |= _SESSION
                sessions += 1
                waited += w > 1e-9
                wait_total += w
            if f is not None:
                _keep_latest(f, hop, host, started, new)
            elif new != flags:
                assert seen is not None
                seen[(hop, host, started)] = new
        self._last = previous
        s.sessions, s.waited, s.wait_total = sessions, waited, wait_total

    def __len__(self) -> int:
        return self.rows


def _close(seen_by: dict[int, dict[tuple, int]], message_id: int, hop: str, now: float) -> None:
    """Drop the connection keys of ``message_id`` at MTA ``hop`` that started before
    ``now``: none of its deliveries is in a session there (``FoldingAttempts.closed``),
    and one that starts from now on starts at ``now`` or later."""
    seen = seen_by.get(message_id)
    if seen is None:
        return
    for key in [k for k in seen if k[0] == hop and k[2] < now]:
        del seen[key]
    if not seen:
        del seen_by[message_id]


def _flags(f: Flight, hop: str, host: str, started: float) -> int:
    """The flags ``f`` holds for the connection ``(hop, host, started)``."""
    if started != f.started:
        return 0
    if f.host == host and f.hop == hop:
        return f.flags
    return 0 if f.more is None else f.more.get((hop, host), 0)


def _keep_latest(f: Flight, hop: str, host: str, started: float, flags: int) -> None:
    """Keep connection ``(hop, host, started)`` with its ``flags`` in ``f``: the
    connections at the latest start, dropping earlier ones
    (``FoldingAttempts._connections``)."""
    if started > f.started:
        f.hop, f.host, f.started, f.flags, f.more = hop, host, started, flags, None
    elif started == f.started:
        if f.host == host and f.hop == hop:
            f.flags = flags
        else:  # another host at the same instant: keep both
            more = f.more
            if more is None:
                more = f.more = {}
            more[(hop, host)] = flags


class FoldingLevels:
    """A ``LevelLog`` that folds each change into its series' time average over
    ``[warmup, end)``, and follows the total of the MTAs' deferred queues."""

    def __init__(self, warmup: float, end: float):
        self.warmup = warmup
        self.end = end
        self._keys: list[tuple[str, str, str]] = []
        self._index: dict[tuple[str, str, str], int] = {}
        # per series: [time of the last change (-inf: none yet), value, area since the
        # warm-up, whether it is an MTA's deferred queue]; one list, so that a change
        # costs one lookup on the log (about 12 changes per message)
        self._state: list[list[Any]] = []
        self.total = 0  # every MTA's deferred queue together
        self._instant = -math.inf  # the time of the last deferred-queue change
        self.peak = 0
        self.peak_at: float | None = None
        self.drained_at: float | None = None

    def series_id(self, kind: str, entity: str, metric: str) -> int:
        key = (kind, entity, metric)
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)
            self._state.append([-math.inf, 0, 0.0, kind == "mta" and metric == "deferred"])
        return self._index[key]

    def record(self, t: float, series: int, value: int) -> None:
        state = self._state[series]
        warmup = self.warmup
        if t > warmup:
            since = state[0]
            end = self.end
            # min(t, end) - max(since, warmup), without the calls
            state[2] += state[1] * ((t if t < end else end) - (since if since > warmup else warmup))
        if state[3]:
            if t != self._instant:
                self._settle_instant()
                self._instant = t
            self.total += value - state[1]
        state[0] = t
        state[1] = value

    def _settle_instant(self) -> None:
        """The deferred total after every change at the last instant: a new peak, or the
        first time it is empty after the peak (``timeseries.deferred_total``)."""
        if self._instant == -math.inf:
            return
        if self.total > self.peak:
            self.peak, self.peak_at, self.drained_at = self.total, self._instant, None
        elif self.total == 0 and self.peak > 0 and self.drained_at is None:
            self.drained_at = self._instant

    def averages(self) -> dict[str, float]:
        """``metrics.queue_averages``: every series that changed at least once."""
        start, end = self.warmup, self.end
        if end <= start:
            return {f"{k}:{e}:{m}": math.nan for k, e, m in self._recorded()}
        out: dict[str, float] = {}
        for key in self._recorded():
            since, value, area, _ = self._state[self._index[key]]
            area += value * (end - (since if since > start else start))
            out[":".join(key)] = area / (end - start)
        return out

    def _recorded(self) -> list[tuple[str, str, str]]:
        return sorted(k for k in self._keys if self._state[self._index[k]][0] != -math.inf)


class NoScores:
    """A ``ScoreLog`` that keeps nothing: the summary has no reputation samples."""

    def record(self, t: float, receiver: str, kind: str, key: str, score: float) -> None:
        pass


class StreamingLog:
    """The event log of a summary-only run (``simulate(..., summary_only=True)``)."""

    def __init__(self, scenario: Scenario):
        sim = scenario.simulation
        served = {domain for p in scenario.providers.values() for domain in p.local_domains}
        self.fold = RowFold()
        self.sessions = SessionFold(sim.warmup)
        self.cohort = CohortFold(scenario)
        self.messages = FoldingTable(self.fold, served, self.cohort)
        self.attempts = FoldingAttempts(self.fold, self.sessions, self.messages)
        self.levels = FoldingLevels(sim.warmup, sim.duration)
        self.scores: NoScores | ScoreLog = NoScores()
        self._scenario = scenario

    def summary(self, listings) -> tuple[Summary, Settling]:
        """Fold what is left and return the run summary (the keys and order of
        ``metrics.summarize``) and how the run settled (outages not yet filled in)."""
        self.messages.finish()
        self.levels._settle_instant()
        sim = self._scenario.simulation
        rows = row_summary(self.fold, self.messages.counts)
        attempts = self.attempts
        sessions = self.sessions.summary()
        summary: Summary = {k: v for k, v in rows.items() if not k.startswith("_")}
        summary.update(
            {
                "attempts": attempts.rows - attempts.suspended - attempts.skipped,
                "suspended_attempts": attempts.suspended,
                "skipped_attempts": attempts.skipped,
                "session_wait_s": sessions["session_wait_s"],
                "queue_time_average": self.levels.averages(),
                "servers": sessions["servers"],
                "classes": rows["_classes"],
                "legitimate": rows["_legitimate"],
                "collateral": rows["_collateral"],
                "self_inflicted": rows["_self_inflicted"],
                "listings": listing_counts(listings),
                **self.cohort.blocks(),
                "warmup_s": sim.warmup,
                "duration_s": sim.duration,
            }
        )
        levels = self.levels
        settled = Settling(
            max_latency_s=rows["_max_latency"],
            deferred_peak=levels.peak,
            deferred_peak_at=levels.peak_at,
            drained_at=levels.drained_at,
            outage_ended_at=None,
            in_queue_at_end=rows["_in_queue"],
        )
        return summary, settled
