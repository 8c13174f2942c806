"""The queue levels of a summary-only run, folded as they change (``mailnet.streaming``).

Compiled with the model (``mailnet.compiled``): the MTAs and MX servers record a level
about five times per message, so each change is a call from compiled code.
"""

from __future__ import annotations

import math

from mypy_extensions import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)
class FoldingLevels:
    """A ``LevelLog`` that folds each change into its series' time average over
    ``[warmup, end)`` (seconds), and follows the total of the MTAs' deferred queues."""

    def __init__(self, warmup: float, end: float):
        self.warmup = warmup
        self.end = end
        self._keys: list[tuple[str, str, str]] = []
        self._index: dict[tuple[str, str, str], int] = {}
        # per series: the time of its last change (-inf: none yet), its value, its area
        # since the warm-up, and whether it is an MTA's deferred queue
        self._since: list[float] = []
        self._value: list[int] = []
        self._area: list[float] = []
        self._deferred: list[bool] = []
        self.total = 0  # every MTA's deferred queue together
        self._instant = -math.inf  # the time of the last deferred-queue change
        self.peak = 0
        self.peak_at: float | None = None
        self.drained_at: float | None = None

    def series_id(self, kind: str, entity: str, metric: str) -> int:
        key = (kind, entity, metric)
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)
            self._since.append(-math.inf)
            self._value.append(0)
            self._area.append(0.0)
            self._deferred.append(kind == "mta" and metric == "deferred")
        return self._index[key]

    def record(self, t: float, series: int, value: int) -> None:
        warmup = self.warmup
        before = self._value[series]
        if t > warmup:
            since = self._since[series]
            end = self.end
            # min(t, end) - max(since, warmup), without the calls
            self._area[series] += before * (
                (t if t < end else end) - (since if since > warmup else warmup)
            )
        if self._deferred[series]:
            if t != self._instant:
                self.settle_instant()
                self._instant = t
            self.total += value - before
        self._since[series] = t
        self._value[series] = value

    def settle_instant(self) -> None:
        """The deferred total after every change at the last instant: a new peak, or the
        first time it is empty after the peak (``timeseries.deferred_total``)."""
        if self._instant == -math.inf:
            return
        if self.total > self.peak:
            self.peak, self.peak_at, self.drained_at = self.total, self._instant, None
        elif self.total == 0 and self.peak > 0 and self.drained_at is None:
            self.drained_at = self._instant

    def averages(self) -> dict[str, float]:
        """``metrics.queue_averages``: every series that changed at least once."""
        start, end = self.warmup, self.end
        if end <= start:
            return {f"{k}:{e}:{m}": math.nan for k, e, m in self._recorded()}
        out: dict[str, float] = {}
        for key in self._recorded():
            i = self._index[key]
            since, value = self._since[i], self._value[i]
            area = self._area[i] + value * (end - (since if since > start else start))
            out[":".join(key)] = area / (end - start)
        return out

    def _recorded(self) -> list[tuple[str, str, str]]:
        return sorted(k for k in self._keys if self._since[self._index[k]] != -math.inf)
