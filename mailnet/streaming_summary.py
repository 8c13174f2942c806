"""The run summary folded as the run goes: what ``metrics.summarize`` computes from the
tables, from accumulators that keep no per-row state.

A recipient row is folded once, when it can no longer change (``streaming.FoldingTable``);
an attempt row and a queue-level change as they are recorded. Counts and rates come out
equal to the tables' summary; means and time averages equal up to floating-point rounding
(the sums are added in another order); latency quantiles within
``sketch.RELATIVE_ACCURACY`` (README "Summary-only runs").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from mailnet.metrics import Summary
from mailnet.sketch import LatencySketch, merged
from mailnet.tables import STATUSES

if TYPE_CHECKING:
    from mailnet.records import MessageTable

FAILED = ("bounced", "expired")


class Tally:
    """Counts of string keys that remember each key's first row (creation order), so the
    key order of ``value_counts`` over the rows can be rebuilt."""

    __slots__ = ("counts", "first")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: dict[str, int] = {}

    def add(self, key: str, seq: int) -> None:
        n = self.counts.get(key)
        if n is None:
            self.counts[key] = 1
            self.first[key] = seq
        else:
            self.counts[key] = n + 1
            self.first[key] = min(self.first[key], seq)

    def merge(self, other: Tally) -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
            seq = other.first[key]
            if key not in self.first or seq < self.first[key]:
                self.first[key] = seq

    def value_counts(self) -> dict[str, int]:
        """``{key: count}`` in the order ``Series.value_counts`` gives over the rows: by
        count, descending, ties in order of first appearance."""
        keys = sorted(self.counts, key=self.first.__getitem__)
        ordered = pd.Series([self.counts[k] for k in keys], index=keys, dtype="int64")
        return {str(k): int(n) for k, n in ordered.sort_values(ascending=False).items()}


class HarmFold:
    """Legitimate rows hurt by reputation (``metrics.collateral``): by cause and severity."""

    __slots__ = ("causes", "severity")

    def __init__(self) -> None:
        self.causes = Tally()
        self.severity = {"delayed": 0, "bounced": 0, "spam_folder": 0}

    def merge(self, other: HarmFold) -> None:
        self.causes.merge(other.causes)
        for key, n in other.severity.items():
            self.severity[key] += n

    def summary(self, rows: int) -> Summary:
        hit = sum(self.causes.counts.values())
        return {
            "recipients": hit,
            "rate": hit / rows if rows else None,
            "by_cause": self.causes.value_counts(),
            **self.severity,
        }


class ClassFold:
    """The folded rows of one sender class (``metrics.class_outcomes``)."""

    __slots__ = (
        "attempts",
        "collateral",
        "deferred_delivered",
        "latency",
        "reasons",
        "remote",
        "remote_attempts",
        "remote_deferred",
        "self_inflicted",
        "spam",
        "status",
    )

    def __init__(self) -> None:
        self.status = dict.fromkeys(STATUSES, 0)
        self.attempts = 0
        self.remote = 0
        self.remote_attempts = 0
        self.remote_deferred = 0
        self.deferred_delivered = 0
        self.spam = 0
        self.latency = LatencySketch()
        self.reasons = Tally()
        self.collateral = HarmFold()
        self.self_inflicted = HarmFold()

    @property
    def rows(self) -> int:
        return sum(self.status.values())

    def merge(self, other: ClassFold) -> None:
        for key, n in other.status.items():
            self.status[key] += n
        self.attempts += other.attempts
        self.remote += other.remote
        self.remote_attempts += other.remote_attempts
        self.remote_deferred += other.remote_deferred
        self.deferred_delivered += other.deferred_delivered
        self.spam += other.spam
        self.latency.merge(other.latency)
        self.reasons.merge(other.reasons)
        self.collateral.merge(other.collateral)
        self.self_inflicted.merge(other.self_inflicted)

    def outcomes(self) -> Summary:
        n = self.rows
        delivered = self.status["delivered"]
        failed = self.status["bounced"] + self.status["expired"]
        return {
            "recipients": n,
            "delivered": delivered,
            "inbox": delivered - self.spam,
            "spam_folder": self.spam,
            "deferred_then_delivered": self.deferred_delivered,
            "bounced": failed,
            "bounced_by_reason": self.reasons.value_counts(),
            "bounce_rate": failed / n if n else None,
            "deferral_rate": self.remote_deferred / self.remote if self.remote else None,
            "spam_folder_rate": self.spam / delivered if delivered else None,
            "latency_s": self.latency.percentiles(),
        }


class RowFold:
    """Folds finished recipient rows of a ``MessageTable`` (by slot) into per-class
    accumulators."""

    def __init__(self) -> None:
        self.classes: dict[str, ClassFold] = {}
        self.dsn_status = dict.fromkeys(STATUSES, 0)
        self.end_to_end = LatencySketch()

    def fold_block(self, t: MessageTable, slots: list[int], seq: Any, deferred: list[bool]) -> None:
        """Fold rows ``slots`` of ``t``, in that order; ``seq[slot]`` is the creation rank
        of the row in ``slot``, ``deferred[i]`` whether ``slots[i]`` had a deferred
        attempt (``streaming.FoldingTable``). One loop over the block, its columns bound once: the
        per-row work of a summary-only run."""
        status_col, is_dsn, sender_class = t.status, t.is_dsn, t.sender_class
        attempts_col, folder_col, created_col = t.attempts, t.folder, t.created_at
        delivered_col, retrieved_col = t.delivered_at, t.retrieved_at
        collateral, self_inflicted = t.collateral_cause, t.self_inflicted_cause
        classes, dsn_status = self.classes, self.dsn_status
        # latencies go to the sketches' buffers directly, checked once per block
        end_to_end, isnan = self.end_to_end.pending.append, math.isnan
        for i, slot in enumerate(slots):
            status = status_col[slot]
            if is_dsn[slot]:
                dsn_status[status] += 1
                continue
            cls = sender_class[slot]
            c = classes.get(cls)
            if c is None:
                c = classes[cls] = ClassFold()
            c.status[status] += 1
            attempts = attempts_col[slot]
            was_deferred = deferred[i] and attempts > 0
            if attempts:
                c.attempts += attempts
                c.remote += 1
                c.remote_attempts += attempts
                if was_deferred:
                    c.remote_deferred += 1
            folder = folder_col[slot]
            created = created_col[slot]
            if status == "delivered":
                c.latency.pending.append(delivered_col[slot] - created)
                if folder == "spam":
                    c.spam += 1
                if was_deferred:
                    c.deferred_delivered += 1
            elif status in FAILED:
                c.reasons.add(t.final_enhanced_code[slot] or "nan", seq[slot])
            retrieved = retrieved_col[slot]
            if not isnan(retrieved):
                end_to_end(retrieved - created)
            if cls != "spam" and (collateral[slot] is not None or self_inflicted[slot] is not None):
                _harm(c, t, slot, status, seq[slot])
        for sketch in (self.end_to_end, *(c.latency for c in classes.values())):
            sketch.bound()


def _harm(c: ClassFold, t: MessageTable, slot: int, status: str, seq: int) -> None:
    """Row ``slot`` of ``t``, legitimate, was hurt by reputation: count it in ``c`` by
    cause and severity."""
    folder = t.folder[slot]
    for cause, harm in (
        (t.collateral_cause[slot], c.collateral),
        (t.self_inflicted_cause[slot], c.self_inflicted),
    ):
        if cause is not None:
            harm.causes.add(cause, seq)
            harm.severity[_severity(status, folder)] += 1


def _severity(status: str, folder: str | None) -> str:
    if status in FAILED:
        return "bounced"
    return "spam_folder" if folder == "spam" else "delayed"


def row_summary(fold: RowFold, counts: dict[str, int]) -> Summary:
    """The summary keys that come from the recipient rows; ``counts`` has ``messages``,
    ``dsn_messages`` and ``backscatter`` (counted as rows were added)."""
    classes = dict(sorted(fold.classes.items()))
    mail = ClassFold()
    legit = ClassFold()
    for cls, c in classes.items():
        mail.merge(c)
        if cls != "spam":
            legit.merge(c)
    total = mail.rows
    status = mail.status
    final = status["delivered"] + status["bounced"] + status["expired"]
    return {
        "messages": counts["messages"],
        "recipients": total,
        "status": dict(status),
        "by_class": {cls: dict(c.status) for cls, c in classes.items()},
        "dsn": {
            "messages": counts["dsn_messages"],
            **fold.dsn_status,
            "backscatter": counts["backscatter"],
        },
        "delivery_rate": status["delivered"] / total if total else None,
        "bounce_rate": (status["bounced"] + status["expired"]) / total if total else None,
        "final_rate": final / total if total else None,
        "deferral_rate": mail.remote_deferred / mail.remote if mail.remote else None,
        "latency_s": merged([c.latency for c in classes.values()]).percentiles(),
        "end_to_end_latency_s": fold.end_to_end.percentiles(),
        "attempts_per_message": mail.attempts / total if total else None,
        "attempts_per_remote_recipient": (
            mail.remote_attempts / mail.remote if mail.remote else None
        ),
        "_classes": {cls: c.outcomes() for cls, c in classes.items()},
        "_legitimate": legit.outcomes(),
        "_collateral": legit.collateral.summary(legit.rows),
        "_self_inflicted": legit.self_inflicted.summary(legit.rows),
        "_max_latency": mail.latency.peak if mail.latency.count else None,
        "_in_queue": status["in_queue"],
    }


class SessionFold:
    """Connections and session waits from the attempt rows (``metrics.session_waits`` and
    ``metrics.server_stats``): each session counted once, though it serves several
    recipients' attempt rows (``streaming.FoldingAttempts`` counts them)."""

    def __init__(self, warmup: float) -> None:
        self.warmup = warmup
        self.connect_time: dict[str, float] = {}
        self.sessions = 0
        self.waited = 0
        self.wait_total = 0.0
        # host -> [connections, refused, sessions, waited, wait total]
        self.servers: dict[str, list[Any]] = {}

    def summary(self) -> Summary:
        n = self.sessions if self.connect_time else 0
        servers: dict[str, Summary] = {}
        for host in sorted(self.servers):
            connections, refused, sessions, waited, total = self.servers[host]
            has = bool(self.connect_time) and sessions > 0
            servers[host] = {
                "connections": connections,
                "refused_rate": refused / connections,
                "mean_wait_s": total / sessions if has else None,
                "p_wait": waited / sessions if has else None,
            }
        return {
            "session_wait_s": {
                "sessions": n,
                "mean": self.wait_total / n if n else None,
                "p_wait": self.waited / n if n else None,
            },
            "servers": servers,
        }
