"""Outcomes over time: what happened to the mail in each hour (or day) of a run, so a run
that does not settle is seen not to, and how long the queue took to drain after an outage.

Analysis of a run's tables, never part of the model. Rows are recipient rows of mail
(DSNs left out); each is counted in the bin where its event happened:

- ``submitted``: created by the sender's client;
- ``delivered``: stored in the final mailbox (``delivered_at``); ``spam_folder``: of
  those, filed as spam;
- ``deferred``: deferred attempts (``attempts.parquet`` rows with outcome ``deferred``,
  at every hop; a 4xx ``passed_on`` to the next host of the same delivery is none) that
  ended in the bin;
- ``bounced``: bounced or expired, at the end of the row's last attempt (its creation if
  it never had one);
- ``collateral``: legitimate rows hurt by others' reputation, by creation time (the mail
  submitted in the bin that paid), and ``collateral_rate`` of the legitimate rows
  submitted in the bin;
- ``unsettled``: rows submitted by the end of the bin and not yet delivered or bounced.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mailnet.units import DAY, HOUR, parse_duration

if TYPE_CHECKING:
    from mailnet.scenario import Scenario

COLUMNS = (
    "submitted",
    "delivered",
    "deferred",
    "bounced",
    "spam_folder",
    "collateral",
    "collateral_rate",
    "unsettled",
)
"""The columns of ``outcomes_over_time`` besides ``start`` and ``end`` (seconds)."""

HOURLY_UP_TO = 3 * DAY
"""Runs up to this long are binned by hour, longer ones by day."""


def bin_width(duration: float) -> float:
    """Seconds per bin for a run of ``duration`` seconds: an hour up to three days, else a day."""
    return HOUR if duration <= HOURLY_UP_TO else DAY


def _final_times(rows: pd.DataFrame, attempts: pd.DataFrame) -> np.ndarray:
    """When each row was settled: ``delivered_at``, or for bounced and expired rows the end
    of their last attempt (their creation without one); NaN while unsettled."""
    last = attempts.groupby(["message_id", attempts["recipient"].astype(str)], observed=True)[
        "ended_at"
    ].max()
    keys = pd.MultiIndex.from_arrays([rows["message_id"], rows["recipient"].astype(str)])
    ended = last.reindex(keys).to_numpy(dtype=float)
    failed = rows["status"].astype(str).isin(["bounced", "expired", "dropped"]).to_numpy()
    created = rows["created_at"].to_numpy(dtype=float)
    failed_at = np.where(np.isnan(ended), created, ended)
    return np.where(failed, failed_at, rows["delivered_at"].to_numpy(dtype=float))


def outcomes_over_time(
    messages: pd.DataFrame, attempts: pd.DataFrame, duration: float, width: float | None = None
) -> pd.DataFrame:
    """One row per bin of ``width`` seconds (``bin_width(duration)`` by default) from 0 to
    ``duration``: ``start``, ``end`` and the ``COLUMNS`` (counts of recipient rows)."""
    width = width or bin_width(duration)
    edges = np.arange(0.0, duration + width, width)
    edges[-1] = max(edges[-1], duration)
    edges = edges[: np.searchsorted(edges, duration, side="left") + 1]
    rows = messages[~messages["is_dsn"]]
    ids = set(rows["message_id"].unique().tolist())
    mail_attempts = attempts[attempts["message_id"].isin(ids)]
    created = rows["created_at"].to_numpy(dtype=float)
    status = rows["status"].astype(str).to_numpy()
    delivered_at = np.where(status == "delivered", rows["delivered_at"].to_numpy(float), np.nan)
    spam = (status == "delivered") & (rows["folder"].astype(str) == "spam").to_numpy()
    final = _final_times(rows, mail_attempts)
    failed = np.isin(status, ["bounced", "expired", "dropped"])
    legitimate = (rows["sender_class"].astype(str) != "spam").to_numpy()
    collateral = legitimate & rows["collateral"].to_numpy(dtype=bool)
    deferred_at = mail_attempts.loc[mail_attempts["outcome"] == "deferred", "ended_at"]

    def per_bin(times: np.ndarray) -> np.ndarray:
        counts, _ = np.histogram(times[np.isfinite(times)], bins=edges)
        return counts

    submitted_legit = per_bin(created[legitimate])
    hit = per_bin(created[collateral])
    settled_by_end = np.searchsorted(np.sort(final[np.isfinite(final)]), edges[1:], "right")
    created_by_end = np.searchsorted(np.sort(created), edges[1:], side="right")
    return pd.DataFrame(
        {
            "start": edges[:-1],
            "end": edges[1:],
            "submitted": per_bin(created),
            "delivered": per_bin(delivered_at),
            "deferred": per_bin(deferred_at.to_numpy(dtype=float)),
            "bounced": per_bin(np.where(failed, final, np.nan)),
            "spam_folder": per_bin(np.where(spam, delivered_at, np.nan)),
            "collateral": hit,
            "collateral_rate": np.divide(
                hit, submitted_legit, out=np.full(hit.shape, np.nan), where=submitted_legit > 0
            ),
            "unsettled": created_by_end - settled_by_end,
        }
    )


@dataclass(frozen=True)
class Settling:
    """How a run's mail settled: the longest delivery latency; the peak of the deferred
    queues (every MTA together) and when they were next empty; the end of the last
    scheduled outage before that; the recipients still in a queue at the end."""

    max_latency_s: float | None
    deferred_peak: int
    deferred_peak_at: float | None
    drained_at: float | None
    outage_ended_at: float | None
    in_queue_at_end: int

    @property
    def drain_after_outage_s(self) -> float | None:
        """Seconds from the end of the last scheduled outage to the empty deferred queue."""
        if self.drained_at is None or self.outage_ended_at is None:
            return None
        return max(0.0, self.drained_at - self.outage_ended_at)


def deferred_total(queues: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(times, levels)``: the deferred queues of every MTA summed, as a step function."""
    deferred = queues[(queues["kind"] == "mta") & (queues["metric"] == "deferred")]
    if deferred.empty:
        return np.zeros(0), np.zeros(0, dtype=int)
    wide = deferred.pivot_table(
        index="time", columns="entity", values="value", aggfunc="last", observed=True
    )
    total = wide.sort_index().ffill().fillna(0).sum(axis=1)
    return total.index.to_numpy(dtype=float), total.to_numpy(dtype=int)


def settling(messages: pd.DataFrame, queues: pd.DataFrame, scenario_toml: str = "") -> Settling:
    """The ``Settling`` of a run from its tables and resolved scenario (for outages)."""
    mail = messages[~messages["is_dsn"]]
    latency = (mail["delivered_at"] - mail["created_at"]).to_numpy(dtype=float)
    latency = latency[np.isfinite(latency)]
    times, levels = deferred_total(queues)
    peak, peak_at, drained = 0, None, None
    if levels.size and levels.max() > 0:
        top = int(np.argmax(levels))
        peak, peak_at = int(levels[top]), float(times[top])
        empty = np.flatnonzero(levels[top:] == 0)
        drained = float(times[top + empty[0]]) if empty.size else None
    return Settling(
        max_latency_s=float(latency.max()) if latency.size else None,
        deferred_peak=peak,
        deferred_peak_at=peak_at,
        drained_at=drained,
        outage_ended_at=_last_outage_end(scenario_toml, before=drained),
        in_queue_at_end=int((mail["status"].astype(str) == "in_queue").sum()),
    )


def with_outages(settled: Settling, scenario: Scenario) -> Settling:
    """``settled`` with the end of the last scheduled outage before its deferred queues
    drained, read from the loaded scenario's servers (as ``settling`` reads them from its
    TOML, which a generated internet makes 14 MB long: seconds to write and parse)."""
    ends = (
        float(window.end) if math.isfinite(window.end) else None
        for server in scenario.servers.values()
        if isinstance(server.outages, list)
        for window in server.outages
    )
    return replace(settled, outage_ended_at=_latest(ends, settled.drained_at))


def _last_outage_end(scenario_toml: str, before: float | None) -> float | None:
    """The latest end of a scheduled outage window (``servers.*.outages`` as a list) at or
    before ``before``; ``None`` if there is none (random outages are not known here)."""
    if before is None or not scenario_toml.strip():
        return None
    raw: dict[str, Any] = tomllib.loads(scenario_toml)
    ends = (
        _seconds(w.get("end"))
        for server in raw.get("servers", {}).values()
        if isinstance(server.get("outages"), list)
        for w in server["outages"]
        if isinstance(w, dict)
    )
    return _latest(ends, before)


def _latest(ends: Iterable[float | None], before: float | None) -> float | None:
    """The latest of ``ends`` (seconds; ``None``: no end known) at or before ``before``."""
    if before is None:
        return None
    return max((e for e in ends if e is not None and e <= before), default=None)


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None
