"""An MTA's deferred queue: mail waiting for its retry time.

With a queue-run interval (Postfix's queue_run_delay, Exim's -q runner) the queue is
scanned every interval from its start (t=0) and releases what is due by the scan time
plus the policy's slack; without one each entry wakes exactly at its eligible time. The
queue's length is recorded as a level series at every change (and at the first scan).

A scan that finds nothing due changes nothing, yet as an event of its own per MTA it
would be a large share of a large world's events: the generated internet at 20,000 users
has about 990 MTAs, which would scan 284,000 times a day and find mail due a few hundred
times. So the queues that share an interval share a :class:`ScanClock`, three events a
tick, which gives a scan event only to the queues with mail due, in the order their own
scan events would have run.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from functools import partial

import simpy
from simpy.core import URGENT

from mailnet.model.message import Delivery
from mailnet.model.stepping import Call, call_later
from mailnet.recorders import LevelRecorder

LATE = 0.5
"""The priority of a late scan: after every urgent event at its instant (the attempts the
scan before it started), before every normal one (the next scan)."""


class ScanClock:
    """The ticks ``start, start + interval, ...`` (seconds) of the deferred queues that
    were started together with one queue-run interval.

    Each queue's own periodic scan would be an event, and at a tick those events ran
    one after another in the order the queues joined, each tick's after the ticks
    scheduled before it, the attempts each scan releases (``URGENT``) in between. The
    clock keeps that order with fewer events: at a tick it schedules (``NORMAL``, no
    delay) the tick's beginning, a scan for every queue with mail due, and the tick's
    end. A queue with nothing due is not scanned, as its scan would change nothing,
    unless mail already due is held in it during the tick before its turn (``turn``:
    the index of the latest queue scanned or passed): that queue is scanned where its
    own scan came, after the urgent events of the scan before it (priority ``LATE``).
    """

    def __init__(self, env: simpy.Environment, interval: float):
        self.env = env
        self.interval = interval
        self.queues: list[DeferredQueue] = []
        self.tick_at = -math.inf  # the time of the latest tick
        self.begun = False  # whether the latest tick's scans have begun
        self.turn = -1
        self._due: list[DeferredQueue] = []  # this tick's scans, in order
        self._next = 0  # the position in ``_due`` of the next scan
        self._late: list[DeferredQueue] = []  # skipped queues given mail due at the tick
        self._late_event = False  # a late scan is on the event list
        self._started = False

    def join(self, queue: DeferredQueue) -> int:
        """Add ``queue`` (in the order of its own first scan); returns its index."""
        self.queues.append(queue)
        return len(self.queues) - 1

    def start(self) -> None:
        """Schedule the first tick, ``interval`` after the first queue's first scan."""
        if not self._started:
            self._started = True
            call_later(self.env, self.interval, self._tick)

    def late(self, queue: DeferredQueue) -> None:
        """``queue``, skipped at this tick and not yet passed, now has mail due."""
        self._late.append(queue)
        self._schedule_late()

    def scanned(self, queue: DeferredQueue) -> None:
        """``queue`` was scanned at this tick (its turn in the order)."""
        self.turn = queue.turn
        self._schedule_late()

    def _tick(self, _event: object = None) -> None:
        env = self.env
        now = env.now
        self.tick_at = now
        self.begun = False
        self.turn = -1
        due = self._due = []
        self._next = 0
        call_later(env, 0.0, self._begin)
        for queue in self.queues:
            heap = queue.heap
            if heap and heap[0][0] <= now + queue.slack:
                due.append(queue)
                queue.scan_soon()
        call_later(env, 0.0, self._end)
        call_later(env, self.interval, self._tick)

    def _begin(self, _event: object = None) -> None:
        self.begun = True
        self._schedule_late()

    def _end(self, _event: object = None) -> None:
        self.turn = len(self.queues)

    def _upcoming(self) -> int:
        """The index of the next queue with a scan scheduled at this tick (or the end)."""
        due = self._due
        while self._next < len(due) and due[self._next].turn <= self.turn:
            self._next += 1
        return due[self._next].turn if self._next < len(due) else len(self.queues)

    def _schedule_late(self) -> None:
        if (
            self._late
            and self.begun
            and not self._late_event
            and min(q.turn for q in self._late) < self._upcoming()
        ):
            self._late_event = True
            self.env.schedule(Call(self._scan_late), LATE, 0)  # type: ignore[arg-type]

    def _scan_late(self, _event: object = None) -> None:
        self._late_event = False
        queue = min(self._late, key=lambda q: q.turn)
        self._late.remove(queue)
        queue.scan()
        self.scanned(queue)


class ScanClocks:
    """One :class:`ScanClock` per queue-run interval and start time, made on first use."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._clocks: dict[tuple[float, float], ScanClock] = {}

    def get(self, interval: float) -> ScanClock:
        """The clock of the queues with ``interval`` (seconds) that start now."""
        key = (interval, self.env.now)
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = ScanClock(self.env, interval)
        return clock


class DeferredQueue:
    """Deliveries held until their retry time, then handed to ``release``.

    ``interval`` and ``slack`` are seconds; ``series`` is the level series (registered
    by the owner) that records the queue length; ``clocks`` gives the scan clock that a
    queue with an interval shares with the others of that interval.
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
        clocks: ScanClocks,
    ):
        self.env = env
        self._release = release
        self._levels = levels
        self._series = series
        self._interval = interval
        self.slack = slack
        self.heap: list[tuple[float, int, Delivery]] = []
        self._seq = 0
        self.size = 0
        self._recorded = -1  # the length last recorded (-1: none yet)
        self.watchers: list[Callable[[int], None]] = []  # called with each new length
        self.scan_due = False  # a scan of this queue is to come at this instant
        if interval is not None:
            self._clock = clocks.get(interval)
            self.turn = -1  # the index of this queue on its clock
            # the first scan now, urgent, as a process's start (env.process)
            env.schedule(Call(self._first_scan), URGENT, 0)  # type: ignore[arg-type]

    def hold(self, delivery: Delivery, eligible: float) -> None:
        """Keep ``delivery`` until ``eligible`` (seconds), or the first scan after it."""
        self.size += 1
        self._record()
        if self._interval is None:
            wake = self.env.timeout(max(0.0, eligible - self.env.now))
            wake.callbacks.append(partial(self._wake, delivery))
            return
        self._seq += 1
        heapq.heappush(self.heap, (eligible, self._seq, delivery))
        now = self.env.now
        clock = self._clock
        if (
            not self.scan_due
            and eligible <= now + self.slack
            and clock.tick_at == now
            and self.turn > clock.turn
        ):
            self.scan_due = True  # due at a tick whose scan of this queue is to come
            clock.late(self)

    def scan_soon(self) -> None:
        """Scan at this instant, after the events already scheduled for it."""
        self.scan_due = True
        call_later(self.env, 0.0, self._scheduled_scan)

    def _first_scan(self, _event: object = None) -> None:
        self.turn = self._clock.join(self)
        self._clock.start()
        self.scan()

    def _scheduled_scan(self, _event: object = None) -> None:
        self.scan()
        self._clock.scanned(self)

    def scan(self) -> None:
        """Release what is due by now plus the slack (qmgr's scan), and record the
        length."""
        self.scan_due = False
        horizon = self.env.now + self.slack
        heap = self.heap
        while heap and heap[0][0] <= horizon:
            _, _, delivery = heapq.heappop(heap)
            self.size -= 1
            self._release(delivery)
        self._record()

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
