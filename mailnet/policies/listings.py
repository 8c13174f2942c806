"""What a blocklist says and keeps: answers to queries and listing periods with evidence.

Plain records of ``mailnet.policies.blocklists``; ``listings.parquet`` has one row per
:class:`ListingRecord` (columns in ``COLUMNS``). Times are seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, slots=True)
class Listing:
    """An answer to a DNSBL query: the entry that covers the queried IP.

    ``scope`` is ``"ip"``, ``"prefix"`` or ``"asn"``; ``key`` is the IP, the prefix
    (``"203.0.113.0/24"``) or the AS (``"AS64500"``); ``listed_at`` in seconds.
    """

    list: str
    scope: str
    key: str
    listed_at: float
    trigger: str


@dataclass(slots=True)
class ListingRecord:
    """One listing period; ``delisted_at`` is ``None`` while it lasts.

    ``trigger`` is the observation kind that listed an IP, or ``"escalation"`` for a
    prefix or AS. ``ended``: ``"expiry"``, ``"removal"`` (a removal request) or
    ``"deescalation"``, ``None`` while it lasts. The evidence when listed: ``traps`` and
    ``reports`` (complaints) counted in the window, and ``volume``, the recipients the IP
    sent in the window (NaN unless the list is volume-relative); escalations have none.
    """

    list: str
    scope: str
    key: str
    listed_at: float
    delisted_at: float | None
    trigger: str
    ended: str | None = None
    traps: float = 0.0
    reports: float = 0.0
    volume: float = math.nan

    def answer(self) -> Listing:
        """This record as the answer to a query."""
        return Listing(self.list, self.scope, self.key, self.listed_at, self.trigger)


COLUMNS = [
    "list",
    "scope",
    "key",
    "listed_at",
    "delisted_at",
    "trigger",
    "ended",
    "traps",
    "reports",
    "volume",
]
"""The fields of :class:`ListingRecord`, in order: the columns of a list's frame."""

FLOAT_COLUMNS = ("listed_at", "delisted_at", "traps", "reports", "volume")


def empty_listings() -> pd.DataFrame:
    """A listings frame with no rows, in the columns and dtypes of a list's frame."""
    return pd.DataFrame({c: pd.Series(dtype=float if c in FLOAT_COLUMNS else str) for c in COLUMNS})
