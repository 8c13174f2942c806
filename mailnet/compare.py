"""Two runs, or two points of sweeps, side by side: ``mailnet compare A B``.

A side is a run directory (``mailnet run``: one value per metric) or a point of a sweep
directory (``mailnet sweep``: one value per replication), written ``SWEEP_DIR@POINT`` where
``POINT`` is the point's number, its label, or ``KEY=VALUE`` pairs joined by commas
(``results/mitigations@segmented pools``, ``results/spam_shared_ip@senders.spammer.rate=0/d``).

For every headline metric (``metric_catalog``) both sides have, the comparison gives each
side's value (the mean over replications), the difference B - A and, when both sides have
replications, a 95 % Student-t interval of the difference: paired (the mean of the
per-replication differences) when A and B ran the same seeds, as a sweep's points do
(common random numbers), Welch's otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mailnet import humanize
from mailnet.errors import ScenarioError
from mailnet.metric_catalog import format_value, lookup, members, title, unit_of
from mailnet.metrics import flatten

LEVEL = 0.95
"""Confidence level of the intervals."""

SERVER_QUEUES = "queue_time_average.server:"
"""Headline metrics left out by default: one per MX server."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its name, the seed of each replication (one for a run),
    and each metric's values in that order."""

    name: str
    seeds: tuple[int, ...]
    values: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    """One metric compared: the means, the difference B - A, its interval (NaN when
    there is none) and how it was computed (``paired``, ``welch`` or ``single``)."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    method: str


def load_side(text: str) -> Side:
    """The side named by ``text``: a run directory or ``SWEEP_DIR@POINT``; bad input raises
    ``ScenarioError`` naming it."""
    path_text, at, point = text.partition("@")
    path = Path(path_text)
    if not path.is_dir():
        raise ScenarioError(text, "", "no such run or sweep directory")
    if (path / "points.parquet").is_file() and (path / "runs.parquet").is_file():
        if not at:
            raise ScenarioError(
                text,
                "",
                "a sweep directory: name a point as DIR@NUMBER, DIR@LABEL or DIR@KEY=VALUE",
            )
        return _sweep_side(text, path, point)
    if at:
        raise ScenarioError(text, "", f"{path} is not a sweep directory (no points.parquet)")
    summary_file = path / "summary.json"
    if not summary_file.is_file():
        raise ScenarioError(text, "", "not a run directory (no summary.json)")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    manifest_file = path / "manifest.json"
    manifest = (
        json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else {}
    )
    flat = flatten(summary)
    values = {k: np.array([_float(v)]) for k, v in flat.items() if lookup(k) is not None}
    return Side(text, (int(manifest.get("seed", -1)),), values)


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _sweep_side(text: str, path: Path, point: str) -> Side:
    points = pd.read_parquet(path / "points.parquet")
    runs = pd.read_parquet(path / "runs.parquet")
    chosen = _select_point(text, points, point)
    mine = runs[(runs["point"] == chosen) & (runs["status"] == "ok")].sort_values("replication")
    if mine.empty:
        raise ScenarioError(text, "", f"point {chosen} has no successful runs")
    values = {
        column: mine[column].to_numpy(dtype=float)
        for column in mine.columns
        if lookup(column) is not None and pd.api.types.is_numeric_dtype(mine[column])
    }
    return Side(text, tuple(int(s) for s in mine["seed"]), values)


def _select_point(text: str, points: pd.DataFrame, point: str) -> int:
    """The number of the point ``point`` names (a number, a label or KEY=VALUE pairs)."""
    if point.strip().isdigit() and int(point) in set(points["point"]):
        return int(point)
    if "label" in points.columns and point in set(points["label"].astype(str)):
        return int(points.loc[points["label"].astype(str) == point, "point"].iloc[0])
    if "=" in point:
        mask = pd.Series(True, index=points.index)
        for pair in point.split(","):
            key, _, value = pair.partition("=")
            key = key.strip()
            if key not in points.columns:
                raise ScenarioError(text, key, "not a swept key of this sweep")
            mask &= points[key].astype(str) == value.strip()
        if mask.sum() == 1:
            return int(points.loc[mask, "point"].iloc[0])
    names = ", ".join(
        f"{p}" + (f" ({label})" if label else "")
        for p, label in zip(
            points["point"], points.get("label", pd.Series([""] * len(points))), strict=True
        )
    )
    raise ScenarioError(text, "", f"no single point {point!r}; the points are {names}")


def difference(metric: str, a: np.ndarray, b: np.ndarray, paired: bool) -> Difference:
    """``metric`` compared between the values ``a`` and ``b`` (NaN left out)."""
    if paired:
        d = b - a
        d = d[np.isfinite(d)]
        low, high = _t_interval(d)
        return Difference(metric, np.nanmean(a), np.nanmean(b), _mean(d), low, high, "paired")
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    mean_a, mean_b = _mean(a), _mean(b)
    diff = mean_b - mean_a
    if a.size < 2 or b.size < 2:
        return Difference(metric, mean_a, mean_b, diff, math.nan, math.nan, "single")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(metric, mean_a, mean_b, diff, diff, diff, "welch")
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.5 + LEVEL / 2, dof) * se
    return Difference(metric, mean_a, mean_b, diff, diff - half, diff + half, "welch")


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _t_interval(d: np.ndarray) -> tuple[float, float]:
    """Student-t interval of the mean of ``d`` (NaN with fewer than two values)."""
    if d.size < 2:
        return math.nan, math.nan
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
    half = stats.t.ppf(0.5 + LEVEL / 2, d.size - 1) * se
    return mean - half, mean + half


def compare(a: Side, b: Side, metrics: list[str] | None = None) -> list[Difference]:
    """Every headline metric both sides have (or ``metrics``), compared. Paired when both
    have several replications with the same seeds in the same order."""
    paired = len(a.seeds) > 1 and a.seeds == b.seeds
    common = [k for k in a.values if k in b.values]
    if metrics is None:  # every server's queues would drown the rest: the MTAs' are kept
        metrics = [k for k in members(common, headline=True) if not k.startswith(SERVER_QUEUES)]
    keys = metrics
    return [difference(k, a.values[k], b.values[k], paired) for k in keys if k in common]


def format_difference(metric: str, value: float) -> str:
    """A difference written in its metric's unit, signed; shares in percentage points."""
    if not math.isfinite(value):
        return humanize.MISSING
    sign = "+" if value > 0 else "-" if value < 0 else ""
    unit = unit_of(metric)
    if unit == "share":
        points = 100 * abs(value)
        return f"{sign}{points:.2g} pp" if points < 1 else f"{sign}{points:.1f} pp"
    return sign + format_value(unit, abs(value))


def table_rows(differences: list[Difference]) -> list[list[str]]:
    """``[metric, A, B, B - A, ± half the interval]`` per difference, written for people."""
    rows = []
    for d in differences:
        half = (d.high - d.low) / 2  # both intervals are symmetric about the difference
        interval = (
            "± " + format_difference(d.metric, half).lstrip("+") if math.isfinite(half) else ""
        )
        rows.append(
            [
                title(d.metric),
                format_value(unit_of(d.metric), d.a),
                format_value(unit_of(d.metric), d.b),
                format_difference(d.metric, d.diff),
                interval,
            ]
        )
    return rows


def method_note(differences: list[Difference], a: Side, b: Side) -> str:
    """One sentence saying what the interval column is."""
    methods = {d.method for d in differences}
    if "paired" in methods:
        return (
            f"{int(LEVEL * 100)} % interval of B - A: paired over {len(a.seeds)} replications "
            "with the same seeds (Student t)."
        )
    if "welch" in methods:
        return (
            f"{int(LEVEL * 100)} % interval of B - A: Welch's t over {len(a.seeds)} and "
            f"{len(b.seeds)} replications (different seeds, so not paired)."
        )
    return "One value per side: no interval (compare sweep points for intervals)."
