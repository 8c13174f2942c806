"""The event log of a run that streams its tables to Parquet as it goes
(``simulate(..., tables_dir=DIR)``, ``mailnet run``).

Each table's final rows go to a spool file (``streaming_spool``) a row group of
``ROW_GROUP`` rows at a time, so memory holds the rows the model can still change plus a
row group's worth per table, not the whole run. Attempt rows, queue-level changes and
reputation samples are final when recorded. A messages row is final once it is settled
and the model has finished writing it (at the next row added, as in
``streaming.FoldingTable``), or at the end of the run; rows are written in creation order,
so a final row waits for every row created before it (a recipient that stays queued for
days holds the rows created after it until it settles). ``SpoolingLog.finish`` writes
each spool into ``<name>.parquet``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from pathlib import Path

from mailnet.records import AttemptLog, LevelLog, MessageTable, ScoreLog
from mailnet.streaming_spool import LevelSpool, TableSpool
from mailnet.tables import ATTEMPTS, MESSAGES, REPUTATION

ROW_GROUP = 65_536
"""Rows per row group. A buffered messages row takes about 250 bytes of Python lists, so
a full buffer is about 16 MB (an attempt row about 100 bytes, a queue change 24): large
enough that Parquet's per-group overhead and each flush's conversion to pandas cost
little per row, small enough to be a small part of a run's memory."""

CHECK_EVERY = 1024
"""Messages rows added between two checks of the append-only tables' buffers: a check per
row would cost more than it saves; in the baseline 1,024 rows bring about 7,000 queue
changes and 1,000 attempt rows, far under a row group."""

STREAMED = ("messages", "attempts", "queues", "reputation")
"""The tables a streamed run writes as it goes (the others are small, written at the end)."""

COLUMNS = (
    "message_id",
    "recipient",
    "sender",
    "sender_class",
    "provider",
    "recipient_domain",
    "is_dsn",
    "created_at",
    "sender_domain",
    "delivered_at",
    "retrieved_at",
    "released_at",
    "status",
    "attempts",
    "final_code",
    "final_enhanced_code",
    "folder",
    "collateral_cause",
    "self_inflicted_cause",
    "final_reply",
    "stored_by",
    "dsn_of",
    "dsn_kind",
    "dsn_recipient",
)
"""``MessageTable``'s columns, as its attributes hold them."""


class SpooledMessages(MessageTable):
    """A ``MessageTable`` whose row indices are slots, reused once a row is final and
    copied out; final rows go to the spool in creation order."""

    def __init__(self, spool: TableSpool, check: Callable[[], None]):
        super().__init__()
        self._spool = spool
        self._check = check
        self._free: list[int] = []
        self._settled: list[int] = []
        self._open: dict[int, int] = {}  # slot -> creation rank, rows not final yet
        self._created = 0
        self._last_message = -1
        self._next_flush = ROW_GROUP
        self._new_buffer()

    def _new_buffer(self, keep: list[int] | None = None) -> None:
        """Final rows waiting to be written: ``keep`` (positions in the old buffer)."""
        old = getattr(self, "_done", None)
        if old is None or not keep:
            self._done: dict[str, list] = {name: [] for name in COLUMNS}
            self._rank: list[int] = []
        else:
            self._done = {name: [old[name][i] for i in keep] for name in COLUMNS}
            self._rank = [self._rank[i] for i in keep]
        self._copy = [(getattr(self, name), self._done[name]) for name in COLUMNS]

    # the MessageTable.add signature: one positional argument per column
    def add(  # noqa: PLR0917
        self,
        message_id,
        recipient,
        sender,
        sender_class,
        provider,
        domain,
        is_dsn,
        created_at,
        sender_domain="",
    ) -> int:
        if self._settled:
            self._take_settled()
        rank = self._created
        self._created = rank + 1
        self._last_message = message_id
        if not rank % CHECK_EVERY:
            self._check()
        if not self._free:
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
        else:
            row = self._free.pop()
            self.message_id[row] = message_id
            self.recipient[row] = recipient
            self.sender[row] = sender
            self.sender_class[row] = sender_class
            self.provider[row] = provider
            self.recipient_domain[row] = domain
            self.is_dsn[row] = is_dsn
            self.created_at[row] = created_at
            self.sender_domain[row] = sender_domain
        self._open[row] = rank
        return row

    def settle(self, row: int, status: str, code: int, enhanced: str, text: str = "") -> None:
        super().settle(row, status, code, enhanced, text)
        self._settled.append(row)

    def created_messages(self) -> int:
        return self._last_message + 1

    def _take_settled(self) -> None:
        settled, self._settled = self._settled, []
        for row in settled:
            self._take(row)
        if len(self._rank) >= self._next_flush:
            self._flush()

    def _take(self, row: int) -> None:
        """Copy a final row out and free its slot."""
        for column, done in self._copy:
            done.append(column[row])
        self._rank.append(self._open.pop(row))
        self.delivered_at[row] = math.nan
        self.retrieved_at[row] = math.nan
        self.released_at[row] = math.nan
        self.status[row] = "in_queue"
        self.attempts[row] = 0
        self.final_code[row] = 0
        self.final_enhanced_code[row] = ""
        self.folder[row] = None
        self.collateral_cause[row] = None
        self.self_inflicted_cause[row] = None
        self.final_reply[row] = None
        self.stored_by[row] = None
        self.dsn_of[row] = None
        self.dsn_kind[row] = None
        self.dsn_recipient[row] = None
        self._free.append(row)

    def _flush(self) -> None:
        """Write the final rows created before the oldest row still open, in creation
        order; keep the others."""
        rank = self._rank
        frontier = min(self._open.values()) if self._open else math.inf
        order = sorted(range(len(rank)), key=rank.__getitem__)
        ready = next((i for i, k in enumerate(order) if rank[k] > frontier), len(order))
        if ready:
            chunk = MessageTable()
            for name in COLUMNS:
                values = self._done[name]
                setattr(chunk, name, [values[k] for k in order[:ready]])
            chunk._rows = ready
            self._spool.write(chunk.frame())
            self._new_buffer(order[ready:])
        self._next_flush = len(self._rank) + ROW_GROUP

    def finish(self) -> None:
        """At the end of the run every row is final: write them all."""
        self._take_settled()
        for row in list(self._open):
            self._take(row)
        self._flush()

    def frame(self):
        raise TypeError("a streamed run's messages are in its messages.parquet")


class SpooledAttempts(AttemptLog):
    """An ``AttemptLog`` whose rows go to its spool a row group at a time."""

    def __init__(self, spool: TableSpool):
        super().__init__()
        self._spool = spool

    def flush(self) -> None:
        if len(self):
            self._spool.write(self.frame())
            AttemptLog.__init__(self)  # fresh buffers; the model holds this object only


class SpooledScores(ScoreLog):
    """A ``ScoreLog`` whose samples go to its spool a row group at a time."""

    def __init__(self, spool: TableSpool):
        super().__init__()
        self._spool = spool

    def flush(self) -> None:
        if len(self):
            self._spool.write(self.frame())
            ScoreLog.__init__(self)

    def __len__(self) -> int:
        return len(self.time)


class SpooledLevels(LevelLog):
    """A ``LevelLog`` whose changes go to its spool a row group at a time; the series
    stay registered here."""

    def __init__(self, path: Path):
        super().__init__()
        self.spool = LevelSpool(path, self)

    def flush(self) -> None:
        if len(self):
            self.spool.write_levels(self.time, self.series, self.value)
            self.time, self.series, self.value = array("d"), array("l"), array("l")

    def __len__(self) -> int:
        return len(self.time)


class SpoolingLog:
    """The event log of a streamed run: the recorders of ``records.EventLog``, each
    writing its final rows to a spool in ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory
        spools = {
            t.name: TableSpool(t, directory / f".{t.name}.spool")
            for t in (MESSAGES, ATTEMPTS, REPUTATION)
        }
        self.attempts = SpooledAttempts(spools["attempts"])
        self.levels = SpooledLevels(directory / ".queues.spool")
        self.scores = SpooledScores(spools["reputation"])
        self.messages = SpooledMessages(spools["messages"], self._check)
        self._spools = {**spools, "queues": self.levels.spool}

    def _check(self) -> None:
        """Flush each append-only table whose buffer holds a row group."""
        for log in (self.attempts, self.levels, self.scores):
            if len(log) >= ROW_GROUP:
                log.flush()

    def finish(self) -> dict[str, Path]:
        """Write every row left, then each table to ``<name>.parquet`` in the directory;
        return the files by table name."""
        self.messages.finish()
        for log in (self.attempts, self.levels, self.scores):
            log.flush()
        files = {}
        for name in STREAMED:
            files[name] = self.directory / f"{name}.parquet"
            self._spools[name].finish(files[name])
        return files
