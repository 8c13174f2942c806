"""Statistics from the recorded tables: the model records events, this computes.

``summarize`` gives one run's summary: counts by status and sender class, delivery and
bounce rates, latency percentiles, attempts per message, time-averaged queue lengths
after warm-up and the mean wait for an SMTP session. Pure pandas/numpy, no simulation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mailnet import cohort

if TYPE_CHECKING:
    from mailnet.model.world import World
    from mailnet.scenario import Scenario

QUANTILES = (0.5, 0.9, 0.99)

Summary = dict[str, Any]
"""A JSON-ready mapping; its keys, flattened, are declared in ``mailnet.metric_catalog``."""


def _percentiles(values: np.ndarray) -> dict[str, float | int | None]:
    values = values[np.isfinite(values)]
    out: dict[str, float | int | None] = {
        "count": int(values.size),
        "mean": float(values.mean()) if values.size else None,
    }
    # the three at once: one partition of the values, the same numbers as one call each
    found = np.quantile(values, QUANTILES) if values.size else [None] * len(QUANTILES)
    for q, value in zip(QUANTILES, found, strict=True):
        out[f"p{int(q * 100)}"] = None if value is None else float(value)
    return out


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in frame["status"].cat.categories}


def time_average(times: np.ndarray, values: np.ndarray, start: float, end: float) -> float:
    """Time-weighted mean over ``[start, end)`` of a step function that takes ``values[i]``
    from ``times[i]`` on (value 0 before the first change; several changes at one instant
    keep the last)."""
    if end <= start:
        return math.nan
    if times.size == 0:
        return 0.0
    order = np.argsort(times, kind="stable")
    t = times[order]
    v = values[order].astype(float)
    # the level in force at `start`: the last change at or before it (0 if none)
    i0 = np.searchsorted(t, start, side="right")
    level0 = v[i0 - 1] if i0 > 0 else 0.0
    inside = (t > start) & (t < end)
    tt = np.concatenate(([start], t[inside], [end]))
    vv = np.concatenate(([level0], v[inside]))
    return float(np.sum(vv * np.diff(tt)) / (end - start))


def queue_averages(queues: pd.DataFrame, start: float, end: float) -> dict[str, float]:
    """``{"mta:isp:deferred": mean, ...}``: time-averaged level of every series, in the
    order of ``groupby(["kind", "entity", "metric"], sort=True)``."""
    out: dict[str, float] = {}
    if queues.empty:
        return out
    # grouped with numpy, as groupby groups them (each group's rows in table order), at a
    # fraction of pandas' cost over a table of a million changes
    columns = [_sorted_codes(queues[c]) for c in ("kind", "entity", "metric")]
    key = np.zeros(len(queues), dtype=np.int64)
    named = np.ones(len(queues), dtype=bool)  # groupby leaves out rows with a missing label
    for codes, uniques in columns:
        key = key * (len(uniques) + 1) + codes
        named &= codes >= 0
    # numpy sorts 16-bit keys by radix, nine times faster than 64-bit ones: the same order
    narrow = key.min() >= 0 and key.max() < 1 << 16  # the table is not empty
    order = np.argsort(key.astype(np.uint16) if narrow else key, kind="stable")
    order = order[named[order]]
    key = key[order]
    if not len(key):
        return out
    times, values = queues["time"].to_numpy()[order], queues["value"].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    for lo, hi in zip([0, *bounds], [*bounds, len(key)], strict=True):
        row = order[lo]  # any row of the group names it
        kind, entity, metric = (uniques[codes[row]] for codes, uniques in columns)
        out[f"{kind}:{entity}:{metric}"] = time_average(times[lo:hi], values[lo:hi], start, end)
    return out


def _sorted_codes(column: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``column`` in the order ``groupby(sort=True, observed=True)`` sorts it: a
    categorical's category order, otherwise sorted values."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64), list(column.cat.categories)
    codes, uniques = pd.factorize(column, sort=True)
    return codes.astype(np.int64), list(uniques)


def session_waits(attempts: pd.DataFrame, connect_time: dict[str, float]) -> pd.Series:
    """Seconds each attempt that got a session waited in the server's backlog."""
    got = attempts[attempts["session_at"].notna()]
    # one session serves every recipient of the delivery: count each session once
    return _waits(got[~got.duplicated(CONNECTION)], connect_time)


CONNECTION = ["message_id", "hop", "mx_host", "started_at"]
"""The attempts columns that tell one connection from another: a connection's rows (one
per recipient) share them."""


def _waits(sessions: pd.DataFrame, connect_time: dict[str, float]) -> pd.Series:
    """``session_waits`` of attempt rows that are one per session already."""
    waits = (
        sessions["session_at"]
        - sessions["started_at"]
        - per_host(sessions["mx_host"], connect_time)
    )
    # float round-off of (t + set-up) - t - set-up is not a wait
    return waits.where(waits > 1e-9, 0.0)


def per_host(hosts: pd.Series, values: dict[str, float]) -> np.ndarray:
    """``values[host]`` for each of ``hosts`` (NaN where it has none), looked up once per
    category of a categorical column: mapping each row's text cost most of the summary's
    session waits."""
    if isinstance(hosts.dtype, pd.CategoricalDtype):
        categories = [values.get(str(c), math.nan) for c in hosts.cat.categories]
        table = np.array([*categories, math.nan], dtype=np.float64)  # code -1: the last
        return table[hosts.cat.codes.to_numpy()]
    return hosts.astype(str).map(values).astype(float).to_numpy()


class Deferrals:
    """The (message, recipient) pairs with at least one delivery that ended in a deferral
    (with a connection, or without one: suspended or skipped), found once in the attempts
    table and then counted among any group of recipient rows. A 4xx at a host that passed
    the recipient on to the next host of the same delivery (``passed_on``) is no
    deferral."""

    def __init__(self, attempts: pd.DataFrame):
        deferred = attempts["outcome"].isin(("deferred", "suspended", "skipped")).to_numpy()
        self._hit = attempts.loc[deferred, ["message_id", "recipient"]]
        self._categories: pd.Index | None = None  # the rows' recipient categories ...
        self._keys = np.empty(0, dtype=np.int64)  # ... and the sorted keys made for them

    def count(self, rows: pd.DataFrame) -> int:
        """How many of ``rows`` (message, recipient) were ever deferred."""
        hit = self._hit
        if hit.empty or rows.empty:
            return 0
        theirs, ours = hit["recipient"], rows["recipient"]
        if not (
            isinstance(theirs.dtype, pd.CategoricalDtype)
            and isinstance(ours.dtype, pd.CategoricalDtype)
        ):
            hits = pd.MultiIndex.from_arrays([hit["message_id"], theirs.astype(str)]).unique()
            rows_keys = pd.MultiIndex.from_arrays([rows["message_id"], ours.astype(str)])
            return int(rows_keys.isin(hits).sum())
        # (message, recipient) as one integer: the message id times the number of our
        # recipients' categories plus the recipient's code among them (-1: none of ours);
        # the groups of one summary share their categories, so the keys are made once
        size = len(ours.cat.categories) + 1
        if self._categories is None or not self._categories.equals(ours.cat.categories):
            self._categories = ours.cat.categories
            translate = ours.cat.categories.get_indexer(theirs.cat.categories)
            codes = theirs.cat.codes.to_numpy()
            their_codes = np.where(codes < 0, -1, translate[codes])
            keys = hit["message_id"].to_numpy(np.int64) * size + their_codes
            self._keys = np.unique(keys[their_codes >= 0])
        keys = self._keys
        if not keys.size:
            return 0
        mine = rows["message_id"].to_numpy(np.int64) * size + ours.cat.codes.to_numpy()
        at = np.minimum(np.searchsorted(keys, mine), keys.size - 1)
        return int((keys[at] == mine).sum())


def class_outcomes(rows: pd.DataFrame, deferrals: Deferrals) -> Summary:
    """Outcomes of one group of recipient rows (e.g. one sender class).

    ``inbox``/``spam_folder``: delivered rows by folder; ``deferred_then_delivered``:
    delivered after at least one deferral; ``bounced_by_reason``: bounced or expired rows
    by final enhanced status code; rates are fractions of the rows. ``deferrals``: those
    of the run's attempts table.
    """
    n = len(rows)
    delivered = rows[rows["status"] == "delivered"]
    failed = rows[rows["status"].isin(["bounced", "expired"])]
    latency = (delivered["delivered_at"] - delivered["created_at"]).to_numpy()
    remote = rows[rows["attempts"] > 0]
    deferred_delivered = deferrals.count(delivered[delivered["attempts"] > 0])
    spam = int((delivered["folder"] == "spam").sum())
    reasons = failed["final_enhanced_code"].astype(str).value_counts()
    return {
        "recipients": n,
        "delivered": len(delivered),
        "inbox": len(delivered) - spam,
        "spam_folder": spam,
        "deferred_then_delivered": deferred_delivered,
        "bounced": len(failed),
        "bounced_by_reason": {code: int(k) for code, k in reasons.items()},
        "bounce_rate": len(failed) / n if n else None,
        "deferral_rate": deferrals.count(remote) / len(remote) if len(remote) else None,
        "spam_folder_rate": spam / len(delivered) if len(delivered) else None,
        "latency_s": _percentiles(latency),
    }


def backscatter(dsn: pd.DataFrame, scenario: Scenario) -> int:
    """DSNs addressed to no provider's user (a domain no provider serves): what a forged
    envelope sender earns an innocent third party, e.g. the late bounces of a backup MX
    that accepts every address of its domain (mail-facts.md §11)."""
    served = {domain for p in scenario.providers.values() for domain in p.local_domains}
    astray = ~dsn["recipient_domain"].astype(str).isin(served)
    return int(dsn.loc[astray, "message_id"].nunique())


def collateral(rows: pd.DataFrame, kind: str = "collateral") -> Summary:
    """Legitimate rows hurt by a reputation other senders earned (``kind`` collateral) or
    their own sender group earned (``self_inflicted``): counts by cause and by severity
    (``delayed``, ``spam_folder``, ``bounced``: bounced or expired)."""
    hit = rows[rows[kind]]
    causes = hit[f"{kind}_cause"].astype(str).value_counts()
    severity = hit[f"{kind}_severity"].astype(str)
    return {
        "recipients": len(hit),
        "rate": len(hit) / len(rows) if len(rows) else None,
        "by_cause": {cause: int(k) for cause, k in causes.items()},
        "delayed": int((severity == "delayed").sum()),
        "bounced": int((severity == "bounced").sum()),
        "spam_folder": int((severity == "spam_folder").sum()),
    }


SUMMARY_COLUMNS = frozenset(
    (
        "message_id",
        "recipient",
        "sender_class",
        "provider",
        "recipient_domain",
        "is_dsn",
        "created_at",
        "released_at",
        "delivered_at",
        "retrieved_at",
        "status",
        "attempts",
        "final_enhanced_code",
        "folder",
        "collateral",
        "collateral_cause",
        "collateral_severity",
        "self_inflicted",
        "self_inflicted_cause",
        "self_inflicted_severity",
    )
)
"""The messages table's columns ``summarize`` reads (and ``cohort.summary_blocks``)."""


def summarize(
    messages: pd.DataFrame,
    attempts: pd.DataFrame,
    queues: pd.DataFrame,
    scenario: Scenario,
    world: World | None = None,
    *,
    listings: pd.DataFrame | None = None,
) -> Summary:
    """The run summary (JSON-ready). Rates are fractions of non-DSN recipient rows."""
    sim = scenario.simulation
    # every subset below copies the columns it keeps: keep only those read here
    messages = messages[[c for c in messages.columns if c in SUMMARY_COLUMNS]]
    mail = messages[~messages["is_dsn"]]
    dsn = messages[messages["is_dsn"]]
    total = len(mail)
    counts = _counts(mail)
    by_class = {cls: _counts(group) for cls, group in mail.groupby("sender_class", observed=True)}
    delivered = mail[mail["status"] == "delivered"]
    latency = (delivered["delivered_at"] - delivered["created_at"]).to_numpy()
    retrieved = mail[mail["retrieved_at"].notna()]
    end_to_end = (retrieved["retrieved_at"] - retrieved["created_at"]).to_numpy()
    remote = mail[mail["attempts"] > 0]
    deferrals = Deferrals(attempts)
    ever_deferred = deferrals.count(remote)
    connect: dict[str, float] = {}
    if world is not None:
        connect = {name: s.connect_time for name, s in world.servers.items()}
    waits = session_waits(attempts, connect) if connect else pd.Series(dtype=float)
    sessions = int(waits.size)
    final = counts["delivered"] + counts["bounced"] + counts["expired"]
    suspended = int((attempts["outcome"] == "suspended").sum())
    skipped = int((attempts["outcome"] == "skipped").sum())
    return {
        "messages": int(mail["message_id"].nunique()),
        "recipients": total,
        "status": counts,
        "by_class": by_class,
        "dsn": {
            "messages": int(dsn["message_id"].nunique()),
            **_counts(dsn),
            "backscatter": backscatter(dsn, scenario),
        },
        "delivery_rate": counts["delivered"] / total if total else None,
        "bounce_rate": (counts["bounced"] + counts["expired"]) / total if total else None,
        "final_rate": final / total if total else None,
        "deferral_rate": ever_deferred / len(remote) if len(remote) else None,
        "latency_s": _percentiles(latency),
        "end_to_end_latency_s": _percentiles(end_to_end),
        "attempts_per_message": float(mail["attempts"].mean()) if total else None,
        "attempts_per_remote_recipient": float(remote["attempts"].mean()) if len(remote) else None,
        "attempts": len(attempts) - suspended - skipped,
        "suspended_attempts": suspended,
        "skipped_attempts": skipped,
        "session_wait_s": {
            "sessions": sessions,
            "mean": float(waits.mean()) if sessions else None,
            "p_wait": float((waits > 1e-9).mean()) if sessions else None,
        },
        "queue_time_average": queue_averages(queues, sim.warmup, sim.duration),
        "servers": server_stats(attempts, connect, sim.warmup),
        "classes": {
            cls: class_outcomes(group, deferrals)
            for cls, group in mail.groupby("sender_class", observed=True)
        },
        "legitimate": class_outcomes(mail[mail["sender_class"] != "spam"], deferrals),
        "collateral": collateral(mail[mail["sender_class"] != "spam"]),
        "self_inflicted": collateral(mail[mail["sender_class"] != "spam"], "self_inflicted"),
        "listings": listing_counts(listings),
        # legitimate remote mail apart from spam and local delivery, with latency that
        # counts the mail still queued (a function of the cohort's rows alone)
        **cohort.summary_blocks(mail, scenario, attempts),
        "warmup_s": sim.warmup,
        "duration_s": sim.duration,
    }


def server_stats(
    attempts: pd.DataFrame, connect_time: dict[str, float], warmup: float
) -> dict[str, Summary]:
    """Per MX host, over connections opened after ``warmup``: how many, the share refused
    for a full backlog (421 4.3.2, Erlang B's blocking), and the mean wait for a session
    and the share that waited (Erlang C)."""
    a = attempts[(attempts["started_at"] >= warmup) & attempts["mx_host"].notna()]
    # one connection serves every recipient of a delivery: count each once
    a = a.drop_duplicates(CONNECTION)
    out: dict[str, Summary] = {}
    hosts = a["mx_host"]  # grouped by its categories where it has them, not its texts
    # the waits of every host at once: per host, mapping a category of thousands of hosts
    # costs as much as the whole table
    if connect_time:
        waits_all = _waits(a[a["session_at"].notna()], connect_time)
    else:
        waits_all = pd.Series(dtype=float)
    by_host = {
        str(host): waits
        for host, waits in waits_all.groupby(hosts.loc[waits_all.index], observed=True, sort=False)
    }
    empty = pd.Series(dtype=float)
    for host, group in a.groupby(hosts, observed=True, sort=False):
        waits = by_host.get(str(host), empty)
        out[str(host)] = {
            "connections": len(group),
            "refused_rate": float((group["enhanced_code"] == "4.3.2").mean()),
            "mean_wait_s": float(waits.mean()) if len(waits) else None,
            "p_wait": float((waits > 1e-9).mean()) if len(waits) else None,
        }
    return dict(sorted(out.items()))  # by name, whatever the order of the categories


def listing_counts(listings: pd.DataFrame | None) -> dict[str, int]:
    if listings is None or listings.empty:
        return {"total": 0}
    counts = listings.groupby(["list", "scope"], observed=True).size()
    return {
        "total": len(listings),
        **{
            f"{name}:{scope}": int(k) for (name, scope), k in zip(counts.index, counts, strict=True)
        },
    }


def flatten(summary: Summary, prefix: str = "") -> dict[str, Any]:
    """``{"latency_s": {"p50": 1}}`` -> ``{"latency_s.p50": 1}`` for tables of runs."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
