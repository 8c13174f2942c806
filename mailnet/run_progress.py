"""The progress bar of one long run, on stderr: simulated time, messages so far and the
rate at which SimPy processes events.

``simulate`` reports after each slice of simulated time; the bar appears only once a run
has taken ``DELAY_S`` of wall time, so short runs print nothing, and not at all when
disabled (``--quiet``, or stderr is not a terminal).
"""

from __future__ import annotations

import time

import simpy
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mailnet.metric_catalog import format_seconds

DELAY_S = 2.0
"""Wall seconds a run takes before its bar appears."""


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (``processed``)."""

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0

    def step(self) -> None:
        self.processed += 1
        super().step()


class RunProgress:
    """A callable for ``simulate(progress=...)`` drawing the bar of a run of ``duration``
    seconds in ``env``; ``close()`` removes it. ``enabled=False`` shows nothing."""

    def __init__(
        self,
        duration: float,
        env: CountingEnvironment,
        *,
        enabled: bool = True,
        console: Console | None = None,
        delay_s: float = DELAY_S,
    ):
        self.duration = duration
        self.env = env
        self.enabled = enabled
        self.delay_s = delay_s
        self.shown = False
        self._started = time.perf_counter()
        self._bar = Progress(
            TextColumn("[bold]simulating"),
            BarColumn(),
            TextColumn("{task.fields[simulated]} of " + format_seconds(duration)),
            TextColumn("{task.fields[messages]:,} messages"),
            TextColumn("{task.fields[rate]:,.0f} events/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(
            "run", total=duration, simulated=format_seconds(0), messages=0, rate=0.0
        )

    def __call__(self, now: float, messages: int) -> None:
        """Show that the run reached ``now`` (seconds) with ``messages`` created so far."""
        if not self.enabled:
            return
        wall = time.perf_counter() - self._started
        if not self.shown:
            if wall < self.delay_s:
                return
            self._bar.start()
            self.shown = True
        self._bar.update(
            self._task,
            completed=now,
            simulated=format_seconds(now),
            messages=messages,
            rate=self.env.processed / wall if wall > 0 else 0.0,
        )

    def close(self) -> None:
        """Remove the bar (if it was shown)."""
        if self.shown:
            self._bar.stop()
            self.shown = False
