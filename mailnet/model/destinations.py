"""Postfix's destination scheduler (qmgr), without a simulation engine.

Per destination (a recipient domain) a concurrency window starts at
initial_destination_concurrency, grows by the positive feedback per successful session
while the window is nearly full, up to destination_concurrency_limit, and shrinks by the
negative feedback per site-level failure (connection or greeting) to a floor of 1. Each
such failure adds 1/window to the failed pseudo-cohorts; once they reach the
failed_cohort_limit the destination is dead for minimal_backoff_time: its mail is
deferred without a connection ("delivery temporarily suspended"), then the window is
reset (mail-facts.md §1). Per-recipient 4xx and 5xx replies do not throttle. On top of the
windows, at most ``max_connections`` deliveries run at once over all destinations;
destinations that found no free connection wait FIFO for one.

The scheduler is pure state: it decides which queued delivery may start and hands it to
``start(delivery, destination)``; the caller runs it and reports back with
:meth:`DestinationScheduler.done`, :meth:`~DestinationScheduler.failed` or
:meth:`~DestinationScheduler.succeeded`, and revives a dead destination after
``dead_time`` seconds.

An idle destination (no mail queued or in delivery, alive, not waiting for a connection)
is parked: its ``Destination`` object and queue are dropped and only what differs from a
new one is kept (``DestinationScheduler.destination`` restores it on demand), so a large
world's thousands of destinations that see mail now and then hold a few dozen bytes each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from mailnet import smtp
from mailnet.model.message import Delivery
from mailnet.policies.retry import RetryPolicy
from mailnet.scenario import Provider


class Destination:
    """Per-destination state: FIFO of ready mail, the window and its failure count."""

    __slots__ = ("busy", "dead", "fail_cohorts", "name", "reason", "todo", "waiting", "window")

    def __init__(self, name: str, window: float):
        self.name = name
        self.todo: deque[Delivery] = deque()
        self.window = window
        self.busy = 0
        self.fail_cohorts = 0.0
        self.dead = False
        self.waiting = False
        # why the destination is (or was last) dead: its latest connection failure
        self.reason = smtp.SUSPENDED


def dead_time(policy: RetryPolicy) -> float:
    """How long a dead destination stays dead: the retry policy's minimal_backoff_time,
    else Postfix's 300 s."""
    params = getattr(policy, "params", {}) or {}
    return float(params.get("minimal_backoff_time", 300.0))


def postfix_default(name: str) -> Any:
    """The default of MTA parameter ``name``: Postfix's, as ``[providers.NAME]`` gives it."""
    return Provider.model_fields[name].default


Start = Callable[[Delivery, Destination], None]
"""``start(delivery, destination)``: begin one delivery attempt now."""


class DestinationScheduler:
    """Concurrency windows, failed cohorts and dead destinations of one MTA.

    Parameters are Postfix's, named as in ``[providers.NAME]`` (see
    :class:`mailnet.scenario.Provider` for their defaults); ``dead_time`` is how long a
    dead destination stays dead (seconds, Postfix's minimal_backoff_time).
    """

    def __init__(
        self,
        start: Start,
        *,
        max_connections: int,
        destination_concurrency_limit: int,
        initial_destination_concurrency: int,
        failed_cohort_limit: float,
        negative_feedback: float,
        positive_feedback: float,
        dead_time: float,
    ):
        self._start = start
        self.max_connections = max_connections
        self.limit = destination_concurrency_limit
        self.initial = initial_destination_concurrency
        self.failed_cohort_limit = failed_cohort_limit
        self.negative_feedback = negative_feedback
        self.positive_feedback = positive_feedback
        self.dead_time = dead_time
        self.busy = 0
        self._destinations: dict[str, Destination] = {}
        self._waiting: deque[Destination] = deque()
        # parked idle destinations that differ from a new one: their window, or
        # (window, fail_cohorts, reason)
        self._parked: dict[str, float | tuple[float, float, smtp.Reply]] = {}
        # with no failed-cohort limit a destination never dies: its cohorts and its
        # reason are never read, only its window is
        self._immortal = failed_cohort_limit == math.inf

    @classmethod
    def for_provider(
        cls, start: Start, config: Provider, dead_time: float, max_connections: int | None = None
    ) -> DestinationScheduler:
        """The scheduler of ``config``'s MTA (``max_connections`` overrides its own)."""
        return cls(
            start,
            max_connections=config.max_connections if max_connections is None else max_connections,
            destination_concurrency_limit=config.destination_concurrency_limit,
            initial_destination_concurrency=config.initial_destination_concurrency,
            failed_cohort_limit=config.destination_concurrency_failed_cohort_limit,
            negative_feedback=config.destination_concurrency_negative_feedback,
            positive_feedback=config.destination_concurrency_positive_feedback,
            dead_time=dead_time,
        )

    @classmethod
    def for_relay(
        cls, start: Start, max_connections: int, dead_time: float
    ) -> DestinationScheduler:
        """The scheduler of a backup MX or relay: Postfix's defaults (those of
        ``[providers.NAME]``) with its own ``max_connections``."""
        return cls(
            start,
            max_connections=max_connections,
            destination_concurrency_limit=postfix_default("destination_concurrency_limit"),
            initial_destination_concurrency=postfix_default("initial_destination_concurrency"),
            failed_cohort_limit=postfix_default("destination_concurrency_failed_cohort_limit"),
            negative_feedback=postfix_default("destination_concurrency_negative_feedback"),
            positive_feedback=postfix_default("destination_concurrency_positive_feedback"),
            dead_time=dead_time,
        )

    def destination(self, name: str) -> Destination:
        """The state of destination ``name``: created with the initial window, or as it
        was parked."""
        dest = self._destinations.get(name)
        if dest is None:
            dest = self._destinations[name] = Destination(name, self.initial)
            state = self._parked.pop(name, None)
            if isinstance(state, tuple):
                dest.window, dest.fail_cohorts, dest.reason = state
            elif state is not None:
                dest.window = state
        return dest

    def _park(self, dest: Destination) -> None:
        """Drop idle ``dest``, keeping what a new one would not have. Nothing else holds
        it: no delivery is in progress (``busy``), no revive is due (not dead) and it is
        not in the queue for a connection."""
        del self._destinations[dest.name]
        window = dest.window
        if self._immortal or (dest.fail_cohorts == 0.0 and dest.reason is smtp.SUSPENDED):
            if window != self.initial:
                self._parked[dest.name] = window
        else:
            self._parked[dest.name] = (window, dest.fail_cohorts, dest.reason)

    def offer(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` for its domain and start what may start; ``False`` (and
        nothing queued) when the destination is dead."""
        dest = self._destinations.get(delivery.domain) or self.destination(delivery.domain)
        if dest.dead:
            return False
        dest.todo.append(delivery)
        self._dispatch(dest)
        return True

    def done(self, dest: Destination) -> None:
        """An attempt to ``dest`` ended: free its connection and start what may start."""
        dest.busy -= 1
        self.busy -= 1
        self._dispatch(dest)
        if not dest.busy and not dest.todo and not dest.dead and not dest.waiting:
            self._park(dest)
        waiting = self._waiting
        while waiting and self.busy < self.max_connections:
            other = waiting.popleft()
            other.waiting = False
            self._dispatch(other)

    def failed(self, dest: Destination) -> list[Delivery] | None:
        """A site-level failure at ``dest``: shrink the window, count a failed cohort.

        Returns ``None`` while the destination lives; when this failure kills it, the
        mail that was waiting for it (to be deferred without a connection). The caller
        calls :meth:`revive` ``dead_time`` seconds later.
        """
        dest.fail_cohorts += 1.0 / max(dest.window, 1.0)
        dest.window = max(1.0, dest.window - self.negative_feedback)
        if dest.fail_cohorts < self.failed_cohort_limit or dest.dead:
            return None
        dest.dead = True
        held = list(dest.todo)
        dest.todo.clear()
        return held

    def revive(self, dest: Destination) -> None:
        """End a dead period: reset the window and the cohorts, start what may start."""
        dest.dead = False
        dest.window = float(self.initial)  # a float, as every window
        dest.fail_cohorts = 0.0
        self._dispatch(dest)
        if not dest.busy and not dest.todo and not dest.waiting:
            self._park(dest)

    def succeeded(self, dest: Destination) -> None:
        """A session was held: clear the cohorts and widen the window if it is in use."""
        dest.fail_cohorts = 0.0
        if dest.window < self.limit and dest.window < dest.busy + self.initial:
            dest.window = min(self.limit, dest.window + self.positive_feedback)

    def _dispatch(self, dest: Destination) -> None:
        limit = self.max_connections
        start = self._start
        while dest.todo and dest.busy < dest.window and not dest.dead:
            if self.busy >= limit:
                if not dest.waiting:
                    dest.waiting = True
                    self._waiting.append(dest)
                return
            delivery = dest.todo.popleft()
            dest.busy += 1
            self.busy += 1
            start(delivery, dest)
