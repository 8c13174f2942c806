"""Which grid point is best: indifference-zone ranking and selection.

``sweep --select-best METRIC --indifference D`` replicates until one point can be called
the best with probability of correct selection (PCS) at least ``--pcs`` whenever the best
point's mean beats every other by ``D`` or more (in METRIC's units); when the top means
are closer than ``D``, the procedure promises nothing about which of them it picks
(output-analysis.md §4; Kim & Nelson 2006). Observations are assumed normal: a per-run
mean of many messages usually is; a per-run count of rare events is not.

Two procedures:

- ``kn`` (Kim & Nelson 2001), fully sequential, the default: every point gets ``n0``
  replications; then, stage by stage in replication order, a point whose mean falls
  below another's by more than ``W_il(r) = max(0, (D / 2r)(h^2 S_il^2 / D^2 - r))`` is
  eliminated, with ``S_il^2`` the first-stage variance of the *paired differences* and
  ``h^2 = 2 eta (n0 - 1)``, ``eta = ((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) / 2``.
  It is valid under the sweep's common random numbers and uses them: positively
  correlated points need far fewer runs.
- ``rinott`` (Rinott 1978), two-stage: point i gets ``N_i = max(n0, ceil((h S_i / D)^2))``
  replications, ``h`` Rinott's constant, and the largest mean wins. It assumes the
  points are independent; under common random numbers it stays conservative but wastes
  runs (output-analysis.md §4).

The sweep adds replications in batches (about 10 % more per survivor, as ``--precision``
does); KN's screening is applied stage by stage over the replications that are in, so a
batch changes how many runs are made, never the decision. A failed run, or a run where
METRIC is undefined, is left out of its point's mean and of its pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from mailnet.sweep.backends import SweepError

PROCEDURES = ("kn", "rinott")
MIN_FIRST_STAGE = 10
"""``n0``: replications every point gets first (output-analysis.md §4: at least 10)."""
GROWTH = 0.1
_LAGUERRE_NODES = 64


@dataclass(frozen=True)
class Selection:
    """What to select: the best ``metric`` (largest, or smallest with ``minimize``) with
    an indifference zone ``delta`` (the metric's units) and PCS ``pcs``."""

    metric: str
    delta: float
    pcs: float = 0.95
    minimize: bool = False
    procedure: str = "kn"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta) and self.delta > 0):
            raise SweepError(f"--indifference must be a positive number, not {self.delta}")
        if not 0.5 < self.pcs < 1:
            raise SweepError(f"--pcs must be between 0.5 and 1 (exclusive), not {self.pcs}")
        if self.procedure not in PROCEDURES:
            raise SweepError(
                f"--procedure must be one of {', '.join(PROCEDURES)}, not {self.procedure!r}"
            )


# ------------------------------------------------------------------ constants


def kn_constants(k: int, n0: int, pcs: float) -> tuple[float, float]:
    """``(eta, h^2)`` of Kim & Nelson's procedure for ``k`` systems (output-analysis.md
    §4; k = 5, n0 = 10, PCS 0.95 gives 0.63497, 11.4294)."""
    alpha = 1 - pcs
    eta = 0.5 * ((2 * alpha / (k - 1)) ** (-2 / (n0 - 1)) - 1)
    return eta, 2 * eta * (n0 - 1)


@cache
def rinott_h(k: int, pcs: float, n0: int) -> float:
    """Rinott's constant: the ``h`` solving
    ``E_Y[ E_X[ Phi(h / sqrt((n0-1)(1/X + 1/Y))) ]^(k-1) ] = pcs`` with X, Y independent
    chi-square with ``n0 - 1`` degrees of freedom, by 64-node Gauss-Laguerre quadrature
    and Brent's method (Bechhofer, Santner & Goldsman 1995, table values: h(10, 0.975,
    51) = 4.045; h(2, 0.95, 10) = 2.614)."""
    if k < 2 or n0 < 2:
        raise ValueError("Rinott's h needs at least 2 systems and 2 first-stage runs")
    nu = n0 - 1
    u, w = special.roots_genlaguerre(_LAGUERRE_NODES, nu / 2 - 1)
    x = 2 * u  # chi-square(nu) density in u = x/2 is u^(nu/2-1) e^-u / Gamma(nu/2)
    weights = w / special.gamma(nu / 2)
    inverse = 1 / x[:, None] + 1 / x[None, :]

    def gap(h: float) -> float:
        inner = stats.norm.cdf(h / np.sqrt(nu * inverse)) @ weights  # over X, per Y
        return float(weights @ inner ** (k - 1)) - pcs

    return float(optimize.brentq(gap, 1e-6, 50.0, xtol=1e-10))


# ------------------------------------------------------------------ procedures


@dataclass
class Outcome:
    """Where a selection stands: the ``selected`` point (``None`` while undecided), the
    replications each point should have next (``counts``), the stage at which each
    eliminated point left (``eliminated_at``; KN only), and the procedure's constants."""

    selected: int | None
    counts: dict[int, int]
    eliminated_at: dict[int, int] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    status: str = "running"


def kn_screen(
    values: np.ndarray,
    available: np.ndarray,
    delta: float,
    pcs: float,
    n0: int,
) -> tuple[list[int], dict[int, int], bool]:
    """Kim & Nelson's screening over the data in, for larger-is-better ``values`` (one row
    per system, one column per replication, NaN where missing or failed; ``available[i]``
    replications of system i are in). Returns the survivors, the stage at which each
    eliminated system left, and whether the screening is over: one survivor, or every
    pair past its bound (then the means decide); else the survivors need more runs."""
    k = values.shape[0]
    _, h2 = kn_constants(k, n0, pcs)
    first = values[:, :n0]
    diffs = first[:, None, :] - first[None, :, :]
    with np.errstate(invalid="ignore"):
        s2 = np.nanvar(diffs, axis=2, ddof=1)  # S_il^2 of the paired differences
    # running sums and counts of the defined values: the stage-r means in O(1)
    sums = np.cumsum(np.nan_to_num(values), axis=1)
    seen = np.cumsum(~np.isnan(values), axis=1)
    alive = list(range(k))
    eliminated: dict[int, int] = {}
    r = n0
    while len(alive) > 1:
        if any(available[i] < r for i in alive):
            return alive, eliminated, False
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums[alive, r - 1] / seen[alive, r - 1]
        w = np.maximum(0.0, delta / (2 * r) * (h2 * s2[np.ix_(alive, alive)] / delta**2 - r))
        # i survives if mean_i >= mean_l - W_il for every other survivor l
        beaten = (means[:, None] < means[None, :] - np.nan_to_num(w)).any(axis=1)
        eliminated.update({i: r for i, out in zip(alive, beaten, strict=True) if out})
        alive = [i for i, out in zip(alive, beaten, strict=True) if not out]
        if not (w > 0).any():
            break  # past every pair's bound: the means have decided; equal ones tie
        r += 1
    return alive, eliminated, True


def decide(
    values: np.ndarray,
    counts: dict[int, int],
    selection: Selection,
    n0: int,
    maximum: int,
) -> Outcome:
    """The next step of ``selection`` given ``values`` (a row per point, in the order of
    ``sorted(counts)``, a column per replication, NaN where missing) and the
    replications planned per point."""
    points = sorted(counts)
    data = -values if selection.minimize else values
    if selection.procedure == "rinott":
        return _rinott(data, counts, selection, n0, maximum)
    available = np.array([counts[p] for p in points])
    alive, out, over = kn_screen(data, available, selection.delta, selection.pcs, n0)
    eta, h2 = kn_constants(len(points), n0, selection.pcs)
    eliminated = {points[i]: r for i, r in out.items()}
    constants = {"eta": eta, "h2": h2}
    survivors = [points[i] for i in alive]
    last = max(counts[p] for p in survivors)
    if not over and last < maximum:
        grown = min(maximum, last + max(1, math.ceil(GROWTH * last)))
        return Outcome(None, {**counts, **dict.fromkeys(survivors, grown)}, eliminated, constants)
    status = "selected" if over else "maximum reached"
    return Outcome(_best_mean(data, alive, points), dict(counts), eliminated, constants, status)


def _rinott(
    data: np.ndarray,
    counts: dict[int, int],
    selection: Selection,
    n0: int,
    maximum: int,
) -> Outcome:
    points = sorted(counts)
    h = rinott_h(len(points), selection.pcs, n0)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(data[:, :n0], axis=1, ddof=1)
    need = np.maximum(n0, np.ceil((h * np.nan_to_num(sd) / selection.delta) ** 2))
    wanted = {p: int(min(maximum, n)) for p, n in zip(points, need, strict=True)}
    constants = {"h": h}
    if any(counts[p] < wanted[p] for p in points):
        return Outcome(None, {p: max(counts[p], wanted[p]) for p in points}, {}, constants)
    best = _best_mean(data, list(range(len(points))), points)
    capped = any(n > maximum for n in need)
    return Outcome(best, dict(counts), {}, constants, "maximum reached" if capped else "selected")


def _best_mean(data: np.ndarray, rows: list[int], points: list[int]) -> int:
    """The point with the largest mean over its runs in ``rows`` (the first on ties)."""
    with np.errstate(invalid="ignore"):
        means = np.array(
            [np.nanmean(data[i]) if np.isfinite(data[i]).any() else -np.inf for i in rows]
        )
    return points[rows[int(np.argmax(means))]]


# ------------------------------------------------------------------ the sweep's tables


def metric_matrix(runs: pd.DataFrame, metric: str, counts: dict[int, int]) -> np.ndarray:
    """``runs``' ok values of ``metric`` as a point-by-replication matrix (points in
    ``counts`` key order), NaN where a run is missing, failed or left it undefined."""
    points = sorted(counts)
    width = max(counts.values())
    out = np.full((len(points), width), np.nan)
    if metric not in runs.columns:
        raise SweepError(
            f"--select-best: no metric {metric!r} in the runs (see a run's summary.json "
            "for the names, e.g. legitimate_remote.delivered_share)"
        )
    ok = runs[(runs["status"] == "ok") & (runs["replication"] < width)]
    row = {p: i for i, p in enumerate(points)}
    for point, rep, value in zip(
        ok["point"], ok["replication"], ok[metric].astype(float), strict=True
    ):
        if point in row:
            out[row[point], int(rep)] = value
    return out


def manifest_entry(
    selection: Selection, outcome: Outcome, n0: int, params: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``selection`` section of a sweep's manifest."""
    best = outcome.selected
    return {
        "procedure": selection.procedure,
        "metric": selection.metric,
        "indifference": selection.delta,
        "pcs": selection.pcs,
        "direction": "minimize" if selection.minimize else "maximize",
        "first_stage": n0,
        "constants": outcome.constants,
        "status": outcome.status,
        "selected_point": best,
        "selected_params": None if best is None else params[best],
        "replications": [outcome.counts[p] for p in sorted(outcome.counts)],
        "eliminated_at": {str(p): r for p, r in sorted(outcome.eliminated_at.items())},
    }


def first_stage(replications: int, maximum: int) -> int:
    """``n0``: the experiment's replications, at least ``MIN_FIRST_STAGE``; refuses a
    ``maximum`` below it."""
    n0 = max(MIN_FIRST_STAGE, replications)
    if not n0 <= maximum <= 100_000:
        raise SweepError(
            f"--max-replications must be between {n0} (the first stage) and 100000, not {maximum}"
        )
    return n0


def step(
    runs: pd.DataFrame, counts: dict[int, int], selection: Selection, n0: int, maximum: int
) -> Outcome:
    """``decide`` on the sweep's runs so far."""
    return decide(metric_matrix(runs, selection.metric, counts), counts, selection, n0, maximum)


def with_selection(points: pd.DataFrame, outcome: Outcome) -> pd.DataFrame:
    """``points`` with the selection's columns: ``selected`` (the chosen point),
    ``selection_replications`` and ``selection_eliminated_at`` (KN's stage; null for a
    survivor or under Rinott)."""
    out = points.copy()
    index = out["point"]
    out["selected"] = index == outcome.selected
    out["selection_replications"] = [outcome.counts.get(int(p), 0) for p in index]
    out["selection_eliminated_at"] = pd.array(
        [outcome.eliminated_at.get(int(p)) for p in index], dtype="Int64"
    )
    return out


def describe(outcome: Outcome, before: dict[int, int]) -> str:
    """The progress line after a batch."""
    alive = [p for p in outcome.counts if p not in outcome.eliminated_at]
    added = sum(outcome.counts.values()) - sum(before.values())
    return (
        f"selection: {len(alive)} of {len(outcome.counts)} points still in contention; "
        f"adding {added} runs"
    )
