"""Spool files: a streamed run's rows on disk while it goes (``streaming_tables``).

A ``TableSpool`` appends final rows to a Parquet file beside the run's files, one row
group per flush, each categorical column with that group's own categories. Rows that
cannot be written in order yet (messages rows created after a recipient still queued) can
be spilled to a second file as sorted runs, and are merged back in order at the end.
``finish`` rewrites the spool into ``<name>.parquet`` one row group at a time, each categorical
column with one set of categories for the whole file (the declared ones, else the sorted
values seen in the run), so ``pd.read_parquet`` gives back the table that writing the
run's frame at once (``output.write_run``) gives: columns, dtypes, values, order and
categories.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mailnet.recorders import pick
from mailnet.tables import QUEUES, TABLES, Column, Table

_SPOOL_TYPES = {
    "float64": pa.float64(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "bool": pa.bool_(),
    "category": pa.dictionary(pa.int32(), pa.string()),
}


THREADS = False
"""Whether Arrow converts and reads a row group's columns on threads. It does not: a row
group is 16,384 rows, too few for threads to pay, and the memory each thread's allocator
keeps raised the peak RSS of a streamed run (internet at 400,000 users, 500,196 messages:
565 MB with threads, 523 MB without, and the messages table written in 6.8 s, not 9.2)."""

SPILL_GROUP = 2048
"""Rows per row group of a spilled run. The merge at the end holds one row group of every
run at once: small groups keep that small however many runs a long backlog made."""

RANK = "_rank"
"""The column of a ranked spool's rows giving their place in the final table (creation
order); it is not written to the final file."""

PRUNE_BYTES = 1 << 20
"""Text above which a categorical column's categories are not repeated in every row group
of the final file: Parquet keeps a dictionary per row group, so the file and the time to
write it grow as row groups times categories."""


class TableSpool:
    """One table's final rows, as row groups of a Parquet spool file.

    A categorical column is stored with each row group's own categories; the values seen
    are collected so that ``finish`` can give the file one set of categories. A column
    whose categories are more than ``PRUNE_BYTES`` of text (the addresses of millions of
    users) keeps each row group's own, sorted: repeating them all in every row group made
    a 5-million-message run's messages file grow past 4 GB, and its writing take longer
    than the run. Such a column stops collecting its values once they pass that size, so
    the spool holds at most ``PRUNE_BYTES`` of text a column, however many users. :func:`read_table` gives either back with the in-memory categories.
    """

    def __init__(self, table: Table, path: Path, *, ranked: bool = False, group_rows: int = 16_384):
        self.table = table
        self.group_rows = group_rows  # rows per row group of merged runs
        self.path = path
        self.rows = 0
        # the values seen in each categorical column without declared categories, and
        # their text's length, until it passes ``PRUNE_BYTES``: then the column is
        # ``_pruned`` (each row group keeps its own) and no longer collects them
        self._seen: dict[str, set[str]] = {
            c.name: set() for c in table.columns if c.dtype == "category" and not c.categories
        }
        self._seen_bytes = dict.fromkeys(self._seen, 0)
        self._pruned: dict[str, pd.CategoricalDtype[Any]] = {}
        fields = [pa.field(c.name, _SPOOL_TYPES[c.dtype]) for c in table.columns]
        if ranked:
            fields.append(pa.field(RANK, pa.int64()))
        self._schema = pa.schema(fields)
        self._ranked = ranked
        self._writer: pq.ParquetWriter | None = None
        self._spill_path = path.with_name(path.name + ".runs")
        self._spill: pq.ParquetWriter | None = None
        self._runs: list[range] = []  # each spilled run's row groups in the spill file

    def write(self, frame: pd.DataFrame, ranks: Sequence[int] | None = None) -> None:
        """Append ``frame`` (``table.frame`` of some final rows) as one row group; a ranked
        spool takes each row's rank too, and its row groups come in rank order."""
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_table(self._arrow(frame, ranks))
        self.rows += len(frame)

    def spill(self, frames: Iterable[tuple[pd.DataFrame, Sequence[int]]]) -> None:
        """Write one sorted run of a ranked spool: ``frames`` with their rows' ranks, in
        rank order, rows that come later in the table than some not yet written.
        ``groups`` merges the runs back in rank order."""
        assert self._ranked, "only a ranked spool takes runs"
        if self._spill is None:
            self._spill = pq.ParquetWriter(self._spill_path, self._schema)
        first = groups = self._runs[-1].stop if self._runs else 0
        for frame, ranks in frames:
            for start in range(0, len(frame), SPILL_GROUP):
                stop = start + SPILL_GROUP
                self._spill.write_table(self._arrow(frame.iloc[start:stop], ranks[start:stop]))
                groups += 1
            self.rows += len(frame)
        if groups > first:
            self._runs.append(range(first, groups))

    def _arrow(self, frame: pd.DataFrame, ranks: Sequence[int] | None) -> pa.Table:
        arrays = [self._spooled(c, frame[c.name]) for c in self.table.columns]
        if self._ranked:
            assert ranks is not None
            assert len(ranks) == len(frame)
            arrays.append(pa.array(np.asarray(ranks, dtype=np.int64)))
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _spooled(self, column: Column, values: pd.Series) -> pa.Array:
        if column.dtype != "category":
            if column.dtype == "Int64":
                return pa.array(values.array, type=pa.int64())
            return pa.array(values.to_numpy(), type=_SPOOL_TYPES[column.dtype])
        categories = [str(c) for c in values.cat.categories]
        seen = self._seen.get(column.name)
        if seen is not None:
            self._see(column.name, seen, categories)
        codes = values.cat.codes.to_numpy().astype(np.int32)
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=codes < 0), pa.array(categories, type=pa.string())
        )

    def _see(self, name: str, seen: set[str], categories: list[str]) -> None:
        new = [c for c in categories if c not in seen]
        if not new:
            return
        seen.update(new)
        self._seen_bytes[name] += sum(map(len, new))
        if self._seen_bytes[name] > PRUNE_BYTES:
            # one value kept: a pruned column's dtype gives only the kind of its values
            self._pruned[name] = pd.Categorical([min(seen)]).dtype
            del self._seen[name]

    def close(self) -> None:
        for writer in (self._writer, self._spill):
            if writer is not None:
                writer.close()
        self._writer = self._spill = None

    def groups(self) -> Iterator[pa.Table]:
        """The spooled row groups in order (a ranked spool's with its spilled runs merged
        in); one empty table when nothing was spooled."""
        self.close()
        sources: list[list[Callable[[], pa.Table]]] = []
        if self.path.exists():
            spool = pq.ParquetFile(self.path)
            sources.append(
                [
                    partial(spool.read_row_group, i, use_threads=THREADS)
                    for i in range(spool.num_row_groups)
                ]
            )
        if self._runs:
            runs = pq.ParquetFile(self._spill_path)
            sources += [
                [partial(runs.read_row_group, i, use_threads=THREADS) for i in run]
                for run in self._runs
            ]
        if not any(sources):
            yield self._schema.empty_table()
        elif len(sources) == 1:
            for load in sources[0]:
                yield load()
        else:
            yield from merge_runs(sources, RANK, self.group_rows)

    def dtypes(self) -> dict[str, pd.CategoricalDtype]:
        """Each categorical column's dtype for the whole file: what ``pd.Categorical`` of
        the whole column gives (declared categories, else the values seen, sorted)."""
        out = {}
        for c in self.table.columns:
            if c.dtype != "category":
                continue
            if c.categories:
                out[c.name] = pd.Categorical([], categories=c.categories).dtype
            elif c.name in self._pruned:
                out[c.name] = self._pruned[c.name]
            else:  # no value: pandas' empty categories of an all-null or empty column
                values: list[Any] = sorted(self._seen[c.name]) or [None] * min(self.rows, 1)
                out[c.name] = pd.Categorical(values).dtype
        return out

    def frame(
        self, group: pa.Table, dtypes: dict[str, pd.CategoricalDtype], own: frozenset[str]
    ) -> pd.DataFrame:
        """One spooled row group as the table's frame, categoricals with ``dtypes``, or
        for the columns of ``own`` with the group's own categories, sorted."""
        data: dict[str, Any] = {}
        for c in self.table.columns:
            values = group.column(c.name)
            if c.name in own:
                data[c.name] = _recoded(values, _own_dtype(values, dtypes[c.name]))
            elif c.dtype == "category":
                data[c.name] = _recoded(values, dtypes[c.name])
            elif c.dtype == "Int64":
                data[c.name] = values.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
            else:
                data[c.name] = values.to_numpy()
        return pd.DataFrame(data)

    def finish(self, dest: Path) -> None:
        """Write the spooled rows to ``dest`` with one set of categories per column, one
        row group at a time, then remove the spool."""
        dtypes = self.dtypes()
        own = frozenset(self._pruned)
        _rewrite(dest, (self.frame(group, dtypes, own) for group in self.groups()), own)
        self.path.unlink(missing_ok=True)
        self._spill_path.unlink(missing_ok=True)


def merge_runs(
    sources: Sequence[Sequence[Callable[[], pa.Table]]], key: str, rows: int
) -> Iterator[pa.Table]:
    """The rows of several sorted runs in one order, by the integer column ``key``, as
    tables of ``rows`` rows or more (the last may have fewer).

    Each source is a run: the loaders of its blocks (tables), whose ``key`` values
    increase through the run. One block of each run is held at a time: every step takes
    the rows up to the smallest last key among the runs with blocks still to load, which
    uses up at least one block; a run's next block is loaded when its block is used up.
    Dictionary columns may have each block's own dictionary; each table given has its
    own, of the values it uses.
    """
    runs = [_Run(loaders) for loaders in sources]
    parts: list[pa.Table] = []
    size = 0
    while live := [run for run in runs if run.head is not None]:
        bound = min((run.last(key) for run in live if run.more()), default=None)
        for run in live:
            part = run.take_through(key, bound)
            if part.num_rows:
                parts.append(part)
                size += part.num_rows
        # a step's keys all come before the next step's: sorting the steps together
        # sorts each
        if size >= rows or not any(run.head is not None for run in runs):
            yield _sorted(pa.concat_tables(parts), key)
            parts, size = [], 0


def _sorted(table: pa.Table, key: str) -> pa.Table:
    """``table`` in order of ``key``, in one chunk, each dictionary column with only the
    values it uses, in their order in its dictionary."""
    table = table.unify_dictionaries().combine_chunks()
    table = table.take(pa.array(np.argsort(table.column(key).to_numpy(), kind="stable")))
    columns = [
        _compact(column.chunk(0)) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _compact(array: pa.DictionaryArray) -> pa.DictionaryArray:
    """``array`` with a dictionary of only the values it uses."""
    indices = array.indices.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(array.is_null())
    used, codes = np.unique(indices[valid], return_inverse=True)
    full = np.zeros(len(indices), dtype=np.int32)
    full[valid] = codes
    return pa.DictionaryArray.from_arrays(
        pa.array(full, type=array.type.index_type, mask=~valid),
        array.dictionary.take(pa.array(used, type=pa.int64())),
    )


class _Run:
    """One sorted run of ``merge_runs``: its loaded block (``head``) and those to come."""

    def __init__(self, loaders: Sequence[Callable[[], pa.Table]]):
        self._loaders = loaders
        self._next = 0
        self.head: pa.Table | None = None
        self._load()

    def _load(self) -> None:
        self.head = None
        while self.head is None and self._next < len(self._loaders):
            block = self._loaders[self._next]()
            self._next += 1
            self.head = block if block.num_rows else None

    def more(self) -> bool:
        """Whether blocks remain to be loaded after the head."""
        return self._next < len(self._loaders)

    def last(self, key: str) -> int:
        assert self.head is not None
        return int(self.head.column(key)[-1].as_py())

    def take_through(self, key: str, bound: int | None) -> pa.Table:
        """The head's rows with ``key`` up to ``bound`` (all with ``None``); the next block
        is loaded once the head is used up."""
        assert self.head is not None
        keys = self.head.column(key).to_numpy()
        n = len(keys) if bound is None else int(np.searchsorted(keys, bound, side="right"))
        taken, rest = self.head.slice(0, n), self.head.slice(n)
        if rest.num_rows:
            self.head = rest
        else:
            self._load()
        return taken


def _own_dtype(values: pa.ChunkedArray, whole: pd.CategoricalDtype) -> pd.CategoricalDtype:
    """The sorted categories of a row group's ``values``, of the same kind as ``whole``'s."""
    used = sorted({v for chunk in values.chunks for v in chunk.dictionary.to_pylist()})
    return pd.CategoricalDtype(pd.Index(used, dtype=whole.categories.dtype))


def read_table(path: Path) -> pd.DataFrame:
    """A table a run wrote (``<name>.parquet``), with the categories of its frame in
    memory: those of a column written with each row group's own (``PRUNE_BYTES``) come
    back sorted, as ``pd.Categorical`` gives them, not in their order of appearance."""
    frame = pd.read_parquet(path)
    table = next((t for t in TABLES if t.name == path.stem), None)
    if table is None:
        return frame
    for c in table.columns:
        if c.dtype != "category" or c.categories or c.name not in frame.columns:
            continue
        values = frame[c.name]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            continue
        categories = list(values.cat.categories)
        if categories != sorted(categories):
            index = pd.Index(sorted(categories), dtype=values.cat.categories.dtype)
            frame[c.name] = values.cat.reorder_categories(index)
    return frame


def _recoded(values: pa.ChunkedArray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    """Dictionary-encoded ``values`` as a categorical of ``dtype`` (which has them all)."""
    categories = pa.array([str(c) for c in dtype.categories], type=pa.string())
    parts = [np.empty(0, dtype=np.int32)]
    for chunk in values.chunks:
        position = pc.index_in(chunk.dictionary, value_set=categories)
        codes = pc.take(position, chunk.indices).fill_null(-1)
        parts.append(codes.to_numpy(zero_copy_only=False))
    return pd.Categorical.from_codes(np.concatenate(parts), dtype=dtype)


def _rewrite(dest: Path, frames: Iterator[pd.DataFrame], own: frozenset[str] = frozenset()) -> None:
    """Write ``frames`` as the row groups of ``dest`` (as ``DataFrame.to_parquet`` writes
    one frame, without its index), through a temporary file renamed into place. The
    columns of ``own`` have each frame's own categories, so their codes take 32 bits in
    every row group (pandas gives fewer categories smaller codes)."""
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            table = _wide_codes(
                pa.Table.from_pandas(frame, preserve_index=False, nthreads=None if THREADS else 1),
                own,
            )
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, dest)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise


def _wide_codes(table: pa.Table, names: frozenset[str]) -> pa.Table:
    """``table`` with the dictionary columns of ``names`` indexed by 32-bit codes."""
    fields = [
        pa.field(f.name, pa.dictionary(pa.int32(), f.type.value_type))
        if f.name in names and pa.types.is_dictionary(f.type)
        else f
        for f in table.schema
    ]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


class LevelSpool(TableSpool):
    """The queues table's spool: series ids, turned into ``kind``, ``entity`` and
    ``metric`` at the end, when every series is known (as ``LevelLog.frame``)."""

    _FIELDS = pa.schema([("time", pa.float64()), ("series", pa.int64()), ("value", pa.int64())])

    def __init__(self, path: Path, keys: list[tuple[str, str, str]]):
        super().__init__(QUEUES, path)
        self._schema = self._FIELDS
        self._keys = keys  # the series registered so far, grown by their log

    def write_levels(
        self, time: Sequence[float], series: Sequence[int], value: Sequence[int]
    ) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema)
        columns = [
            np.asarray(time, dtype=np.float64),
            np.asarray(series, dtype=np.int64),
            np.asarray(value, dtype=np.int64),
        ]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self._schema))
        self.rows += len(time)

    def finish(self, dest: Path) -> None:
        keys = self._keys
        labels = [[k[i] for k in keys] for i in range(3)]

        def frames() -> Iterator[pd.DataFrame]:
            for group in self.groups():
                ids = group.column("series").to_numpy()
                kind, entity, metric = (pick(names, ids) for names in labels)
                yield QUEUES.frame(
                    {
                        "time": group.column("time").to_numpy(),
                        "kind": kind,
                        "entity": entity,
                        "metric": metric,
                        "value": group.column("value").to_numpy(),
                    }
                )

        _rewrite(dest, frames())
        self.path.unlink(missing_ok=True)
