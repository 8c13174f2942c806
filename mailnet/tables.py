"""The output tables' schemas: every column declared once, with its dtype and meaning.

The recorders of ``mailnet.records`` build their frames through ``Table.frame`` (names,
order and dtypes come from here), and README.md's "Outputs" section lists each table's
columns as ``Table.markdown`` writes them; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STATUSES = ("delivered", "bounced", "expired", "dropped", "in_queue")
OUTCOMES = ("sent", "deferred", "suspended", "bounced", "skipped", "passed_on")
FOLDERS = ("inbox", "spam")
DSN_KINDS = ("failed", "expired", "delayed")
SEVERITIES = ("delayed", "spam_folder", "bounced")
"""How badly harmed legitimate mail ended: deferred then delivered, filed as spam,
bounced or expired."""
SCORE_KINDS = ("ip", "domain")
"""What a reputation sample scores: a sending address or an authenticated sending domain."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``dtype`` is a pandas dtype name (``category`` with fixed ``categories``
    when they are given, inferred from the values otherwise; ``str`` is an object column of
    text); ``meaning`` is the sentence README.md shows for it."""

    name: str
    dtype: str
    meaning: str
    categories: tuple[str, ...] | None = None

    def convert(self, values: Any) -> Any:
        """``values`` (a list, array or extension array) as this column's dtype."""
        if self.dtype == "category":
            if isinstance(values, list):
                return _categorical(values, self.categories)
            return pd.Categorical(values, categories=self.categories)
        if self.dtype == "Int64":
            if isinstance(values, list):
                return _nullable_integers(values)
            return pd.array(values, dtype="Int64")
        if self.dtype == "str":
            return pd.array(list(values), dtype="str")
        return np.asarray(values, dtype=self.dtype)


def _categorical(values: list[Any], categories: tuple[str, ...] | None = None) -> Any:
    """``pd.Categorical(values, categories=categories)`` of a list of text and ``None``:
    the same categories (given, else the values sorted) and codes, the values
    dictionary-encoded by Arrow in one pass instead of handed one by one to an Arrow
    string array (0.65 s for the 300,000 rows of a 2-day baseline run) or counted in a
    Python dict (twice Arrow's time where the values are many). A value not among given
    categories is missing, as pandas makes it. A column of one text value throughout (one
    provider, one class) is found by ``list.count`` alone, a twentieth of Arrow's time."""
    value = _only_text(values)
    if value is not None:
        return _constant(value, len(values), categories)
    try:
        encoded = pa.array(values, type=pa.string()).dictionary_encode()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Categorical(values, categories=categories)  # not text: pandas' own way
    uniques = encoded.dictionary
    first = pc.fill_null(encoded.indices, -1).to_numpy()  # None has no category (-1)
    if categories is not None:
        index = pd.Index(categories)
        position = np.append(index.get_indexer(uniques.to_pylist()), -1)
        return pd.Categorical.from_codes(position[first], categories=index)
    if not len(uniques):
        return pd.Categorical(values)  # no value at all
    # Arrow sorts text by its UTF-8 bytes, which is Python's order of code points
    order = pc.array_sort_indices(uniques).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = np.where(first >= 0, rank[first], -1)
    found = pd.Index(uniques.take(pa.array(order)).to_pylist(), dtype="str")
    return pd.Categorical.from_codes(codes, categories=found)


def _only_text(values: list[Any]) -> str | None:
    """The one text value ``values`` hold throughout, if they do. A few rows are looked at
    first: a column of many values shows one of them at once, without a pass over all."""
    if not values or type(values[0]) is not str:
        return None
    first, n = values[0], len(values)
    if any(values[i] != first for i in (n - 1, n // 2, n // 4, 3 * n // 4)):
        return None
    return first if values.count(first) == n else None


def _constant(value: str, n: int, categories: tuple[str, ...] | None) -> Any:
    """The categorical ``_categorical`` makes of ``n`` times ``value``."""
    if categories is None:
        index = pd.Index([value], dtype="str")
        code = 0
    else:
        index = pd.Index(categories)
        code = int(index.get_indexer(pd.Index([value]))[0])  # -1, missing, when not among them
    return pd.Categorical.from_codes(np.full(n, code, dtype=np.int64), categories=index)


def _nullable_integers(values: list[int | None]) -> Any:
    """``pd.array(values, dtype="Int64")`` of a list of whole numbers and ``None``, built
    from one numpy pass rather than value by value; a column with no value, or none
    missing, from ``list.count`` alone."""
    n = len(values)
    missing_count = values.count(None)
    if missing_count == n:
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    if not missing_count:
        return pd.arrays.IntegerArray(np.array(values, dtype=np.int64), np.zeros(n, dtype=bool))
    missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
    filled = np.fromiter((0 if v is None else v for v in values), np.int64, n)
    return pd.arrays.IntegerArray(filled, missing)


@dataclass(frozen=True, slots=True)
class Table:
    """An output table: written as ``name``.parquet with ``columns`` in this order."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def frame(self, data: Mapping[str, Any]) -> pd.DataFrame:
        """The frame of ``data`` (column name -> values), in declared order and dtypes.

        Raises ``KeyError`` when ``data`` lacks a declared column or has an undeclared one,
        so a recorder cannot drift from its declaration.
        """
        extra = set(data) - set(self.names)
        missing = set(self.names) - set(data)
        if extra or missing:
            raise KeyError(
                f"{self.name}: undeclared columns {sorted(extra)}, missing {sorted(missing)}"
            )
        return pd.DataFrame({c.name: c.convert(data[c.name]) for c in self.columns})

    def markdown(self) -> str:
        """The README table of the columns: name, type and meaning."""
        rows = ["| column | type | meaning |", "|---|---|---|"]
        for c in self.columns:
            dtype = c.dtype if c.categories is None else " \\| ".join(c.categories)
            rows.append(f"| `{c.name}` | {dtype} | {c.meaning} |")
        return "\n".join(rows)


def _table(name: str, columns: Sequence[tuple[str, str, str] | Column]) -> Table:
    return Table(name, tuple(c if isinstance(c, Column) else Column(*c) for c in columns))


MESSAGES = _table(
    "messages",
    [
        ("message_id", "int64", "the message; a message has one row per recipient"),
        ("recipient", "category", "the envelope recipient of this row"),
        ("sender", "category", "the envelope sender (empty for a DSN)"),
        ("sender_class", "category", "`ham`, `bulk` or `spam` (a DSN keeps its original's)"),
        (
            "sender_domain",
            "category",
            "the authenticated sending domain (DKIM d=): the group's own, else the "
            "envelope sender's; empty for a DSN",
        ),
        ("provider", "category", "the MTA that queued the message first"),
        ("recipient_domain", "category", "the recipient's domain"),
        ("is_dsn", "bool", "a delivery status notification (bounce or delay warning)"),
        ("created_at", "float64", "submitted by the client, or created by the MTA (a DSN)"),
        ("delivered_at", "float64", "stored in the final mailbox"),
        ("retrieved_at", "float64", "fetched by the recipient's client"),
        Column("status", "category", "the row's final status", STATUSES),
        (
            "attempts",
            "int64",
            "delivery attempts for this recipient, over every hop (a deferral without a "
            "connection, outcome `suspended`, is not one)",
        ),
        ("final_code", "Int64", "basic code of the last reply (null before any reply)"),
        ("final_enhanced_code", "category", "enhanced status code of the last reply"),
        Column(
            "folder",
            "category",
            "for delivered mail at a receiver with a content filter",
            FOLDERS,
        ),
        (
            "collateral",
            "bool",
            "legitimate mail hurt by reputation other senders earned on its address, "
            "network or sending domain",
        ),
        (
            "collateral_cause",
            "category",
            "what hurt it: `filter`, `reputation` (the address), `filter:domain`, "
            "`reputation:domain`, `blocklist:LIST:SCOPE`",
        ),
        Column("collateral_severity", "category", "how the hurt row ended", SEVERITIES),
        (
            "self_inflicted",
            "bool",
            "legitimate mail hurt by reputation its own sender group earned",
        ),
        ("self_inflicted_cause", "category", "what hurt it (as `collateral_cause`)"),
        Column("self_inflicted_severity", "category", "how the hurt row ended", SEVERITIES),
        ("final_reply", "category", "text of the last reply (`delivered to mailbox` once stored)"),
        (
            "released_at",
            "float64",
            "entered the queue of `provider`: the MSA's release, later "
            "than `created_at` when the sender's rate limit held it; null when refused at "
            "submission or still held",
        ),
        (
            "stored_by",
            "category",
            "the host that stored the row in its mailbox: the "
            "provider (local delivery) or the primary MX",
        ),
        ("dsn_of", "Int64", "for a DSN, the `message_id` it reports on"),
        Column("dsn_kind", "category", "for a DSN, why it was sent", DSN_KINDS),
        (
            "dsn_recipient",
            "category",
            "for a DSN, the first recipient of the original that it reports on",
        ),
    ],
)

ATTEMPTS = _table(
    "attempts",
    [
        ("message_id", "int64", "the message"),
        ("recipient", "category", "the recipient"),
        ("hop", "category", "the sending MTA (a provider, a backup MX or relay)"),
        ("source_ip", "category", "the sending address (empty when none was used)"),
        ("mx_host", "category", "the server connected to (null when no connection was made)"),
        ("started_at", "float64", "the client opens the connection to `mx_host`"),
        (
            "session_at",
            "float64",
            "the server begins the session (null when it never did: "
            "`session_at - started_at` is the wait in the backlog plus the server's constant "
            "`connect_time`)",
        ),
        ("ended_at", "float64", "the attempt ends"),
        ("code", "int64", "basic code of the reply for this recipient"),
        ("enhanced_code", "category", "enhanced status code of the reply"),
        Column(
            "outcome",
            "category",
            "what the reply means for the recipient: `suspended` is a deferral without a "
            "connection (a dead destination), not counted as an attempt on the receiver; "
            "`skipped`: no connection either, the SMTP client's host records held every host; "
            "`passed_on`: a 4xx or a failed connection at a host that was not the last one "
            "tried in this delivery, the recipient kept for the next host in the same "
            "delivery (not a deferral)",
            OUTCOMES,
        ),
        (
            "reply",
            "category",
            "text of the reply; mail deferred at a dead destination says "
            "`delivery temporarily suspended:` and the failure that made it dead",
        ),
    ],
)

QUEUES = _table(
    "queues",
    [
        ("time", "float64", "when the value changed"),
        ("kind", "category", "`mta` or `server`"),
        ("entity", "category", "the MTA or server"),
        ("metric", "category", "`active`, `deferred` (MTA), `sessions`, `backlog` (server)"),
        ("value", "int64", "the new value: a step function, one row per change"),
    ],
)

LISTINGS = _table(
    "listings",
    [
        ("list", "str", "the blocklist"),
        ("scope", "str", "`ip`, `prefix` or `asn`"),
        ("key", "str", "the listed address, prefix or AS number"),
        ("listed_at", "float64", "when the listing began"),
        ("delisted_at", "float64", "when it ended (null while it lasts)"),
        ("trigger", "str", "what listed it: `trap`, `complaint`, `spam` or `escalation`"),
        (
            "ended",
            "str",
            "`expiry`, `removal` (a removal request) or `deescalation`; null while it lasts",
        ),
        ("traps", "float64", "the list's trap hits from the address in its window when listed"),
        ("reports", "float64", "complaints about the address in the list's window when listed"),
        (
            "volume",
            "float64",
            "recipients the address sent in the window when listed (volume-relative lists; else null)",
        ),
    ],
)

REPUTATION = _table(
    "reputation",
    [
        ("time", "float64", "the sample time"),
        ("receiver", "category", "the receiving organisation"),
        Column(
            "kind",
            "category",
            "`ip`: the key is a sending address; `domain`: an authenticated sending "
            "domain (DKIM d=)",
            SCORE_KINDS,
        ),
        ("key", "category", "the sending address or domain"),
        ("score", "float64", "the receiver's reputation score of the key, in [0, 1]"),
    ],
)

CHANGES = _table(
    "changes",
    [
        ("time", "float64", "when the change was applied"),
        ("change", "int64", "the `[[changes]]` entry, counted from 0 in file order"),
        ("trigger", "str", "`at`, or what fired it: `listed LIST KEY`, `queue_above HOP LENGTH`"),
        ("key", "str", "the dotted key set, as in `set`"),
        ("old", "str", "its value before, as JSON (`null`: not set)"),
        ("new", "str", "its value after, as JSON"),
    ],
)

TABLES = (MESSAGES, ATTEMPTS, QUEUES, LISTINGS, REPUTATION, CHANGES)
"""Every table of a run directory, in the order README.md lists them."""
