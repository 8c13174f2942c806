"""The event log of a run that streams its tables to Parquet as it goes
(``simulate(..., tables_dir=DIR)``, ``mailnet run``).

Each table's final rows go to a spool file (``streaming_spool``) a row group of
``ROW_GROUP`` rows at a time, so memory holds the rows the model can still change plus a
row group's worth per table, not the whole run. Attempt rows, queue-level changes and
reputation samples are final when recorded. A messages row is final once it is settled
and the model has finished writing it (at the next row added, as in
``streaming.FoldingTable``), or at the end of the run; rows are written in creation order,
so a final row waits for every row created before it. A recipient that stays queued for
days would hold the rows created after it until it settles: once they are ``SPILL_AT``
rows they go to disk as a sorted run, and the runs are merged back into creation order at
the end (``streaming_spool.merge_runs``). ``SpoolingLog.finish`` writes each spool into
``<name>.parquet``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from mailnet.cohort import CohortFold
from mailnet.message_table import COLUMNS
from mailnet.metrics import Summary
from mailnet.records import AttemptLog, MessageTable, ScoreLog
from mailnet.scenario import Scenario
from mailnet.streaming import FoldingAttempts, FoldingLevels, FoldingTable, StreamingLog
from mailnet.streaming_spool import LevelSpool, TableSpool
from mailnet.streaming_summary import RowFold, SessionFold
from mailnet.tables import ATTEMPTS, MESSAGES, REPUTATION
from mailnet.timeseries import Settling

ROW_GROUP = 16_384
"""Rows per row group. Each table buffers up to this many final rows as Python objects
and converts them to pandas and Arrow at once: in the 1-day baseline the run's peak RSS is
253 MB with 16,384 rows against 316 MB with 65,536 (150 MB summary-only), while Parquet's
per-group overhead stays small (a few hundred bytes a column per group)."""

SPILL_AT = 4 * ROW_GROUP
"""Final messages rows held behind a row still open (a recipient queued for hours or
days) that are spilled to disk as one sorted run rather than kept in memory: each holds
its columns as Python objects, about 1 KB a row."""

CHECK_EVERY = 1024
"""Messages rows, or attempt rows, added between two checks of the append-only tables'
buffers: a check per row would cost more than it saves; in the baseline 1,024 messages
rows bring about 7,000 queue changes and 1,000 attempt rows, far under a row group, and
attempt rows go on coming when the mail has stopped and its queues are retried.
Reputation samples, which come whatever the mail, check their own buffer."""

STREAMED = ("messages", "attempts", "queues", "reputation")
"""The tables a streamed run writes as it goes (the others are small, written at the end)."""


class SpooledMessages(FoldingTable):
    """A summary-only ``FoldingTable`` that also copies each row out as it folds it (once
    final, before its slot is reused); final rows go to the spool in creation order.

    What it held, for a look at its memory: ``flushes`` during the run, the most final
    rows buffered at one of them (``most_buffered``), and the most kept in memory after
    one, behind a row still open (``most_held``: under ``SPILL_AT``)."""

    def __init__(
        self,
        fold: RowFold,
        served: set[str],
        cohort: CohortFold,
        spool: TableSpool,
        check: Callable[[], None],
    ):
        super().__init__(fold, served, cohort)
        self._spool = spool
        self._check = check
        self._open: dict[int, int] = {}  # slot -> creation rank, rows not final yet
        self._next_flush = ROW_GROUP
        self.flushes = 0  # during the run (the one at its end not counted)
        self.most_buffered = 0  # final rows in memory at a flush during the run
        self.most_held = 0  # final rows kept after a flush, behind a row still open
        self._new_buffer()

    def _new_buffer(self, keep: list[int] | None = None) -> None:
        """Final rows waiting to be written: ``keep`` (positions in the old buffer)."""
        if not keep:
            self._done: dict[str, list] = {name: [] for name in COLUMNS}
            self._rank: list[int] = []
        else:
            self._done = {name: [self._done[name][i] for i in keep] for name in COLUMNS}
            self._rank = [self._rank[i] for i in keep]
        self._copy = [(getattr(self, name), self._done[name]) for name in COLUMNS]

    # the MessageTable.add signature: one positional argument per column
    def add(  # noqa: PLR0917
        self,
        message_id: int,
        recipient: str,
        sender: str,
        sender_class: str,
        provider: str,
        domain: str,
        is_dsn: bool,
        created_at: float,
        sender_domain: str = "",
    ) -> int:
        row = super().add(
            message_id,
            recipient,
            sender,
            sender_class,
            provider,
            domain,
            is_dsn,
            created_at,
            sender_domain,
        )
        rank = self.created - 1
        self._open[row] = rank
        if not rank % CHECK_EVERY:
            self._check()
        return row

    def fold_settled(self) -> None:
        super().fold_settled()
        if len(self._rank) >= self._next_flush:
            self.flushes += 1
            self.most_buffered = max(self.most_buffered, len(self._rank))
            self._flush()

    def _free_slots(self, rows: list[int]) -> None:
        for row in rows:
            for column, done in self._copy:
                done.append(column[row])
            self._rank.append(self._open.pop(row))
        self._clear_stale(rows)
        super()._free_slots(rows)

    def _flush(self) -> None:
        """Write the final rows created before the oldest row still open, in creation
        order, a row group at a time; keep the others, or once they are ``SPILL_AT`` rows
        or more (held behind a recipient queued for days), spill them to the spool as a
        sorted run, merged back in order at the end."""
        rank = self._rank
        frontier = min(self._open.values()) if self._open else math.inf
        order = sorted(range(len(rank)), key=rank.__getitem__)
        ready = next((i for i, k in enumerate(order) if rank[k] > frontier), len(order))
        for frame, ranks in self._frames(order[:ready]):
            self._spool.write(frame, ranks)
        held = order[ready:]
        if len(held) >= SPILL_AT:
            self._spool.spill(self._frames(held))
            held = []
        self.most_held = max(self.most_held, len(held))
        if len(held) < len(order):  # rows were written or spilled
            self._new_buffer(held)
        self._next_flush = len(self._rank) + ROW_GROUP

    def _frames(self, rows: list[int]) -> Iterator[tuple[pd.DataFrame, list[int]]]:
        """The buffered rows at ``rows`` (positions, in order) as frames of at most a row
        group of equal sizes, each with its rows' ranks."""
        if not rows:
            return
        size = math.ceil(len(rows) / math.ceil(len(rows) / ROW_GROUP))
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            chunk = MessageTable()
            for name in COLUMNS:
                values = self._done[name]
                column = getattr(chunk, name)  # a list, or an array of its type
                taken = [values[k] for k in part]
                setattr(
                    chunk, name, array(column.typecode, taken) if type(column) is array else taken
                )
            chunk._rows = len(part)
            yield chunk.frame(), [self._rank[k] for k in part]

    def finish(self) -> None:
        """At the end of the run every row is final: fold and write them all."""
        super().finish()
        self._flush()


class SpooledAttempts(FoldingAttempts):
    """``FoldingAttempts`` that also buffer each row and write the buffer to the spool a
    row group at a time; every ``CHECK_EVERY`` rows they check the append-only buffers
    (``check``), as new messages rows do: retries go on when no new mail comes."""

    def __init__(
        self,
        rows: RowFold,
        sessions: SessionFold,
        table: FoldingTable,
        spool: TableSpool,
        check: Callable[[], None],
    ):
        super().__init__(rows, sessions, table)
        self._spool = spool
        self._check = check
        self.buffer = AttemptLog()

    def add(self, *row: Any) -> None:
        """One attempt row, positional as in ``AttemptLog.add``: buffered, then folded."""
        self.buffer.add(*row)
        super().add(*row)
        if not self.rows % CHECK_EVERY:  # ``rows``: counted by the fold
            self._check()

    def buffered(self) -> int:
        return len(self.buffer)

    def flush(self) -> None:
        if len(self.buffer):
            self._spool.write(self.buffer.frame())
            self.buffer = AttemptLog()


class SpooledScores(ScoreLog):
    """A ``ScoreLog`` whose samples go to its spool a row group at a time, whatever the
    mail: samples go on when none comes."""

    def __init__(self, spool: TableSpool):
        super().__init__()
        self._spool = spool

    def record(self, t: float, receiver: str, kind: str, key: str, score: float) -> None:
        super().record(t, receiver, kind, key, score)
        if len(self.time) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if len(self):
            self._spool.write(self.frame())
            ScoreLog.__init__(self)

    def __len__(self) -> int:
        return len(self.time)


class SpooledLevels(FoldingLevels):
    """``FoldingLevels`` that also buffer each change and write the buffer to the spool
    a row group at a time; the series stay registered here."""

    def __init__(self, warmup: float, end: float, path: Path):
        super().__init__(warmup, end)
        self.spool = LevelSpool(path, self._keys)
        # plain lists: an append costs several times less than an ``array``'s, and the
        # buffer holds at most a row group
        self.time: list[float] = []
        self.series: list[int] = []
        self.value: list[int] = []

    def record(self, t: float, series: int, value: int) -> None:
        super().record(t, series, value)
        self.time.append(t)
        self.series.append(series)
        self.value.append(value)

    def buffered(self) -> int:
        return len(self.time)

    def flush(self) -> None:
        if len(self.time):
            self.spool.write_levels(self.time, self.series, self.value)
            self.time, self.series, self.value = [], [], []


class SpoolingLog(StreamingLog):
    """The event log of a streamed run: a summary-only log (``streaming.StreamingLog``:
    the summary folded as the run goes) whose recorders also write every final row to a
    spool in ``directory``, and ``<name>.parquet`` at the end."""

    def __init__(self, scenario: Scenario, directory: Path):
        super().__init__(scenario)
        sim = scenario.simulation
        served = {domain for p in scenario.providers.values() for domain in p.local_domains}
        spools = {
            t.name: TableSpool(
                t, directory / f".{t.name}.spool", ranked=t is MESSAGES, group_rows=ROW_GROUP
            )
            for t in (MESSAGES, ATTEMPTS, REPUTATION)
        }
        self.directory = directory
        self.messages = SpooledMessages(
            self.fold, served, self.cohort, spools["messages"], self._check
        )
        self.attempts = self._attempts = SpooledAttempts(
            self.fold, self.sessions, self.messages, spools["attempts"], self._check
        )
        self.levels = self._levels = SpooledLevels(
            sim.warmup, sim.duration, directory / ".queues.spool"
        )
        self.scores = self._scores = SpooledScores(spools["reputation"])
        self._spools = {**spools, "queues": self._levels.spool}

    def _check(self) -> None:
        """Flush each append-only table whose buffer holds a row group."""
        if self._attempts.buffered() >= ROW_GROUP:
            self._attempts.flush()
        if self._levels.buffered() >= ROW_GROUP:
            self._levels.flush()
        if len(self._scores) >= ROW_GROUP:
            self._scores.flush()

    def summary(self, listings) -> tuple[Summary, Settling]:
        """``StreamingLog.summary``, after which every table is written to
        ``<name>.parquet`` in the directory."""
        out = super().summary(listings)
        self._attempts.flush()
        self._levels.flush()
        self._scores.flush()
        for name in STREAMED:
            self._spools[name].finish(self.directory / f"{name}.parquet")
        return out
