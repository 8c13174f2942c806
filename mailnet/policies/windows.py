"""Counts of events in a trailing time window, as blocklists and providers keep them.

``SlidingCount`` is exact (one entry per call); ``BucketCount`` merges the events of each
``resolution``-long bucket into one entry, so that counting every message an address sends
costs a dictionary-free addition and memory stays bounded by ``window / resolution``.
Times are seconds and must not decrease.
"""

from __future__ import annotations

from collections import deque


class SlidingCount:
    """A count of events in the trailing window ``(now - window, now]`` (seconds).

    ``add(now, n)`` and ``total(now)`` must be called with non-decreasing ``now``. An
    event exactly ``window`` seconds old has left the window.
    """

    __slots__ = ("_events", "_sum", "window")

    def __init__(self, window: float):
        self.window = float(window)
        self._events: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def _prune(self, now: float) -> None:
        edge = now - self.window
        events = self._events
        while events and events[0][0] <= edge:
            self._sum -= events.popleft()[1]
        if not events:
            self._sum = 0.0

    def add(self, now: float, n: float = 1) -> None:
        self._prune(now)
        self._events.append((now, n))
        self._sum += n

    def total(self, now: float) -> float:
        self._prune(now)
        return self._sum


class BucketCount:
    """Like :class:`SlidingCount`, with events grouped in buckets of ``resolution``
    seconds: a bucket leaves the window when its start is ``window`` old, so an event may
    leave up to ``resolution`` early."""

    __slots__ = ("_buckets", "_sum", "resolution", "window")

    def __init__(self, window: float, resolution: float):
        if resolution <= 0 or resolution > window:
            raise ValueError("resolution must be in (0, window]")
        self.window = float(window)
        self.resolution = float(resolution)
        self._buckets: deque[list[float]] = deque()
        self._sum = 0.0

    def add(self, now: float, n: float = 1) -> None:
        start = now - now % self.resolution
        buckets = self._buckets
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] += n
        else:
            self._prune(now)
            buckets.append([start, n])
        self._sum += n

    def total(self, now: float) -> float:
        self._prune(now)
        return self._sum

    def _prune(self, now: float) -> None:
        edge = now - self.window
        buckets = self._buckets
        while buckets and buckets[0][0] <= edge:
            self._sum -= buckets.popleft()[1]
        if not buckets:
            self._sum = 0.0
