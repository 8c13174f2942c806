"""Plain generators stepped on SimPy's event list, without SimPy processes.

A delivery attempt is a generator that yields a delay (seconds, a ``float``) or a
:class:`Call` that something else will schedule (a session grant), and :data:`DONE` when
it has finished. :func:`start` steps it
from an urgent event now, as ``env.process`` does; each delay is one event, as
``env.timeout`` is. Each event is scheduled with the priority and delay SimPy would give
it, at the same point of the run, so the order of the events, and of every draw and row
they make, is the one SimPy processes give. What this saves per attempt (des-performance.md
§1: about 12 us per SimPy process): the ``Process``, its ``Initialize`` and ``Timeout``
objects, the exception handling of ``Process._resume``, and the exit event nobody waits
for.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy
from simpy.core import NORMAL, URGENT

Step = Generator["float | Call", None, Any]
"""A generator yielding delays (seconds) and :class:`Call` events to wait for."""


class Call:
    """The leanest event ``env.step`` processes: callbacks, always successful."""

    __slots__ = ("_ok", "callbacks")

    def __init__(self, callback: Callable[[Any], None] | None = None):
        self._ok = True
        self.callbacks: list[Callable[[Any], None]] | None = [] if callback is None else [callback]


def call_later(env: simpy.Environment, delay: float, callback: Callable[[Any], None]) -> None:
    """Call ``callback(event)`` after ``delay`` seconds, as a ``Timeout`` with that callback."""
    env.schedule(Call(callback), NORMAL, delay)  # type: ignore[arg-type]


Schedule = Callable[[Any, int, float], None]
"""An environment's ``schedule`` method, bound: ``(event, priority, delay)``."""


def start(env: simpy.Environment, generator: Step) -> Stepper:
    """Step ``generator`` from an urgent event now (as ``env.process`` does)."""
    return launch(env.schedule, generator)  # type: ignore[arg-type]


def launch(schedule: Schedule, generator: Step) -> Stepper:
    """``start``, with the environment's ``schedule`` bound once by a caller that starts
    a generator per message (binding it costs an attribute lookup and an object)."""
    stepper = Stepper(schedule, generator)
    stepper.callbacks = _RESUME  # Stepper.schedule, inlined: once per delivery attempt
    schedule(stepper, URGENT, 0)
    return stepper


class Stepper:
    """Resumes one generator at each of its events; it ends with the generator, or when
    stopped. Its delays and its start are the stepper itself on the event list (it waits
    for one event at a time), so a step allocates nothing."""

    __slots__ = ("_ok", "_schedule", "_send", "callbacks")

    def __init__(self, schedule: Schedule, generator: Step):
        self._ok = True
        self._schedule = schedule
        self._send = generator.send
        self.callbacks: tuple[Callable[[Any], None], ...] | None = None

    def schedule(self, priority: int, delay: float) -> None:
        self.callbacks = _RESUME
        self._schedule(self, priority, delay)

    def resume(self, _event: Any = None) -> None:
        try:
            wait = self._send(None)
        except StopIteration:
            return
        if type(wait) is Call:  # a type test, where __class__ is a generic attribute
            if wait is DONE:
                return  # the generator is left where it ended; it goes with the stepper
            wait.callbacks.append(self.resume)  # type: ignore[union-attr]
        else:
            self.callbacks = _RESUME
            self._schedule(self, NORMAL, wait)  # type: ignore[arg-type]

    def stop(self) -> None:
        """End the generator now: the event it waits for, when it comes, does nothing.
        (Where a SimPy process is interrupted, the interruption and the process's end are
        events that change nothing else, so leaving them out keeps the run's order.)"""
        self._send = _ended


DONE = Call()
"""Yielded last by a generator that runs once per message (a delivery attempt): it ends
there without raising ``StopIteration``, which compiled code catches at the cost of a
traceback (about 4,000 instructions). A generator may still just return."""

_RESUME = (Stepper.resume,)  # env.step calls it with the event: the stepper itself


def _ended(_value: None) -> Any:
    raise StopIteration
