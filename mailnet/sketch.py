"""Latency distributions kept in constant memory.

``LatencySketch``: exact count, mean and maximum, quantiles from a DDSketch (Masson, Rim
and Lee, "DDSketch: a fast and fully-mergeable quantile sketch with relative-error
guarantees", VLDB 2019). The sketch buckets values on a logarithmic scale, so its size
grows with the logarithm of the values' range (a few hundred buckets from a second to a
week), never with their number. Each order statistic it returns is within
``RELATIVE_ACCURACY`` of the true one, and a quantile interpolates between two of them as
``numpy.quantile`` does, so it is within ``RELATIVE_ACCURACY`` of the exact quantile too.

``IncidenceBins``: a cohort group's ends and censorings counted in fixed logarithmic bins,
for the cumulative incidence of delivery (``mailnet.survival``).
"""

from __future__ import annotations

import functools
import itertools
import math
from array import array
from bisect import bisect_left

import numpy as np
from ddsketch import DDSketch

from mailnet import metrics  # the module: metrics imports this one, via cohort
from mailnet.survival import CENSORED, DELIVERED, OTHER, Incidence, incidence_of_tallies

RELATIVE_ACCURACY = 0.005
"""A quantile of a summary-only run is within 0.5 % (relative) of the exact one (numpy's
default, linear interpolation between the order statistics around rank ``q (n - 1)``)."""


PENDING = 512
"""Values a ``LatencySketch`` buffers before it adds them to its DDSketch at once: one
``add`` is then an append (the DDSketch's own ``add`` costs five Python calls), and the
buffer stays at 4 KB."""

_LN2 = math.log(2)
_NEAR_INTEGER = 1e-9
"""A value whose scaled logarithm is this close to an integer has its key computed by the
mapping itself: numpy's ``log`` may differ from the C library's in the last bit, which
can move ``ceil`` only there."""


class LatencySketch:
    """Values (seconds, >= 0) folded one at a time: ``count``, exact ``total`` and ``peak``,
    and quantiles within ``RELATIVE_ACCURACY``.

    Values wait in a buffer of about ``PENDING``; a full buffer is counted by bucket (the
    keys the DDSketch's own ``add`` gives each) in an array of counts, which goes into the
    DDSketch when a quantile is asked for or sketches are merged. ``total`` adds the values
    in the order they came, so every figure is the one of adding them one by one."""

    __slots__ = ("_bins", "_count", "_low", "_peak", "_sketch", "_total", "pending")

    def __init__(self) -> None:
        self._sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        self._count = 0
        self._total = 0.0
        self._peak = -1.0
        self.pending = array("d")  # values not yet counted
        self._bins = np.zeros(0, dtype=np.int64)  # counts by key from ``_low``, not yet
        self._low = 0  # in the DDSketch: a few thousand keys whatever the count

    def add(self, value: float) -> None:
        pending = self.pending
        pending.append(value)
        if len(pending) >= PENDING:
            self.flush()

    def bound(self) -> None:
        """Flush a full buffer: for a caller that appends to ``pending`` itself."""
        if len(self.pending) >= PENDING:
            self.flush()

    @property
    def count(self) -> int:
        return self._count + len(self.pending)

    @property
    def total(self) -> float:
        self.flush()
        return self._total

    @property
    def peak(self) -> float:
        self.flush()
        return self._peak

    def flush(self) -> None:
        """Put the buffered values into the sketch, ``count``, ``total`` and ``peak``."""
        values = self.pending
        if not values:
            return
        self.pending = array("d")
        total = self._total
        for value in values:  # one at a time, in order: the same rounding as ``add``
            total += value
        self._total = total
        self._peak = max(itertools.chain((self._peak,), values))
        self._count += len(values)
        keys = _keys(self._sketch, np.array(values))
        if not len(keys):
            return
        low, high = int(keys.min()), int(keys.max())
        bins = self._bins
        if not len(bins) or low < self._low or high >= self._low + len(bins):
            start = min(low, self._low) if len(bins) else low
            end = max(high + 1, self._low + len(bins)) if len(bins) else high + 1
            grown = np.zeros(end - start, dtype=np.int64)
            grown[self._low - start : self._low - start + len(bins)] = bins
            self._bins, self._low, bins = grown, start, grown
        bins += np.bincount(keys - self._low, minlength=len(bins))

    @property
    def sketch(self) -> DDSketch:
        """The DDSketch of every value added so far."""
        self.flush()
        bins = self._bins
        if bins.any():
            found = np.flatnonzero(bins)
            _add_keys(self._sketch, found + self._low, bins[found])
            bins[:] = 0
        return self._sketch

    def merge(self, other: LatencySketch) -> None:
        """Fold in every value ``other`` holds (the buckets add up exactly)."""
        self.flush()
        other.flush()
        if other._count:
            self.sketch.merge(other.sketch)
            self._count += other._count
            self._total += other._total
            self._peak = max(self._peak, other._peak)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` in [0, 1] (None when empty): the order statistics
        at ranks ``floor(q (n - 1))`` and the next, interpolated linearly."""
        self.flush()
        if not self._count:
            return None
        rank = q * (self._count - 1)
        low = math.floor(rank)
        below = self.order_statistic(low)
        frac = rank - low
        if frac == 0:
            return below
        return below + (self.order_statistic(low + 1) - below) * frac

    def order_statistic(self, rank: int) -> float:
        """The ``rank``-th smallest value (from 0), within ``RELATIVE_ACCURACY``."""
        self.flush()
        last = self._count - 1
        # DDSketch takes the value at rank floor(q (n - 1)): aim half a rank above
        q = 1.0 if rank >= last else (rank + 0.5) / last
        value = self.sketch.get_quantile_value(q)
        assert value is not None  # the sketch is not empty
        return float(value)

    def percentiles(self) -> dict[str, float | int | None]:
        """``{"count", "mean", "p50", "p90", "p99"}`` as ``metrics.summarize`` gives them."""
        self.flush()
        n = self._count
        out: dict[str, float | int | None] = {
            "count": n,
            "mean": self._total / n if n else None,
        }
        for q in metrics.QUANTILES:
            out[f"p{int(q * 100)}"] = self.quantile(q)
        return out


def _add_to_sketch(sketch: DDSketch, values: np.ndarray) -> None:
    """Add ``values`` to ``sketch`` as its ``add`` would one at a time (``_keys``)."""
    buckets, counts = np.unique(_keys(sketch, values), return_counts=True)
    _add_keys(sketch, buckets, counts)


def _keys(sketch: DDSketch, values: np.ndarray) -> np.ndarray:
    """The bucket of each positive value of ``values`` as ``sketch.add`` would find it,
    ``mapping.key`` (``ceil(log2(value) * multiplier) + offset``); values too small to
    tell from 0 go to the sketch's zero count and negative ones into it one by one.
    Reaches into the sketch's zero count and summary fields (ddsketch 3)."""
    mapping = sketch._mapping
    positive = values > mapping.min_possible
    others = values[~positive]
    if len(others):
        for value in others[others < -mapping.min_possible].tolist():
            sketch.add(value)
        zeros = int(np.count_nonzero(others >= -mapping.min_possible))
        sketch._zero_count += zeros
        sketch._count += zeros
        values = values[positive]
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    scaled = np.log(values) / _LN2 * mapping._multiplier
    keys = np.ceil(scaled) + mapping._offset
    near = np.abs(scaled - np.rint(scaled)) < _NEAR_INTEGER
    if near.any():  # the last bit of the logarithm decides: the mapping's own key
        keys[near] = [mapping.key(value) for value in values[near].tolist()]
    sketch._sum += float(values.sum())
    sketch._min = min(sketch._min, float(values.min()))
    sketch._max = max(sketch._max, float(values.max()))
    return keys.astype(np.int64)


def _add_keys(sketch: DDSketch, keys: np.ndarray, counts: np.ndarray) -> None:
    """Count ``counts[i]`` values in bucket ``keys[i]`` of ``sketch``'s store."""
    store = sketch._store
    for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
        store.add(key, float(n))
    sketch._count += int(counts.sum())


def merged(sketches: list[LatencySketch]) -> LatencySketch:
    """One sketch holding the values of all of ``sketches``."""
    out = LatencySketch()
    for sketch in sketches:
        out.merge(sketch)
    return out


SMALLEST = 1e-6
LARGEST = 1e9
"""Seconds: the bins are logarithmic from ``SMALLEST`` to ``LARGEST`` (over 30 years);
times under ``SMALLEST`` share one bin, given as ``SMALLEST / 2``, and times over
``LARGEST`` one more, given as the largest time."""


_BLOCK = 1 << 16
"""Rows ``IncidenceBins.add_many`` bins at once: its temporary arrays stay under 2 MB."""


@functools.cache
def _bins(anchors: tuple[float, ...]) -> tuple[array, np.ndarray]:
    """The bins' upper bounds (bin 0 holds 0 alone, bin ``i`` the times in
    ``(bounds[i-1], bounds[i]]``, the last bin those above ``LARGEST``) and the value
    that stands for each bin, within ``RELATIVE_ACCURACY`` of any time in it. Each of
    ``anchors`` is a bound: bins of ratio at most ``(1 + a) / (1 - a)`` between them."""
    gamma = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
    points = sorted({SMALLEST, *anchors, LARGEST})
    bounds = [0.0]
    for low, high in itertools.pairwise(points):
        k = math.ceil(math.log(high / low) / math.log(gamma))
        ratio = (high / low) ** (1 / k)
        bounds.extend(low * ratio**j for j in range(k))
    bounds.append(points[-1])
    upper = np.array(bounds)
    lower = np.concatenate(([0.0], upper[:-1]))
    with np.errstate(invalid="ignore"):
        # the harmonic mean of a bin's ends is within (r - 1) / (r + 1) of either
        values = 2 * lower * upper / (lower + upper)
    values[0], values[1] = 0.0, SMALLEST / 2
    # an array, not a list: one block, not a float object per bound
    return array("d", bounds), np.append(values, math.nan)  # the last: the largest time


class IncidenceBins:
    """The rows of one group, each an event code (``survival``: delivered, another end,
    censored) and a time (seconds, >= 0), counted per bin: the cumulative incidence of
    delivery in constant memory (about 3,500 bins, 27 bytes each).

    Against ``survival.cumulative_incidence`` of the same rows: the incidence at each
    bound is the same (up to floating-point rounding) when no row is censored in a bin
    that also holds ends, since ends in one bin move the estimate as much in any order;
    within a bin, ends count before censorings, as at a tie. ``anchors`` (seconds) are
    bounds, so ``within`` them is exact in that case; a quantile is the value of the bin
    the incidence reaches it in, within ``RELATIVE_ACCURACY`` of the exact one.
    """

    __slots__ = ("_bounds", "_counts", "_values", "follow_up")

    def __init__(self, anchors: tuple[float, ...] = ()) -> None:
        self._bounds, self._values = _bins(tuple(anchors))
        self._counts = array("q", bytes(8 * 3 * (len(self._bounds) + 1)))
        self.follow_up = 0.0  # the longest time of any row

    def add(self, event: int, time: float) -> None:
        """One row: ``event`` (``CENSORED``, ``DELIVERED`` or ``OTHER``) at ``time``."""
        self._counts[3 * bisect_left(self._bounds, time) + event] += 1
        self.follow_up = max(self.follow_up, time)

    def add_many(self, events: np.ndarray, times: np.ndarray) -> None:
        """Rows ``events[i]`` at ``times[i]``, as ``add`` each, a block at a time."""
        counts = np.frombuffer(self._counts, dtype=np.int64)
        bounds = np.frombuffer(self._bounds)
        for i in range(0, len(times), _BLOCK):
            at = np.searchsorted(bounds, times[i : i + _BLOCK], side="left")
            np.add.at(counts, 3 * at + events[i : i + _BLOCK], 1)
        if len(times):
            self.follow_up = max(self.follow_up, float(times.max()))

    def incidence(self) -> Incidence:
        """The cumulative incidence over the bins (its variance: over the bins too)."""
        counts = np.frombuffer(self._counts, dtype=np.int64).reshape(-1, 3)
        d1 = counts[:, DELIVERED]
        d = d1 + counts[:, OTHER]
        at_risk = np.cumsum(counts.sum(axis=1)[::-1])[::-1]
        values = self._values.copy()
        values[-1] = self.follow_up
        ends = d > 0
        return incidence_of_tallies(
            values[ends],
            d1[ends],
            d[ends],
            at_risk[ends],
            counts=(int(d1.sum()), int(counts[:, OTHER].sum()), int(counts[:, CENSORED].sum())),
            follow_up=self.follow_up,
        )
