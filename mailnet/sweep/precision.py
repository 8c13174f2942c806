"""Replicating until the answer is tight: the sequential rule of ``sweep --precision``.

Every point starts with ``max(10, replications)`` runs. After each batch, a point whose
target metrics do not all meet the target gets about 10 % more replications (at least
one), up to ``--max-replications``; with a baseline, the baseline point keeps at least as
many replications as any other, so every paired difference has its pairs (Law 2015,
§9.4.1; output-analysis.md §5). The target is on the half-width ``hw`` of each metric's
95 % Student-t interval, or of its paired difference to the baseline when there is one:

- relative (``--precision 0.1``): ``hw <= g/(1+g) |mean|``, the corrected target that
  keeps the realised relative error within ``g`` (for a difference, ``|mean|`` is the
  baseline's mean);
- absolute (``--precision 0.005abs``): ``hw <= value``, for rates near zero.

A metric undefined at a point in every run (no delivery, hence no latency) does not hold
the point back. Known limits of any such rule: coverage falls somewhat below nominal
because the stopping time depends on the data, most for heavy-tailed metrics; the minimum
of 10 runs and the batch growth limit that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mailnet.sweep.backends import SweepError

MIN_REPLICATIONS = 10
GROWTH = 0.1
"""A point short of the target gets this share of its replications more (at least one)."""

_SPEC = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(abs)?\s*$")


@dataclass(frozen=True)
class Precision:
    """A half-width target: ``value`` relative to the mean, or absolute with ``absolute``."""

    value: float
    absolute: bool = False

    @classmethod
    def parse(cls, text: str) -> Precision:
        """``"0.1"`` (relative) or ``"0.005abs"`` (absolute, in the metric's units)."""
        match = _SPEC.match(str(text))
        value = float(match.group(1)) if match else math.nan
        if not match or not 0 < value < math.inf:
            raise SweepError(
                f"--precision must be a positive number, relative (0.1) or absolute "
                f"(0.005abs), not {text!r}"
            )
        return cls(value, bool(match.group(2)))

    def target(self, scale: float) -> float:
        """The half-width to reach; ``scale`` is the mean a relative target is relative to
        (corrected to g/(1+g) so that the realised relative error stays within g)."""
        if self.absolute:
            return self.value
        return self.value / (1 + self.value) * abs(scale)

    def met(self, half_width: float, scale: float) -> bool:
        """Whether a half-width meets the target; ``scale`` is the mean it is relative to."""
        return not math.isnan(half_width) and half_width <= self.target(scale)

    def describe(self) -> str:
        return f"{self.value:g} absolute" if self.absolute else f"{self.value:g} relative"


def half_width(values: np.ndarray, level: float = 0.95) -> float:
    """The Student-t half-width of the mean of ``values`` (NaNs dropped; NaN below 2)."""
    x = values[~np.isnan(values)]
    if x.size < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


@dataclass(frozen=True)
class Shortfall:
    """Where a point stands against the target: ``met``, and the worst metric with its
    half-width relative to the target (over 1 means short)."""

    met: bool
    worst_metric: str | None
    worst_ratio: float


def assess(
    runs: pd.DataFrame,
    targets: Mapping[str, Precision],
    baseline: int | None = None,
) -> dict[int, Shortfall]:
    """For every point in ``runs`` (ok runs count), whether every metric of ``targets``
    meets its own target."""
    ok = runs[runs["status"] == "ok"]
    present = [m for m in targets if m in ok.columns]
    wide = ok.set_index(["point", "replication"])[present].astype(float).unstack("replication")
    base = wide.loc[baseline] if baseline is not None and baseline in wide.index else None
    result = {}
    for point in sorted(runs["point"].unique()):
        worst: tuple[float, str | None] = (0.0, None)
        met = True
        for m in present:
            values = wide.loc[point, m].to_numpy() if point in wide.index else np.array([])
            if values.size == 0 or np.isnan(values).all():
                continue  # undefined in every run: more runs would not define it
            if base is not None and point != baseline:
                paired = base[m].reindex(wide[m].columns).to_numpy()
                hw = half_width(values - paired)
                scale = float(np.nanmean(paired))
            else:
                hw = half_width(values)
                scale = float(np.nanmean(values))
            precision = targets[m]
            ok_here = precision.met(hw, scale)
            target = precision.target(scale)
            ratio = (
                math.inf
                if math.isnan(hw)
                else (hw / target if target > 0 else (0.0 if hw == 0 else math.inf))
            )
            if ratio > worst[0] or worst[1] is None:
                worst = (ratio, m)
            met = met and ok_here
        result[int(point)] = Shortfall(met, worst[1], worst[0])
    return result


def next_counts(
    counts: dict[int, int],
    shortfalls: dict[int, Shortfall],
    maximum: int,
    baseline: int | None = None,
) -> dict[int, int]:
    """The replications each point should have after the next batch (unchanged when the
    target is met or the maximum reached)."""
    grown = dict(counts)
    for point, n in counts.items():
        if not shortfalls[point].met and n < maximum:
            grown[point] = min(maximum, n + max(1, math.ceil(GROWTH * n)))
    if baseline is not None:
        grown[baseline] = max(grown.values())
    return grown
