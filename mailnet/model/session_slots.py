"""An MX host's session slots: ``capacity`` sessions at once, further connections wait FIFO.

The grants, releases and their events are those of ``simpy.Resource`` (SimPy 4.1), kept
exactly so that the run's event order does not change: a request joins the queue and the
first waiter is granted if a slot is free; a grant is an event now; a release frees the
slot at once and, from an event now, grants the first waiter if a slot is free. Only the
first waiter is ever granted at one of these points, as in SimPy. What is left out: the
request and release objects, the user list and the empty get queue.

Two of those events are left out too where they cannot change anything (``take`` and
``release``): when nothing else is on the event list for the current time, the grant event
would be the very next one processed, so the session goes on at once; and a release with
nobody waiting schedules nothing, for its event could only grant a waiter that arrived
before it, and a waiter arrives only at an event already on the list for this time or one
scheduled after the release (a connection's end, after the release's own event). Event
ids stay in the same order, so the run's order of events, draws and rows is unchanged;
only the count of events falls (two per session on an idle server).
"""

from __future__ import annotations

from collections import deque

import simpy
from simpy.core import NORMAL

from mailnet.model.stepping import Call, Schedule


class SessionSlots:
    """``capacity`` session slots; ``count`` in use, ``queue`` the waiting grants."""

    __slots__ = ("_env", "_schedule", "capacity", "count", "queue")

    def __init__(self, env: simpy.Environment, capacity: int):
        self._env = env
        # bound once: a method of the interpreted environment is looked up by name per call
        self._schedule: Schedule = env.schedule  # type: ignore[assignment]
        self.capacity = capacity
        self.count = 0
        self.queue: deque[Call] = deque()

    def take(self) -> Call | None:
        """A slot now, without an event (``None``) when the grant event would be the next
        one processed anyway; otherwise the grant to wait for (``request``)."""
        if not self.queue and self.count < self.capacity and self._quiet():
            self.count += 1
            return None
        return self.request()

    def request(self) -> Call:
        """A grant to wait for: scheduled now if a slot is free, else when one frees."""
        grant = Call()
        self.queue.append(grant)
        self.grant_first()
        return grant

    def release(self) -> None:
        """Free a slot now; the first waiter is granted from an event now."""
        self.count -= 1
        if self.queue or not self._quiet():
            self._schedule(Call(self._released), NORMAL, 0)

    def grant_first(self) -> None:
        """Grant the first waiter if a slot is free (SimPy's ``_trigger_put``)."""
        if self.queue and self.count < self.capacity:
            self.count += 1
            self._schedule(self.queue.popleft(), NORMAL, 0)

    def _released(self, _event: object) -> None:
        self.grant_first()

    def _quiet(self) -> bool:
        """Whether no event is scheduled for the current time (SimPy's event list is a
        heap of ``(time, priority, id, event)``: its first entry is the earliest)."""
        env = self._env
        events = env._queue
        # a truth value, not the comparison itself: a time given as a NumPy float makes it
        # a NumPy bool, which the compiled model (mailnet.compiled) does not take for bool
        return True if not events or events[0][0] > env._now else False  # noqa: SIM210
