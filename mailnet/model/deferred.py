"""An MTA's deferred queue: mail waiting for its retry time.

With a queue-run interval (Postfix's queue_run_delay, Exim's -q runner) one process scans
the queue every interval from t=0 and releases what is due by the scan time plus the
policy's slack; without one each entry wakes exactly at its eligible time. The queue's
length is recorded as a level series at every change (and at the first scan).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from functools import partial

import simpy

from mailnet.model.message import Delivery
from mailnet.model.stepping import Step, start
from mailnet.recorders import LevelRecorder


class DeferredQueue:
    """Deliveries held until their retry time, then handed to ``release``.

    ``interval`` and ``slack`` are seconds; ``series`` is the level series (registered
    by the owner) that records the queue length.
    """

    def __init__(
        self,
        env: simpy.Environment,
        release: Callable[[Delivery], None],
        levels: LevelRecorder,
        series: int,
        *,
        interval: float | None,
        slack: float,
    ):
        self.env = env
        self._release = release
        self._levels = levels
        self._series = series
        self._interval = interval
        self._slack = slack
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = 0
        self.size = 0
        self._recorded = -1  # the length last recorded (-1: none yet)
        self.watchers: list[Callable[[int], None]] = []  # called with each new length
        if interval is not None:
            start(env, self._runner(interval))  # as env.process, without a Process

    def hold(self, delivery: Delivery, eligible: float) -> None:
        """Keep ``delivery`` until ``eligible`` (seconds), or the first scan after it."""
        self.size += 1
        self._record()
        if self._interval is None:
            wake = self.env.timeout(max(0.0, eligible - self.env.now))
            wake.callbacks.append(partial(self._wake, delivery))
        else:
            self._seq += 1
            heapq.heappush(self._heap, (eligible, self._seq, delivery))

    def _runner(self, interval: float) -> Step:
        """Scan every ``interval`` seconds from t=0 (as qmgr does): a generator stepped
        on the event list (``stepping``), one event a scan."""
        env = self.env
        heap = self._heap
        while True:
            horizon = env.now + self._slack
            while heap and heap[0][0] <= horizon:
                _, _, delivery = heapq.heappop(heap)
                self.size -= 1
                self._release(delivery)
            self._record()
            yield interval

    def _wake(self, delivery: Delivery, _event: simpy.Event | None = None) -> None:
        self.size -= 1
        self._record()
        self._release(delivery)

    def _record(self) -> None:
        """Record the length where it changed (and at the first scan or hold, which
        starts the series): a scan that releases nothing changes nothing."""
        if self.size == self._recorded:
            return
        self._recorded = self.size
        self._levels.record(self.env.now, self._series, self.size)
        if self.watchers:
            for watch in self.watchers:
                watch(self.size)
