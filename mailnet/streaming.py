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


class FoldingTable(MessageTable):
    """A ``MessageTable`` whose row indices are slots, reused once a row is folded."""

    def __init__(self, fold: RowFold, served: set[str], cohort: CohortFold):
        super().__init__()
        self._fold = fold
        self.cohort = cohort
        self._served = served
        self._free: list[int] = []
        self._settled: list[int] = []
        self.seq = array("q")  # the creation rank of the row in each slot
        self.created = 0
        self.counts = {"messages": 0, "dsn_messages": 0, "backscatter": 0}
        self._last_message = -1
        self._last_astray = -1
        self._live: dict[int, int] = {}  # message id -> its rows in slots
        self.connections: dict[int, dict[tuple, int]] = {}  # FoldingAttempts, by message

    def add(  # noqa: PLR0917
        self,
        message_id,
        recipient,
        sender,
        sender_class,
        provider,
        domain,
        is_dsn,
        created_at,
        sender_domain="",
    ) -> int:
        if self._settled:
            self.fold_settled()
        if message_id != self._last_message:
            self._last_message = message_id
            self.counts["dsn_messages" if is_dsn else "messages"] += 1
        if is_dsn and message_id != self._last_astray and domain not in self._served:
            self._last_astray = message_id
            self.counts["backscatter"] += 1
        self.cohort.created(message_id, is_dsn, created_at)
        seq = self.created
        self.created = seq + 1
        live = self._live
        live[message_id] = live.get(message_id, 0) + 1
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

    def settle(self, row: int, status: str, code: int, enhanced: str, text: str = "") -> None:
        super().settle(row, status, code, enhanced, text)
        self._settled.append(row)

    def fold_settled(self) -> None:
        """Fold the rows settled so far and free their slots."""
        settled, self._settled = self._settled, []
        for row in settled:
            self._fold_row(row)

    def finish(self) -> None:
        """At the end of the run: fold every row, settled or still in a queue."""
        self.fold_settled()
        free = set(self._free)
        for row in range(len(self)):
            if row not in free:
                self._fold_row(row)

    def created_messages(self) -> int:
        return self._last_message + 1

    def _fold_row(self, row: int) -> None:
        self._fold.fold(self, row, self.seq[row])
        self.cohort.fold(self, row)
        message_id = self.message_id[row]
        left = self._live.pop(message_id) - 1
        if left:
            self._live[message_id] = left
        else:  # no attempt of the message can come any more
            self.connections.pop(message_id, None)
        self.delivered_at[row] = math.nan
        self.retrieved_at[row] = math.nan
        self.released_at[row] = math.nan
        self.status[row] = "in_queue"
        self.attempts[row] = 0
        self.final_code[row] = 0
        self.final_enhanced_code[row] = ""
        self.folder[row] = None
        self.collateral_cause[row] = None
        self.self_inflicted_cause[row] = None
        self.final_reply[row] = None
        self.stored_by[row] = None
        self.dsn_of[row] = None
        self.dsn_kind[row] = None
        self.dsn_recipient[row] = None
        self._free.append(row)

    def frame(self):
        raise TypeError("a summary-only run keeps no messages table")


class FoldingAttempts:
    """An ``AttemptLog`` that folds each row: outcome counts, connections, session waits,
    and which recipients were ever deferred."""

    def __init__(self, rows: RowFold, sessions: SessionFold, table: FoldingTable):
        self.rows = 0
        self.suspended = 0
        self.skipped = 0
        self._deferred = rows.deferred
        self._sessions = sessions
        self._seen = table.connections  # message -> connection key -> _SERVER | _SESSION
        self._cohort = table.cohort
        self._last: tuple | None = None

    # the AttemptLog.add signature: one positional argument per column
    def add(  # noqa: PLR0917
        self,
        message_id,
        recipient,
        hop,
        source_ip,
        mx_host,
        started_at,
        session_at,
        ended_at,
        code,
        enhanced,
        outcome,
        reply="",
    ) -> None:
        self.rows += 1
        self._cohort.attempt(message_id, recipient, ended_at)
        if outcome in DEFERRALS:
            self._deferred.add((message_id, recipient))
            if outcome == "suspended":
                self.suspended += 1
            elif outcome == "skipped":
                self.skipped += 1
        if mx_host is None:
            return
        last = (message_id, hop, mx_host, started_at, session_at)
        if last == self._last:
            return  # the same connection, for another recipient of the delivery
        self._last = last
        seen = self._seen.get(message_id)
        if seen is None:
            seen = self._seen[message_id] = {}
        self._connection(seen, (hop, mx_host, started_at), session_at, enhanced)

    def _connection(self, seen: dict[tuple, int], key: tuple, session_at, enhanced) -> None:
        """Count a connection once for its server (after warm-up) and once for its session:
        the first attempt row with ``key`` (of the message ``seen`` holds the connections
        of) counts, as ``drop_duplicates`` keeps it."""
        _, host, started = key
        flags = seen.get(key, 0)
        if flags == _SERVER | _SESSION:
            return
        s = self._sessions
        has_session = not math.isnan(session_at)
        new = flags
        if not flags & _SERVER and started >= s.warmup:
            new |= _SERVER
            entry = s.connection(host, enhanced == "4.3.2")
            if has_session:
                w = s.wait(host, started, session_at)
                entry[2] += 1
                entry[3] += w > 1e-9
                entry[4] += w
        if has_session and not flags & _SESSION:
            new |= _SESSION
            w = s.wait(host, started, session_at)
            s.sessions += 1
            s.waited += w > 1e-9
            s.wait_total += w
        if new != flags:
            seen[key] = new

    def __len__(self) -> int:
        return self.rows


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
