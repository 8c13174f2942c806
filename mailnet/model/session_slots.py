"""An MX host's session slots: ``capacity`` sessions at once, further connections wait FIFO.

The grants, releases and their events are those of ``simpy.Resource`` (SimPy 4.1), kept
exactly so that the run's event order does not change: a request joins the queue and the
first waiter is granted if a slot is free; a grant is an event now; a release frees the
slot at once and, from an event now, grants the first waiter if a slot is free. Only the
first waiter is ever granted at one of these points, as in SimPy. What is left out: the
request and release objects, the user list and the empty get queue.
"""

from __future__ import annotations

from collections import deque

import simpy
from simpy.core import NORMAL

from mailnet.model.stepping import Call


class SessionSlots:
    """``capacity`` session slots; ``count`` in use, ``queue`` the waiting grants."""

    __slots__ = ("_env", "capacity", "count", "queue")

    def __init__(self, env: simpy.Environment, capacity: int):
        self._env = env
        self.capacity = capacity
        self.count = 0
        self.queue: deque[Call] = deque()

    def request(self) -> Call:
        """A grant to wait for: scheduled now if a slot is free, else when one frees."""
        grant = Call()
        self.queue.append(grant)
        self.grant_first()
        return grant

    def release(self) -> None:
        """Free a slot now; the first waiter is granted from an event now."""
        self.count -= 1
        self._env.schedule(Call(self._released), NORMAL, 0)  # type: ignore[arg-type]

    def grant_first(self) -> None:
        """Grant the first waiter if a slot is free (SimPy's ``_trigger_put``)."""
        if self.queue and self.count < self.capacity:
            self.count += 1
            self._env.schedule(self.queue.popleft(), NORMAL, 0)  # type: ignore[arg-type]

    def _released(self, _event: object) -> None:
        self.grant_first()
