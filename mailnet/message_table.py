"""The messages table's row buffer: one row per message and recipient, written by the
model as the run goes and turned into the messages table at the end.

Compiled with the model (``make compiled``): the model adds a row per recipient, settles
it once and writes its times, several times a message, and a compiled class is read and
written as a C struct where a Python one is looked up by name. Subclasses that fold or
spool the rows (``mailnet.streaming``) stay in Python.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Final

import numpy as np
import pandas as pd
from mypy_extensions import mypyc_attr

from mailnet.tables import MESSAGES

NAN = math.nan


# the streamed and summary-only tables (mailnet.streaming) subclass it in Python
@mypyc_attr(allow_interpreted_subclasses=True)
class MessageTable:
    """One row per message and recipient; final fields are filled in as the run goes.

    A row starts ``in_queue`` and is settled at most once by ``settle``; ``attempts``
    counts delivery attempts for the recipient over every hop.

    The columns a row starts with a default value in (times not yet reached, the final
    reply, the DSN link, ...) grow ``_CHUNK`` rows at a time, so adding a row appends only
    what the caller gives; every column is cut to ``len(self)`` rows by ``frame``.
    """

    _CHUNK = 4096

    def __init__(self) -> None:
        self.message_id: list[int] = []
        self.recipient: list[str] = []
        self.sender: list[str] = []
        self.sender_class: list[str] = []
        self.provider: list[str] = []
        self.recipient_domain: list[str] = []
        self.is_dsn: list[bool] = []
        self.created_at: array[float] = array("d")
        self.sender_domain: list[str] = []
        # columns with a default value, grown in chunks
        self.delivered_at: array[float] = array("d")
        self.retrieved_at: array[float] = array("d")
        self.released_at: array[float] = array("d")
        self.status: list[str] = []
        # whole numbers in lists, not arrays: compiled code writes a list in place and an
        # array through a generic call (about 350 instructions). Counts and 250 are
        # Python's cached small ints, 8 bytes a row as in an array; a code above 256 (a
        # bounce's) adds its own int object, 28 bytes
        self.attempts: list[int] = []
        self.final_code: list[int] = []
        self.final_enhanced_code: list[str] = []
        self.folder: list[str | None] = []
        self.collateral_cause: list[str | None] = []
        self.self_inflicted_cause: list[str | None] = []
        self.final_reply: list[str | None] = []
        self.stored_by: list[str | None] = []
        self.dsn_of: list[int | None] = []
        self.dsn_kind: list[str | None] = []
        self.dsn_recipient: list[str | None] = []
        self._rows = 0
        self._capacity = 0

    def __len__(self) -> int:
        return self._rows

    def _grow(self) -> None:
        n = self._CHUNK
        nans = array("d", [NAN]) * n
        zeros = [0] * n
        nones: list[Any] = [None] * n
        self.delivered_at.extend(nans)
        self.retrieved_at.extend(nans)
        self.released_at.extend(nans)
        self.status.extend(["in_queue"] * n)
        self.attempts.extend(zeros)
        self.final_code.extend(zeros)
        self.final_enhanced_code.extend([""] * n)
        for column in (
            self.folder,
            self.collateral_cause,
            self.self_inflicted_cause,
            self.final_reply,
            self.stored_by,
            self.dsn_of,
            self.dsn_kind,
            self.dsn_recipient,
        ):
            column.extend(nones)
        self._capacity += n

    # one positional argument per column: the model calls this for every recipient
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
        """Append an in-queue row and return its index (``domain``: the recipient's;
        ``sender_domain``: the message's authenticated sending domain)."""
        row = self._rows
        if row == self._capacity:
            self._grow()
        self._rows = row + 1
        self.message_id.append(message_id)
        self.recipient.append(recipient)
        self.sender.append(sender)
        self.sender_class.append(sender_class)
        self.provider.append(provider)
        self.recipient_domain.append(domain)
        self.is_dsn.append(is_dsn)
        self.created_at.append(created_at)
        self.sender_domain.append(sender_domain)
        return row

    def created_messages(self) -> int:
        """Messages created so far: their ids are consecutive from 0, rows in creation
        order."""
        ids = self.message_id
        return int(ids[-1]) + 1 if ids else 0

    def release(self, row: int, now: float) -> None:
        """The row's message entered its provider's outbound queue at ``now``."""
        self.released_at[row] = now

    def link_dsn(self, row: int, original: int, kind: str, recipient: str) -> None:
        """Mark a DSN row: it reports on message ``original`` (``kind`` failed, expired or
        delayed), first on that message's ``recipient``."""
        self.dsn_of[row] = original
        self.dsn_kind[row] = kind
        self.dsn_recipient[row] = recipient

    def mark_collateral(self, row: int, cause: str) -> None:
        """Legitimate mail hurt by a reputation others earned; the first cause is kept.

        A cause written ``self:CAUSE`` is harm its own sender earned (self-inflicted), kept
        apart in ``self_inflicted_cause``."""
        if cause.startswith(SELF_PREFIX):
            if self.self_inflicted_cause[row] is None:
                self.self_inflicted_cause[row] = cause[len(SELF_PREFIX) :]
        elif self.collateral_cause[row] is None:
            self.collateral_cause[row] = cause

    def settle(self, row: int, status: str, code: int, enhanced: str, text: str = "") -> None:
        """Give a row its final status and reply (once; a settled row is never changed
        again). ``text`` is the reply's text; empty keeps the last one noted."""
        if self.status[row] != "in_queue":
            raise RuntimeError(f"row {row} settled twice ({self.status[row]} -> {status})")
        self.status[row] = status
        self.final_code[row] = code
        self.final_enhanced_code[row] = enhanced
        if text:
            self.final_reply[row] = text

    def frame(self) -> pd.DataFrame:
        n = self._rows
        collateral = self.collateral_cause[:n]
        own = self.self_inflicted_cause[:n]
        status, folder = self.status[:n], self.folder[:n]
        codes = np.array(self.final_code[:n], dtype=np.int64)
        return MESSAGES.frame(
            {
                "message_id": self.message_id,
                "recipient": self.recipient,
                "sender": self.sender,
                "sender_class": self.sender_class,
                "provider": self.provider,
                "recipient_domain": self.recipient_domain,
                "is_dsn": self.is_dsn,
                "created_at": self.created_at,
                "delivered_at": self.delivered_at[:n],
                "retrieved_at": self.retrieved_at[:n],
                "status": status,
                "attempts": self.attempts[:n],
                # 0 marks "no reply yet" (a row still in the queue with no attempt): null
                "final_code": pd.arrays.IntegerArray(codes, codes == 0),
                "final_enhanced_code": [c or None for c in self.final_enhanced_code[:n]],
                "folder": folder,
                "collateral": [c is not None for c in collateral],
                "collateral_cause": collateral,
                "collateral_severity": _severities(collateral, status, folder),
                "self_inflicted": [c is not None for c in own],
                "self_inflicted_cause": own,
                "self_inflicted_severity": _severities(own, status, folder),
                "sender_domain": self.sender_domain,
                "final_reply": self.final_reply[:n],
                "released_at": self.released_at[:n],
                "stored_by": self.stored_by[:n],
                "dsn_of": self.dsn_of[:n],
                "dsn_kind": self.dsn_kind[:n],
                "dsn_recipient": self.dsn_recipient[:n],
            }
        )


SELF_PREFIX: Final = "self:"
"""Marks a harm cause the sender earned itself (``MessageTable.mark_collateral``)."""


def _severities(causes: list, status: list[str], folder: list) -> list[str | None]:
    """How badly each harmed row ended: ``bounced`` (bounced or expired), ``spam_folder``,
    else ``delayed`` (deferred, then delivered or still queued); null when unharmed."""
    return [
        None
        if c is None
        else "bounced"
        if s in ("bounced", "expired")
        else "spam_folder"
        if f == "spam"
        else "delayed"
        for c, s, f in zip(causes, status, folder, strict=True)
    ]


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
"""``MessageTable``'s column buffers, as its attributes are named (a test keeps the two
in step)."""
