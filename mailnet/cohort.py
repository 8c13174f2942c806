"""The cohort: mail created in a window after warm-up, followed to the end of the run.

Background traffic goes on during the follow-up, so late deliveries meet realistic load
(output-analysis.md §2). Each recipient row of the cohort ends in one outcome:

- ``delivered``: stored in the recipient's mailbox;
- ``bounced``: refused after it entered its provider's queue (by a receiver, or by the
  MTA itself: no such domain, a loop);
- ``stopped_at_submission``: refused by the provider's own MSA (a suspended sender, the
  outbound spam filter), never queued;
- ``held``: still held by the MSA's rate limit when the run ended;
- ``expired``: its queue lifetime passed;
- ``in_queue``: still queued for another attempt when the run ended.

Delivery latency is the Aalen-Johansen cumulative incidence of ``mailnet.survival``:
delivered rows are events at ``delivered_at - created_at``; bounced, expired and stopped
rows are competing ends at the end of their last attempt (at submission for stopped
mail); held and queued rows are censored at ``end of run - created_at``. Every block
gives the share still queued beside the latency, so a low latency over a cohort that is
mostly still queued reads as what it is.

Functions of a messages frame (the rows of the cohort suffice) and, for the times of
competing ends, the attempts table; no simulation.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np
import pandas as pd

from mailnet.policies.retry import make_retry_policy
from mailnet.scenario import Scenario
from mailnet.scenario.schema import Simulation
from mailnet.sketch import IncidenceBins
from mailnet.survival import CENSORED, DELIVERED, OTHER, Incidence, cumulative_incidence

OUTCOMES = ("delivered", "bounced", "stopped_at_submission", "held", "expired", "in_queue")
"""A cohort row's outcome, in the order summaries list them."""

QUANTILES = (0.5, 0.9, 0.99)
WITHIN = (("1m", 60.0), ("10m", 600.0), ("1h", 3600.0), ("6h", 21600.0), ("1d", 86400.0))
"""The latencies ``P(delivered within t)`` is reported at: always defined, unlike a
quantile the cohort has not reached."""

GROUPS = ("legitimate_remote", "spam_remote", "legitimate_local")
"""The summary blocks: legitimate (ham and bulk) mail to other providers' domains, spam
to other domains, and legitimate mail its own provider delivers locally."""


def queue_lifetime(scenario: Scenario) -> float:
    """The longest queue lifetime of the providers' retry policies (seconds): after it, a
    message created before it has ended one way or another (Postfix: 5 d,
    mail-facts.md §3)."""
    lifetimes = [0.0]
    for provider in scenario.providers.values():
        retry = provider.retry
        spec = retry if isinstance(retry, str) else retry.model_dump(mode="json")
        # a throwaway generator: only Exim's H rules draw, and never while built
        policy = make_retry_policy(spec, provider.retry_params, rng=np.random.default_rng(0))
        lifetimes.append(float(policy.lifetime))
    return max(lifetimes)


def window(simulation: Simulation, lifetime: float) -> tuple[float, float]:
    """``(start, end)`` of the cohort's creation window, in seconds.

    Defaults: from the warm-up to ``duration - lifetime`` (then every cohort message has
    ended by the end of the run and nothing is censored), or to the end of the run when
    that would leave no window; ``cohort_start`` and ``cohort_length`` override them.
    """
    start = simulation.warmup if simulation.cohort_start is None else simulation.cohort_start
    if simulation.cohort_length is not None:
        return start, start + simulation.cohort_length
    end = simulation.duration - lifetime
    return start, end if end > start else simulation.duration


def _text(column: pd.Series) -> np.ndarray:
    """A categorical or text column's values as an object array (no per-value copy): a
    categorical's rows share its categories' objects (NaN where missing), rather than each
    row being turned into text of its own."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = np.append(column.cat.categories.to_numpy(dtype=object), np.nan)
        return labels[column.cat.codes.to_numpy()]  # code -1 (missing): the last
    return np.asarray(column.to_numpy(), dtype=object)


def outcomes(rows: pd.DataFrame) -> np.ndarray:
    """The outcome (one of ``OUTCOMES``) of each non-DSN row."""
    out = _text(rows["status"]).copy()
    queued = rows["released_at"].notna().to_numpy()
    out[(out == "bounced") & ~queued] = "stopped_at_submission"
    out[(out == "in_queue") & ~queued] = "held"
    return out


def end_times(rows: pd.DataFrame, attempts: pd.DataFrame | None) -> np.ndarray:
    """Seconds from creation to each row's end: delivery, or the end of the last attempt
    for a row that bounced or expired (its release, else creation, when it has no
    attempt row or no attempts table is given); NaN for rows still open."""
    created = rows["created_at"].to_numpy(dtype=float)
    end = rows["delivered_at"].to_numpy(dtype=float).copy()
    status = _text(rows["status"])
    failed = (status == "bounced") | (status == "expired") | (status == "dropped")
    if failed.any():
        fallback = rows["released_at"].to_numpy(dtype=float)
        fallback = np.where(np.isnan(fallback), created, fallback)
        last = np.full(len(rows), np.nan)
        if attempts is not None and len(attempts):
            ids = rows["message_id"].to_numpy()[failed]
            mine = attempts[attempts["message_id"].isin(ids)]
            latest = mine.groupby([mine["message_id"], _text(mine["recipient"])], sort=False)[
                "ended_at"
            ].max()
            keys = pd.MultiIndex.from_arrays(
                [rows["message_id"].to_numpy()[failed], _text(rows["recipient"])[failed]]
            )
            last[failed] = latest.reindex(keys).to_numpy(dtype=float)
        end[failed] = np.where(np.isnan(last), fallback, last)[failed]
    return end - created


def follow(rows: pd.DataFrame, attempts: pd.DataFrame | None, horizon: float) -> dict[str, Any]:
    """The block of one group of cohort rows followed to ``horizon`` (the end of the run,
    seconds): outcome counts and shares, the censoring-aware latency quantiles (``None``
    where the incidence never reaches them) and ``P(delivered within t)`` (``None`` past
    the longest follow-up while mail is still queued)."""
    kind = outcomes(rows)
    times = _follow_up(kind, end_times(rows, attempts), rows, horizon)
    return _block(kind, times)


def _follow_up(
    kind: np.ndarray, times: np.ndarray, rows: pd.DataFrame, horizon: float
) -> np.ndarray:
    """``times`` with open rows censored at ``horizon``; round-off can leave an end a
    hair before its creation, so never below 0."""
    open_ = (kind == "held") | (kind == "in_queue")
    times = times.copy()
    times[open_] = horizon - rows["created_at"].to_numpy(dtype=float)[open_]
    return np.maximum(times, 0.0)


def _block(kind: np.ndarray, times: np.ndarray) -> dict[str, Any]:
    counts = {name: int((kind == name).sum()) for name in OUTCOMES}
    open_ = (kind == "held") | (kind == "in_queue")
    events = np.where(open_, CENSORED, np.where(kind == "delivered", DELIVERED, OTHER))
    return _describe(len(kind), counts, cumulative_incidence(times, events))


def _describe(n: int, counts: dict[str, int], incidence: Incidence) -> dict[str, Any]:
    """A block: ``n`` rows, ``counts`` by outcome, ``incidence`` of their delivery."""
    failed = counts["bounced"] + counts["expired"] + counts["stopped_at_submission"]
    return {
        "recipients": n,
        **counts,
        "delivered_share": counts["delivered"] / n if n else None,
        "failed_share": failed / n if n else None,
        "queued_share": (counts["held"] + counts["in_queue"]) / n if n else None,
        "latency_s": {f"p{int(q * 100)}": incidence.quantile(q) if n else None for q in QUANTILES},
        "delivered_within": {label: incidence.within(t) if n else None for label, t in WITHIN},
    }


def groups(mail: pd.DataFrame, scenario: Scenario) -> dict[str, np.ndarray]:
    """Boolean masks of ``GROUPS`` over the non-DSN rows ``mail``: a row is local when
    its recipient's domain is one of its provider's ``local_domains``."""
    provider = _text(mail["provider"])
    domain = _text(mail["recipient_domain"])
    local = np.zeros(len(mail), dtype=bool)
    for name, config in scenario.providers.items():
        local |= (provider == name) & np.isin(domain, list(config.local_domains))
    spam = _text(mail["sender_class"]) == "spam"
    return {
        "legitimate_remote": ~spam & ~local,
        "spam_remote": spam & ~local,
        "legitimate_local": ~spam & local,
    }


def summary_blocks(
    mail: pd.DataFrame, scenario: Scenario, attempts: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The cohort's blocks for the run summary: ``cohort`` (the window, seconds) and one
    block per ``GROUPS`` (see ``follow``), over the non-DSN rows ``mail`` created in the
    window (other rows may be passed; they are left out here)."""
    sim = scenario.simulation
    start, end = window(sim, queue_lifetime(scenario))
    created = mail["created_at"].to_numpy(dtype=float)
    inside = (created >= start) & (created < end)
    cohort = mail[inside]
    kind = outcomes(cohort)
    times = _follow_up(kind, end_times(cohort, attempts), cohort, sim.duration)
    masks = groups(cohort, scenario)
    return {
        "cohort": {"start_s": start, "end_s": end},
        **{name: _block(kind[mask], times[mask]) for name, mask in masks.items()},
    }


EXACT_ROWS = 1 << 16
"""Cohort rows a summary-only run keeps one by one, so that its blocks are those of the
tables; past them it counts every row in bins. Each row takes 9 bytes, and about 130
more while the blocks are computed from the rows at the end (numpy's temporaries of
``_block``): 9 MB at most."""


class CohortFold:
    """The cohort blocks of a summary-only run (``mailnet.streaming``): each cohort row is
    reduced, when it is folded, to its group, outcome and time, exactly as
    ``summary_blocks`` computes them from the tables, so the two agree to the bit.

    Past ``EXACT_ROWS`` rows it counts them instead, those kept so far and every one after:
    by outcome, and by event and time in ``sketch.IncidenceBins`` (0.25 MB). Counts and
    shares stay those of the tables; latency quantiles are then within
    ``sketch.RELATIVE_ACCURACY``, and ``P(delivered within t)`` the same up to rounding
    unless rows censored at the end of the run share a bin (a 1 % range of times) with
    ends. The end of each row's latest attempt comes with its block
    (``streaming.FoldingTable``), so nothing is kept of a row in flight.
    """

    def __init__(self, scenario: Scenario):
        sim = scenario.simulation
        self.start, self.end = window(sim, queue_lifetime(scenario))
        self.horizon = sim.duration
        self._local = {name: set(p.local_domains) for name, p in scenario.providers.items()}
        self._kinds: dict[str, array] = {name: array("b") for name in GROUPS}
        self._times: dict[str, array] = {name: array("d") for name in GROUPS}
        self._room = EXACT_ROWS  # rows still kept one by one
        self._counts: dict[str, list[int]] = {}  # by group and outcome, once counted
        self._bins: dict[str, IncidenceBins] = {}

    @property
    def binned(self) -> bool:
        """Whether the rows are counted in bins (past ``EXACT_ROWS``)."""
        return bool(self._bins)

    def fold_block(self, t: Any, slots: list[int], ended: list[float]) -> None:
        """Fold rows ``slots`` of the messages table ``t``, in that order: rows that can
        no longer change (or are still open at the end of the run). ``ended[i]`` is the
        end of the latest attempt of ``slots[i]`` (NaN: none; ``streaming.FoldingTable``)."""
        start, end, local_of = self.start, self.end, self._local
        created_at = t.created_at
        is_dsn, sender_class, provider, domain = (
            t.is_dsn,
            t.sender_class,
            t.provider,
            t.recipient_domain,
        )
        for i, slot in enumerate(slots):
            last = ended[i]
            created = created_at[slot]
            if is_dsn[slot] or not start <= created < end:
                continue
            # the row's block (``groups``); spam delivered locally is in none
            local = domain[slot] in local_of.get(provider[slot], ())
            if sender_class[slot] != "spam":
                group = "legitimate_local" if local else "legitimate_remote"
            elif local:
                continue
            else:
                group = "spam_remote"
            self._fold_one(t, slot, group, created, last)

    def _fold_one(self, t: Any, slot: int, group: str, created: float, last: float) -> None:
        """Fold row ``slot`` of ``group``, created in the window at ``created``; ``last``:
        the end of its last attempt (NaN: none)."""
        status = t.status[slot]
        released = t.released_at[slot]
        if math.isnan(released):
            status = _NEVER_QUEUED.get(status, status)
        if status == "delivered":
            time = t.delivered_at[slot] - created
        elif status in ("held", "in_queue"):
            time = self.horizon - created
        else:  # a competing end: bounced, expired, dropped or stopped at submission
            fallback = created if math.isnan(released) else released
            time = (fallback if math.isnan(last) else last) - created
        code, time = _KIND_CODES[status], max(time, 0.0)
        if self._bins:
            self._counts[group][code] += 1
            self._bins[group].add(_EVENTS[code], time)
            return
        self._kinds[group].append(code)
        self._times[group].append(time)
        self._room -= 1
        if not self._room:
            self._count_in_bins()

    def _count_in_bins(self) -> None:
        """Count the rows kept so far, and from now on every row, in bins."""
        anchors = tuple(t for _, t in WITHIN)
        for name in GROUPS:
            kinds = np.frombuffer(self._kinds[name], dtype=np.int8)
            counts = np.bincount(kinds, minlength=len(_KIND_NAMES))
            self._counts[name] = [int(n) for n in counts]
            bins = self._bins[name] = IncidenceBins(anchors)
            bins.add_many(np.asarray(_EVENTS)[kinds], np.frombuffer(self._times[name]))
            self._kinds[name], self._times[name] = array("b"), array("d")

    def blocks(self) -> dict[str, Any]:
        """The summary's cohort blocks (``summary_blocks``'s keys and values)."""
        blocks: dict[str, Any] = {"cohort": {"start_s": self.start, "end_s": self.end}}
        names = np.array(_KIND_NAMES, dtype=object)
        for name in GROUPS:
            if not self._bins:
                kinds = names[np.frombuffer(self._kinds[name], dtype=np.int8)]
                blocks[name] = _block(kinds, np.frombuffer(self._times[name], dtype=float))
                continue
            counts = self._counts[name]
            by_outcome = {kind: counts[_KIND_CODES[kind]] for kind in OUTCOMES}
            blocks[name] = _describe(sum(counts), by_outcome, self._bins[name].incidence())
        return blocks


_KIND_NAMES = (*OUTCOMES, "dropped")
_NEVER_QUEUED = {"bounced": "stopped_at_submission", "in_queue": "held"}
"""A status of a row its MSA never released, as ``outcomes`` names it."""
_KIND_CODES = {name: i for i, name in enumerate(_KIND_NAMES)}
_EVENTS = tuple(
    {"delivered": DELIVERED, "held": CENSORED, "in_queue": CENSORED}.get(name, OTHER)
    for name in _KIND_NAMES
)
"""The incidence's event code of each outcome (by its code): open rows are censored."""
