"""The queue-level recorder: a step-function time series per queue, appended on every
change. Compiled with the model (``make compiled``): the model records a level on every
session and queue change, several times a message."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from mailnet.tables import QUEUES


class LevelRecorder(Protocol):
    """What the model records levels through: ``LevelLog`` keeps them for the queues
    table; a summary-only or streamed run folds them instead."""

    def series_id(self, kind: str, entity: str, metric: str) -> int: ...

    def record(self, t: float, series: int, value: int) -> None: ...


class LevelLog:
    """Step-function time series: ``(time, entity, metric, value)`` on every change.

    Changes are appended to plain lists, several times cheaper per item than an
    ``array`` (whose append parses its argument as a C value); every ``CHUNK`` changes
    the lists become numpy arrays, so a long run keeps 24 bytes per change."""

    CHUNK = 8192

    def __init__(self) -> None:
        self._time: list[float] = []
        self._series: list[int] = []
        self._value: list[int] = []
        self._sealed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._keys: list[tuple[str, str, str]] = []
        self._index: dict[tuple[str, str, str], int] = {}

    def series_id(self, kind: str, entity: str, metric: str) -> int:
        """Register a series (e.g. ``("mta", "isp", "deferred")``) and return its id."""
        key = (kind, entity, metric)
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)
        return self._index[key]

    def record(self, t: float, series: int, value: int) -> None:
        time = self._time
        time.append(t)
        self._series.append(series)
        self._value.append(value)
        if len(time) == self.CHUNK:
            self._seal()

    def _seal(self) -> None:
        self._sealed.append(
            (
                np.array(self._time, dtype=np.float64),
                np.array(self._series, dtype=np.int64),
                np.array(self._value, dtype=np.int64),
            )
        )
        self._time, self._series, self._value = [], [], []

    def __len__(self) -> int:
        return sum(len(sealed[0]) for sealed in self._sealed) + len(self._time)

    def frame(self) -> pd.DataFrame:
        self._seal()
        time, ids, value = (np.concatenate(c) for c in zip(*self._sealed, strict=True))
        self._sealed = [(time, ids, value)]  # the same rows, once more than CHUNK apart
        keys = self._keys
        kinds = [k[0] for k in keys]
        entities = [k[1] for k in keys]
        metrics = [k[2] for k in keys]
        return QUEUES.frame(
            {
                "time": time,
                "kind": pick(kinds, ids),
                "entity": pick(entities, ids),
                "metric": pick(metrics, ids),
                "value": value,
            }
        )


def pick(labels: list[str], ids: np.ndarray) -> pd.Categorical[Any]:
    """The categorical of ``labels[i]`` for each id ``i`` of ``ids``."""
    if not labels:
        return pd.Categorical([])
    categories = sorted(set(labels))
    position = {c: i for i, c in enumerate(categories)}
    codes = np.array([position[label] for label in labels], dtype=np.int64)[ids]
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories))
