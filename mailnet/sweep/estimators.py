"""Estimators over replications: paired differences (paired t, or a paired BCa bootstrap),
Holm's correction, intervals on a bounded scale, Wilson intervals for the share of runs in
which an event happens.

The replication is the unit of inference: each function takes one value per run (or per
pair of runs sharing a seed), never per message. Methods, assumptions and the test values
they are checked against: ``output-analysis.md`` §3 (paired t, bootstrap BCa, Holm), §6
(Wilson), §7 (logit and log delta intervals), Law (2015) ch. 9-10; Efron (1987) for BCa.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

LEVEL = 0.95

RESAMPLES = 9999
"""Bootstrap resamples of a paired difference: SciPy's default, and the count
``output-analysis.md`` §3.2 checks. Its Monte Carlo error on a 95 % bound is well under
the interval's own sampling error at any replication count a sweep uses."""


class Interval(NamedTuple):
    """An estimate with its confidence interval (NaN where undefined)."""

    estimate: float
    low: float
    high: float


class Difference(NamedTuple):
    """A paired difference ``mean(y - y0)`` with its interval, the two-sided p-value of
    "no difference", and the number of pairs used."""

    estimate: float
    low: float
    high: float
    p_value: float
    pairs: int


NAN_DIFFERENCE = Difference(math.nan, math.nan, math.nan, math.nan, 0)


def paired_difference(
    y: Sequence[float] | np.ndarray, y0: Sequence[float] | np.ndarray, level: float = LEVEL
) -> Difference:
    """The paired-t interval for ``mean(y - y0)``: ``y[r]`` and ``y0[r]`` come from runs
    sharing replication r's seed (common random numbers), so their covariance narrows the
    interval. Pairs where either value is NaN (a failed run) are dropped, never realigned.
    Identical pairs give a zero-width interval and p-value 1."""
    a = np.asarray(y, dtype=float)
    b = np.asarray(y0, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    n = int(d.size)
    if n == 0:
        return NAN_DIFFERENCE
    mean = float(d.mean())
    if n == 1:
        return Difference(mean, math.nan, math.nan, math.nan, 1)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return Difference(mean, mean, mean, 1.0 if mean == 0 else 0.0, n)
    result = stats.ttest_rel(a[keep], b[keep])
    ci = result.confidence_interval(level)
    return Difference(mean, float(ci.low), float(ci.high), float(result.pvalue), n)


def bootstrap_difference(
    y: Sequence[float] | np.ndarray,
    y0: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    *,
    seed: int | Sequence[int] | np.random.SeedSequence = 0,
    resamples: int = RESAMPLES,
) -> Difference:
    """``mean(y - y0)`` with a paired BCa bootstrap interval (Efron 1987), for per-run values
    too skewed for the t (quantiles, ratios): ``scipy.stats.bootstrap(paired=True,
    method="BCa")`` resamples whole replications, so pairs sharing a seed stay together.

    ``seed`` (anything ``numpy.random.default_rng`` takes) fixes the resampling, so the same
    data always give the same interval. The p-value is the paired t's (``paired_difference``),
    so Holm's correction treats every metric alike. Fallbacks, where BCa is undefined:
    pairs with a NaN are dropped as in ``paired_difference``; with fewer than 3 pairs, or
    all differences equal, the result is the paired t's (NaN bounds for one pair, a
    zero-width interval for equal differences, the wide t interval for two pairs, whose
    bootstrap distribution has only three atoms); if BCa still gives no bound (its bias
    correction is infinite when every resample falls on one side of the estimate), the
    percentile interval of the same resamples is used, which stays inside the range of
    the differences.
    """
    a = np.asarray(y, dtype=float)
    b = np.asarray(y0, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    t = paired_difference(a, b, level)
    if t.pairs < 3 or t.low == t.high:
        return t
    low, high = math.nan, math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            # a degenerate bootstrap distribution warns and gives NaN: handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            ci = stats.bootstrap(
                (a, b),
                _mean_difference,
                paired=True,
                vectorized=True,
                confidence_level=level,
                n_resamples=resamples,
                method=method,
                rng=np.random.default_rng(seed),
            ).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if not (math.isnan(low) or math.isnan(high)):
            return Difference(t.estimate, low, high, t.p_value, t.pairs)
    return t


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): family-wise error control under any
    dependence, so valid across grid points sharing seeds. NaNs stay NaN and do not count
    as tests."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    steps = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted[order] = steps
    return adjusted


def wilson(events: int, runs: int, level: float = LEVEL) -> Interval:
    """The share of ``runs`` in which an event happened, with its Wilson interval (Wilson
    1927), which stays sensible at 0 or ``runs`` events (unlike the Wald interval)."""
    if runs <= 0:
        return Interval(math.nan, math.nan, math.nan)
    ci = stats.binomtest(int(events), int(runs)).proportion_ci(level, method="wilson")
    return Interval(events / runs, float(ci.low), float(ci.high))


def mean_interval(
    values: Sequence[float] | np.ndarray, scale: str = "linear", level: float = LEVEL
) -> Interval:
    """The mean of ``values`` (NaNs ignored) with a Student-t interval on ``scale``.

    ``linear``: the usual t-interval. ``logit`` (rates in [0, 1]) and ``log`` (positive
    quantities): the delta method on that scale, ``g^-1(g(mean) +- t se(mean) g'(mean))``,
    which keeps the interval inside the range instead of crossing a bound and being
    clipped; the estimand is still the mean. Where the transform is undefined (a mean of
    exactly 0 or 1 on the logit scale, 0 on the log scale) the linear interval is used,
    which then has zero width only if every value is equal.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    if scale == "logit" and 0.0 < mean < 1.0:
        centre = math.log(mean / (1 - mean))
        half = t * se / (mean * (1 - mean))
        return Interval(mean, _expit(centre - half), _expit(centre + half))
    if scale == "log" and mean > 0.0:
        half = t * se / mean
        return Interval(mean, mean * math.exp(-half), mean * math.exp(half))
    return Interval(mean, mean - t * se, mean + t * se)


def _expit(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
