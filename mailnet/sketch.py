"""A latency distribution kept in constant memory: exact count, mean and maximum, quantiles
from a DDSketch (Masson, Rim and Lee, "DDSketch: a fast and fully-mergeable quantile
sketch with relative-error guarantees", VLDB 2019).

The sketch buckets values on a logarithmic scale, so its size grows with the logarithm of
the values' range (a few hundred buckets from a second to a week), never with their
number. Each order statistic it returns is within ``RELATIVE_ACCURACY`` of the true one,
and a quantile interpolates between two of them as ``numpy.quantile`` does, so it is within
``RELATIVE_ACCURACY`` of the exact quantile too.
"""

from __future__ import annotations

import math

from ddsketch import DDSketch

from mailnet.metrics import QUANTILES

RELATIVE_ACCURACY = 0.005
"""A quantile of a summary-only run is within 0.5 % (relative) of the exact one (numpy's
default, linear interpolation between the order statistics around rank ``q (n - 1)``)."""


class LatencySketch:
    """Values (seconds, >= 0) folded one at a time: ``count``, exact ``total`` and ``peak``,
    and quantiles within ``RELATIVE_ACCURACY``."""

    __slots__ = ("count", "peak", "sketch", "total")

    def __init__(self) -> None:
        self.sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        self.count = 0
        self.total = 0.0
        self.peak = -1.0

    def add(self, value: float) -> None:
        self.sketch.add(value)
        self.count += 1
        self.total += value
        self.peak = max(self.peak, value)

    def merge(self, other: LatencySketch) -> None:
        """Fold in every value ``other`` holds (the buckets add up exactly)."""
        if other.count:
            self.sketch.merge(other.sketch)
            self.count += other.count
            self.total += other.total
            self.peak = max(self.peak, other.peak)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` in [0, 1] (None when empty): the order statistics
        at ranks ``floor(q (n - 1))`` and the next, interpolated linearly."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        low = math.floor(rank)
        below = self.order_statistic(low)
        frac = rank - low
        if frac == 0:
            return below
        return below + (self.order_statistic(low + 1) - below) * frac

    def order_statistic(self, rank: int) -> float:
        """The ``rank``-th smallest value (from 0), within ``RELATIVE_ACCURACY``."""
        last = self.count - 1
        # DDSketch takes the value at rank floor(q (n - 1)): aim half a rank above
        q = 1.0 if rank >= last else (rank + 0.5) / last
        value = self.sketch.get_quantile_value(q)
        assert value is not None  # the sketch is not empty
        return float(value)

    def percentiles(self) -> dict[str, float | int | None]:
        """``{"count", "mean", "p50", "p90", "p99"}`` as ``metrics.summarize`` gives them."""
        out: dict[str, float | int | None] = {
            "count": self.count,
            "mean": self.total / self.count if self.count else None,
        }
        for q in QUANTILES:
            out[f"p{int(q * 100)}"] = self.quantile(q)
        return out


def merged(sketches: list[LatencySketch]) -> LatencySketch:
    """One sketch holding the values of all of ``sketches``."""
    out = LatencySketch()
    for sketch in sketches:
        out.merge(sketch)
    return out
