"""Latency when not all mail is delivered yet: Kaplan-Meier and the cumulative incidence
of delivery (Aalen-Johansen), on plain arrays of times and event codes.

Each message (row) has a time since it was created and an event code: ``DELIVERED`` (the
event of interest), ``OTHER`` (a competing end: bounced, expired, refused at submission)
or ``CENSORED`` (still queued or held when the run ended; the time is then
``end - created``). A competing end is not censoring: bounced mail will never be
delivered, and treating it as censored would describe a world without bounces
(output-analysis.md §2).

The estimand is unconditional: ``F(t) = P(delivered within t)``, the Aalen-Johansen
cumulative incidence ``F(t) = sum_{t_i <= t} S(t_i-) d_i / n_i`` with ``S`` the
Kaplan-Meier survival of any end, ``d_i`` the deliveries at ``t_i`` and ``n_i`` the
rows at risk just before (Aalen & Johansen 1978). Without censoring it is the share of
rows delivered by ``t``. A latency quantile ``p`` is the first time ``F`` reaches ``p``,
and is undefined (``None``) where ``F`` never does: a p90 when only 85 % of the mail is
ever delivered, or when too much is still queued to tell. Its variance is the delta
method's (Greenwood-type, Marubini & Valsecchi 1995, §10.2); these pointwise bands treat
rows as independent, which rows of one run are not: across runs, take one value per run
(output-analysis.md §1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CENSORED = 0
DELIVERED = 1
OTHER = 2
"""Event codes: still queued at the end, delivered, any other end (a competing event)."""

_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Incidence:
    """The cumulative incidence of delivery, a right-continuous step function.

    ``times``: the distinct times of any end (ascending, seconds); ``incidence[i]``:
    ``F(times[i])``; ``variance[i]``: its delta-method variance; ``at_risk[i]``: rows
    at risk just before ``times[i]``; the counts are rows by event code.
    """

    times: np.ndarray
    incidence: np.ndarray
    variance: np.ndarray
    at_risk: np.ndarray
    delivered: int
    other: int
    censored: int
    follow_up: float = 0.0
    """The longest time of any row, censored or not: beyond it ``F`` is unknown unless
    every row has ended."""

    @property
    def rows(self) -> int:
        return self.delivered + self.other + self.censored

    @property
    def final(self) -> float:
        """``F`` after the last end: the share delivered by the end of follow-up."""
        return float(self.incidence[-1]) if self.incidence.size else 0.0

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """``F(t)``, ``P(delivered within t)`` (0 before the first end)."""
        i = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right")
        padded = np.concatenate(([0.0], self.incidence))
        return padded[i]

    def within(self, t: float) -> float | None:
        """``P(delivered within t)``, or ``None`` past the follow-up while some row is
        still open (censored): the estimate would be a lower bound there."""
        if self.censored and t > self.follow_up:
            return None
        return float(self.at(t))

    def quantile(self, p: float) -> float | None:
        """The first time ``F`` reaches ``p`` (``0 < p <= 1``), or ``None`` if it never
        does within follow-up."""
        hit = np.flatnonzero(self.incidence >= p - _TOLERANCE)
        return float(self.times[hit[0]]) if hit.size else None

    def band(self, t: float, level: float = 0.95) -> tuple[float, float]:
        """Pointwise ``level`` normal interval of ``F(t)`` from the delta-method
        variance, clipped to [0, 1]."""
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return 0.0, 0.0
        from scipy import stats  # noqa: PLC0415 (a run's summary never needs SciPy)

        z = float(stats.norm.ppf(0.5 + level / 2))
        half = z * math.sqrt(max(float(self.variance[i]), 0.0))
        f = float(self.incidence[i])
        return max(0.0, f - half), min(1.0, f + half)


def _tallies(times: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct end times with deliveries, all ends and rows at risk just before each."""
    t = np.asarray(times, dtype=float)
    e = np.asarray(events)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError("times and events must be 1-d arrays of the same length")
    if t.size and (not np.isfinite(t).all() or t.min() < 0):
        raise ValueError("times must be finite and non-negative")
    if not np.isin(e, (CENSORED, DELIVERED, OTHER)).all():
        raise ValueError("event codes must be 0 (censored), 1 (delivered) or 2 (other)")
    order = np.argsort(t, kind="stable")
    t, e = t[order], e[order]
    ends = e != CENSORED
    grid, first = np.unique(t, return_index=True)
    # rows at risk just before each distinct time: those with time >= it
    at_risk = t.size - first
    d_all = np.add.reduceat(ends.astype(np.int64), first) if t.size else np.zeros(0, np.int64)
    d_del = (
        np.add.reduceat((e == DELIVERED).astype(np.int64), first)
        if t.size
        else np.zeros(0, np.int64)
    )
    keep = d_all > 0
    return grid[keep], d_del[keep], d_all[keep], at_risk[keep]


def kaplan_meier(times: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(times, S)``: the Kaplan-Meier survival of the event ``events != CENSORED``
    (Kaplan & Meier 1958), just after each distinct end time."""
    grid, _, d_all, n = _tallies(times, events)
    return grid, np.cumprod(1.0 - d_all / n)


def cumulative_incidence(times: np.ndarray, events: np.ndarray) -> Incidence:
    """The Aalen-Johansen cumulative incidence of ``DELIVERED`` with ``OTHER`` competing
    and ``CENSORED`` right-censored; see the module docstring. O(n log n)."""
    e = np.asarray(events)
    grid, d1, d, n = _tallies(times, e)
    return incidence_of_tallies(
        grid,
        d1,
        d,
        n,
        counts=(int((e == DELIVERED).sum()), int((e == OTHER).sum()), int((e == CENSORED).sum())),
        follow_up=float(np.max(times)) if len(e) else 0.0,
    )


def incidence_of_tallies(
    grid: np.ndarray,
    d1: np.ndarray,
    d: np.ndarray,
    at_risk: np.ndarray,
    *,
    counts: tuple[int, int, int],
    follow_up: float,
) -> Incidence:
    """The cumulative incidence from its tallies: at each end time of ``grid``
    (ascending), ``d1`` deliveries among ``d`` ends and ``at_risk`` rows at risk just
    before; ``counts``: rows delivered, ended otherwise and censored."""
    n = at_risk.astype(float)
    survival = np.cumprod(1.0 - d / n)
    before = np.concatenate(([1.0], survival[:-1]))  # S(t_i-)
    jumps = before * d1 / n
    f = np.cumsum(jumps)
    # delta-method variance, expanded so that every sum over t_j <= t is a running sum:
    # sum (F(t)-F_j)^2 a_j + sum S_j-^2 d1 (n-d1)/n^3 - 2 sum (F(t)-F_j) S_j- d1/n^2
    # with a_j = d/(n(n-d)), taken as 0 where n = d (nobody is left after t_j, and the
    # factor F(t)-F_j is 0 at t_j itself)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > d, d / (n * (n - d)), 0.0)
    b = before * d1 / n**2
    c = before * b * (n - d1) / n
    variance = (
        f**2 * np.cumsum(a)
        - 2 * f * np.cumsum(f * a)
        + np.cumsum(f**2 * a)
        + np.cumsum(c)
        - 2 * (f * np.cumsum(b) - np.cumsum(f * b))
    )
    return Incidence(
        times=grid,
        incidence=f,
        variance=np.maximum(variance, 0.0),
        at_risk=n.astype(np.int64),
        delivered=counts[0],
        other=counts[1],
        censored=counts[2],
        follow_up=follow_up,
    )
