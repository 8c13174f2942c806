"""When an MX server is down, and how: scheduled windows or random up/down periods.

Pure decisions, no simulation engine: ``OutageSchedule.mode_at(t)`` answers "is the server
down at second t, and does it time out or refuse?". Random outages are drawn once, up
front, as alternating exponential up (mean ``mtbf``) and down (mean ``mttr``) periods.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise

import numpy as np

from mailnet.scenario import OutageWindow, RandomOutages


class OutageSchedule:
    """Disjoint down windows ``[start, end)`` with a mode each (``timeout`` or ``refuse``)."""

    def __init__(self, windows: list[tuple[float, float, str]]):
        windows = sorted(windows)
        for (_s0, e0, _), (s1, _, _) in pairwise(windows):
            if s1 < e0:
                raise ValueError(f"outage windows overlap at {s1}s")
        self.windows = windows
        self._starts = [w[0] for w in windows]

    @classmethod
    def random(
        cls, mtbf: float, mttr: float, mode: str, horizon: float, rng: np.random.Generator
    ) -> OutageSchedule:
        """Alternating up/down periods from t=0 (up first) until ``horizon`` seconds."""
        windows = []
        t = 0.0
        while True:
            t += float(rng.exponential(mtbf))
            if t >= horizon:
                break
            length = float(rng.exponential(mttr))
            windows.append((t, t + length, mode))
            t += length
        return cls(windows)

    @classmethod
    def never(cls) -> OutageSchedule:
        return cls([])

    @classmethod
    def from_config(
        cls,
        outages: RandomOutages | list[OutageWindow] | None,
        horizon: float,
        rng: np.random.Generator,
    ) -> OutageSchedule:
        """A server's ``outages``: none, the listed windows, or random ones until
        ``horizon`` seconds (drawn from ``rng``)."""
        if outages is None:
            return cls.never()
        if isinstance(outages, list):
            return cls([(w.start, w.end, w.mode) for w in outages])
        return cls.random(outages.mtbf, outages.mttr, outages.mode, horizon, rng)

    def mode_at(self, t: float) -> str | None:
        """``"timeout"`` or ``"refuse"`` while down at ``t``; ``None`` while up."""
        i = bisect_right(self._starts, t) - 1
        if i >= 0:
            start, end, mode = self.windows[i]
            if start <= t < end:
                return mode
        return None
