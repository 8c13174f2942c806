"""Per-point statistics over replications: means with intervals on each metric's scale,
medians, how often a counted event happened, and paired differences to a baseline point."""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from mailnet.metric_catalog import is_event, kind_of, unit_of
from mailnet.sweep.estimators import (
    Difference,
    bootstrap_difference,
    holm,
    mean_interval,
    paired_difference,
    wilson,
)
from mailnet.sweep.store import FIXED_COLUMNS

LEVEL = 0.95


def confidence_interval(
    values: Iterable[float] | np.ndarray, level: float = LEVEL
) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the ``level`` Student-t interval for the mean of ``values``.

    NaNs are ignored. With no values everything is NaN; with one value the bounds are NaN;
    with identical values the interval is the single point.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    mean = float(x.mean()) if n else np.nan
    half = _half_width(n, float(x.std(ddof=1)) if n > 1 else np.nan, level)
    return mean, float(mean - half), float(mean + half)


def _half_width(n: float | np.ndarray, sd: float | np.ndarray, level: float) -> np.ndarray:
    """Half-width of the t interval; works elementwise on arrays of counts and sds."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = stats.t.ppf(0.5 + level / 2, np.where(n > 1, n - 1, np.nan))
        return quantile * np.asarray(sd, dtype=float) / np.sqrt(n)


def point_table(
    runs: pd.DataFrame,
    params: pd.DataFrame,
    level: float = LEVEL,
    *,
    baseline: int | None = None,
    damage: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per grid point (every point of ``params``, even those with no runs yet).

    Columns: ``point``, the swept keys, ``runs`` (recorded), ``ok`` and ``failed`` (counts),
    then for every numeric metric, over the point's ok replications where it is defined:

    - ``<metric>.mean``, ``.ci_low``, ``.ci_high``: the mean and its ``level`` Student-t
      interval, on the logit scale for shares and the log scale for durations, counts and
      other (non-negative) numbers,
      so that an interval never crosses the bound of its metric (``estimators.mean_interval``);
    - ``<metric>.median``: the median over replications;
    - for counts of events (``metric_catalog.is_event``: listings, expiries, suspensions,
      bounces, harm), ``<metric>.runs_with`` (the share of runs in which it happened at
      least once) with its Wilson interval ``.runs_with_low``, ``.runs_with_high``; and the
      damage given the event, ``.if_any``, ``.if_any_low``, ``.if_any_high``, ``.if_any_n``: the mean of
      the ``damage`` metric (default: the count itself, e.g. expiries given any expiry)
      over the runs in which the count was above zero, its interval and how many runs
      those were; with a ``damage`` metric also ``.if_none`` (with its interval and n),
      the same over the runs without the event (``conditional_damage``);
    - with a ``baseline`` point, ``<metric>.diff``, ``.diff_low``, ``.diff_high``: the
      paired difference to the baseline over replications sharing seeds, and
      ``.diff_p_holm``, its p-value adjusted by Holm over the points (per metric). The
      interval is the paired t's, or for ``quantile`` and ``ratio`` metrics
      (``metric_catalog.Kind``) a paired BCa bootstrap (``estimators.bootstrap_difference``)
      seeded by ``seed`` (the sweep's), the point and the metric's name, so the table is
      the same on every run of the analysis; the p-value is the paired t's in both cases.
    """
    index = params["point"].to_numpy()
    swept = set(params.columns)
    metrics = [
        c
        for c in runs.columns
        if c not in swept
        and c not in FIXED_COLUMNS
        and pd.api.types.is_numeric_dtype(runs[c])
        and not pd.api.types.is_bool_dtype(runs[c])
    ]
    status = runs.groupby("point")["status"]
    counts = (
        pd.DataFrame(
            {
                "runs": status.size(),
                "ok": status.apply(lambda s: int((s == "ok").sum())),
                "failed": status.apply(lambda s: int((s == "failed").sum())),
            }
        )
        .reindex(index)
        .fillna(0)
        .astype("int64")
    )
    ok = runs.loc[runs["status"] == "ok", ["point", "replication", *metrics]]
    ok = ok.astype(dict.fromkeys(metrics, float))
    # per metric, one row per point and one column per replication: pairs line up by seed
    wide = ok.set_index(["point", "replication"]).unstack("replication").reindex(index)
    columns: dict[str, np.ndarray] = {}

    def matrix(m: str) -> np.ndarray:
        return wide[m].to_numpy(dtype=float) if len(ok) else np.full((len(index), 0), np.nan)

    if damage is not None and damage not in metrics:
        raise KeyError(f"no numeric metric {damage!r} in the runs")
    scale = _SCALES.get(unit_of(damage) or "", "linear") if damage else "log"
    for m in metrics:
        values = matrix(m)
        columns.update(_metric_columns(m, values, level, baseline, index, seed=seed))
        if is_event(m):
            harm = values if damage is None else matrix(damage)
            columns.update(
                conditional_damage(m, values, harm, level, both=damage is not None, scale=scale)
            )
    return pd.concat(
        [
            params.reset_index(drop=True),
            counts.reset_index(drop=True),
            pd.DataFrame(columns, index=range(len(index))),
        ],
        axis=1,
    )


_SCALES = {"share": "logit", "s": "log", "count": "log", "number": "log"}
"""The scale of each unit's mean interval; every declared ``number`` (attempts per
recipient, a time-average queue length) is non-negative, like durations and counts."""


def _metric_columns(
    metric: str,
    values: np.ndarray,
    level: float,
    baseline: int | None,
    index: np.ndarray,
    *,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The columns of one metric; ``values`` has a row per point (in ``index`` order) and
    a column per replication, NaN where a run failed or left the metric undefined."""
    unit = unit_of(metric)
    scale = _SCALES.get(unit or "", "linear")
    intervals = np.array([mean_interval(row, scale, level) for row in values]).reshape(-1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no runs yet
        median = np.nanmedian(values, axis=1) if values.shape[1] else np.full(len(index), np.nan)
    out = {
        f"{metric}.mean": intervals[:, 0],
        f"{metric}.ci_low": intervals[:, 1],
        f"{metric}.ci_high": intervals[:, 2],
        f"{metric}.median": median,
    }
    if is_event(metric):
        shares = np.array(
            [wilson(int((row > 0).sum()), int((~np.isnan(row)).sum()), level) for row in values]
        ).reshape(-1, 3)
        out[f"{metric}.runs_with"] = shares[:, 0]
        out[f"{metric}.runs_with_low"] = shares[:, 1]
        out[f"{metric}.runs_with_high"] = shares[:, 2]
    if baseline is not None:
        base = values[int(np.flatnonzero(index == baseline)[0])]
        diffs = [paired_difference(row, base, level) for row in values]
        out[f"{metric}.diff"] = np.array([d.estimate for d in diffs])
        out[f"{metric}.diff_low"] = np.array([d.low for d in diffs])
        out[f"{metric}.diff_high"] = np.array([d.high for d in diffs])
        if kind_of(metric) != "value":
            boots = _bootstraps(metric, values, base, index, level=level, seed=seed)
            out[f"{metric}.diff_boot_low"] = np.array([d.low for d in boots])
            out[f"{metric}.diff_boot_high"] = np.array([d.high for d in boots])
        p = np.array(
            [np.nan if i == baseline else d.p_value for i, d in zip(index, diffs, strict=True)]
        )
        out[f"{metric}.diff_p_holm"] = holm(p)
    return out


def _bootstraps(
    metric: str,
    values: np.ndarray,
    base: np.ndarray,
    index: np.ndarray,
    *,
    level: float,
    seed: int,
) -> list[Difference]:
    """Each point's paired BCa bootstrap interval of its difference to ``base``, for the
    quantiles and ratios, seeded by ``(seed, point, CRC-32 of the metric's name)``. The
    paired t stays the table's interval: on skewed runs it covered better at the
    replication counts sweeps use (see ``tests/test_bootstrap.py``)."""
    tag = zlib.crc32(metric.encode("utf-8"))
    return [
        bootstrap_difference(row, base, level, seed=[seed, int(point), tag])
        for point, row in zip(index, values, strict=True)
    ]


def conditional_damage(
    event: str,
    counts: np.ndarray,
    harm: np.ndarray,
    level: float = LEVEL,
    *,
    both: bool = False,
    scale: str = "linear",
) -> dict[str, np.ndarray]:
    """The damage given a rare event, per point: over the runs whose ``counts`` (the event
    metric, a row per point and a column per replication) are above zero, the mean of
    ``harm`` (the damage metric, same shape) with its ``level`` interval on ``scale``
    (``estimators.mean_interval``) and the number of runs (``<event>.if_any``, ``_low``,
    ``_high``, ``_n``); with ``both``, the same over the runs without the event
    (``.if_none``). Runs are the unit: a run where either value is undefined is left
    out."""
    out: dict[str, np.ndarray] = {}
    parts = (("if_any", True), ("if_none", False)) if both else (("if_any", True),)
    for name, happened in parts:
        with np.errstate(invalid="ignore"):
            chosen = (counts > 0) if happened else (counts == 0)
        picked = np.where(chosen & ~np.isnan(harm), harm, np.nan)
        intervals = np.array([mean_interval(row, scale, level) for row in picked])
        intervals = intervals.reshape(-1, 3)
        out[f"{event}.{name}"] = intervals[:, 0]
        out[f"{event}.{name}_low"] = intervals[:, 1]
        out[f"{event}.{name}_high"] = intervals[:, 2]
        out[f"{event}.{name}_n"] = (~np.isnan(picked)).sum(axis=1)
    return out
