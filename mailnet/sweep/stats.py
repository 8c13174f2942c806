"""Per-point statistics over replications: means and Student-t confidence intervals."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

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


def point_table(runs: pd.DataFrame, params: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """One row per grid point (every point of ``params``, even those with no runs yet).

    Columns: ``point``, the swept keys, ``runs`` (recorded), ``ok`` and ``failed`` (counts),
    then for every numeric metric ``<metric>.mean``, ``<metric>.ci_low`` and
    ``<metric>.ci_high``: the mean over the point's ok replications where the metric is
    defined, and the ``level`` Student-t confidence interval for it.
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
    ok = runs.loc[runs["status"] == "ok", ["point", *metrics]].astype(dict.fromkeys(metrics, float))
    grouped = ok.groupby("point")[metrics]
    n = grouped.count().reindex(index)
    mean = grouped.mean().reindex(index)
    sd = grouped.std(ddof=1).reindex(index)
    half = pd.DataFrame(
        _half_width(n.to_numpy(), sd.to_numpy(), level), index=index, columns=metrics
    )
    columns = {}
    for m in metrics:
        columns[f"{m}.mean"] = mean[m].to_numpy()
        columns[f"{m}.ci_low"] = (mean[m] - half[m]).to_numpy()
        columns[f"{m}.ci_high"] = (mean[m] + half[m]).to_numpy()
    return pd.concat(
        [
            params.reset_index(drop=True),
            counts.reset_index(drop=True),
            pd.DataFrame(columns, index=range(len(index))),
        ],
        axis=1,
    )
