"""The event log: columnar records written by the model, turned into tables at the end.

Components only append here; statistics are computed afterwards (``mailnet.metrics``).
Columns are plain lists or ``array`` buffers, never lists of dicts, so a large run keeps
its log compact: about 100 bytes per attempt row and 20 bytes per queue-level change.
"""

from __future__ import annotations

from array import array

import pandas as pd

from mailnet.message_table import SELF_PREFIX, MessageTable
from mailnet.recorders import AttemptLog, AttemptRecorder, LevelLog, LevelRecorder
from mailnet.tables import OUTCOMES, REPUTATION, STATUSES

__all__ = [
    "OUTCOMES",
    "SELF_PREFIX",
    "STATUSES",
    "AttemptLog",
    "EventLog",
    "LevelLog",
    "MessageTable",
    "ScoreLog",
]


class ScoreLog:
    """Samples of each receiver's reputation score for each sending address (kind ``ip``)
    and each authenticated sending domain (kind ``domain``)."""

    def __init__(self):
        self.time = array("d")
        self.receiver: list[str] = []
        self.kind: list[str] = []
        self.key: list[str] = []
        self.score = array("d")

    def record(self, t: float, receiver: str, kind: str, key: str, score: float) -> None:
        self.time.append(t)
        self.receiver.append(receiver)
        self.kind.append(kind)
        self.key.append(key)
        self.score.append(score)

    def frame(self) -> pd.DataFrame:
        return REPUTATION.frame(
            {
                "time": self.time,
                "receiver": self.receiver,
                "kind": self.kind,
                "key": self.key,
                "score": self.score,
            }
        )


class EventLog:
    """Everything a run records: messages, attempts, queue levels, reputation scores."""

    def __init__(self):
        self.messages = MessageTable()
        self.attempts: AttemptRecorder = AttemptLog()
        # the model sees a recorder of levels: a summary-only run gives it one that folds
        self.levels: LevelRecorder = LevelLog()
        self.scores = ScoreLog()
