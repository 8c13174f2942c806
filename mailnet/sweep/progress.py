"""The sweep's progress bar: runs done, runs failed, elapsed time and ETA (on stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SweepProgress:
    """A context manager showing ``done/total`` runs; ``enabled=False`` shows nothing."""

    def __init__(self, total: int, done: int, failed: int, label: str, enabled: bool = True):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed [red]{task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
        )
        self._task = self._bar.add_task(label, total=total, completed=done, failed=failed)
        self._failed = failed

    def __enter__(self) -> SweepProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def advance(self, ok: bool) -> None:
        """Count one finished run."""
        self._failed += not ok
        self._bar.update(self._task, advance=1, failed=self._failed)

    def extend(self, runs: int) -> None:
        """Add ``runs`` to the total (a sequential sweep adding replications)."""
        self._bar.update(self._task, total=(self._bar.tasks[0].total or 0) + runs)

    def note(self, text: str) -> None:
        """Print a line above the bar."""
        if self.enabled:
            self.console.print(text)
