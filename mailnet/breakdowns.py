"""Results broken down where operators look: by provider, sender group (customer),
recipient domain, receiving organisation and hop.

Analysis of a run's tables, never part of the model: ``breakdown(messages, attempts,
layout, by)`` gives one row per group. Message dimensions (``provider``, ``group``,
``domain``, ``receiver``) count the non-DSN recipient rows of each group and their
outcomes; ``hop`` counts the attempts each sending MTA made. ``Layout`` carries what the
tables do not say: the sender groups' names and which receiver runs each domain's MX.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mailnet.metric_catalog import format_value

DIMENSIONS = ("provider", "group", "domain", "receiver", "hop")
"""What a breakdown can be by."""

MESSAGE_COLUMNS = {
    "recipients": "count",
    "delivered": "count",
    "bounced": "count",
    "in_queue": "count",
    "bounce_rate": "share",
    "deferral_rate": "share",
    "spam_folder_rate": "share",
    "latency_p90_s": "s",
    "latency_max_s": "s",
    "legitimate": "count",
    "collateral_rate": "share",
}
"""Columns of a message breakdown and their units (``metric_catalog.Unit``).
``bounced`` includes expired; ``deferral_rate``: share of remote recipients deferred at
least once; ``spam_folder_rate``: of delivered; ``collateral_rate``: of the group's
legitimate (non-spam) recipients, those hurt by others' reputation."""

HOP_COLUMNS = {
    "attempts": "count",
    "recipients": "count",
    "sent": "count",
    "deferred": "count",
    "bounced": "count",
    "held": "count",
    "passed_on": "count",
    "deferred_share": "share",
    "source_ips": "count",
}
"""Columns of a hop breakdown: attempts made by the hop, the distinct recipients they
were for, attempts by outcome (``held``: deferred without a connection, ``suspended`` at
a dead destination or ``skipped`` with every host held; ``passed_on``: a 4xx at a host
that was not the last of its delivery, the recipient kept for the next host), the
deferred share of attempts (held ones included, passed-on ones not), addresses used."""

_NONE = "(none)"
HELD = ("suspended", "skipped")


@dataclass(frozen=True)
class Layout:
    """What the tables do not record: sender group names, each domain's receiver."""

    groups: tuple[str, ...] = ()
    domain_receiver: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, text: str) -> Layout:
        """From a resolved scenario (a run's ``scenario.toml``); empty if ``text`` is."""
        raw: dict[str, Any] = tomllib.loads(text) if text.strip() else {}
        servers = raw.get("servers", {})
        receivers: dict[str, str] = {}
        for domain, entry in raw.get("domains", {}).items():
            mx = sorted(entry.get("mx") or [], key=lambda m: m.get("preference", 0))
            hosts = [m["host"] for m in mx] or [domain]  # the implicit MX
            # the primary (most preferred) host decides; a backup only forwards to it
            receivers[domain] = str(servers.get(hosts[0], {}).get("receiver") or _NONE)
        return cls(tuple(raw.get("senders", {})), receivers)


def sender_groups(addresses: Iterable[str], groups: Iterable[str]) -> dict[str, str]:
    """Map each sender address to its group: clients of group ``NAME`` send as
    ``NAME<index>@domain``; an address that matches no group keeps its local part."""
    names = sorted(groups, key=len, reverse=True)  # "users1" before "users"
    out: dict[str, str] = {}
    for address in addresses:
        local = address.partition("@")[0]
        match = next((n for n in names if re.fullmatch(re.escape(n) + r"\d+", local)), None)
        out[address] = match if match is not None else (local or _NONE)
    return out


def breakdown(
    messages: pd.DataFrame, attempts: pd.DataFrame, layout: Layout, by: str
) -> pd.DataFrame:
    """One row per group of dimension ``by`` (one of ``DIMENSIONS``), the largest first;
    columns ``MESSAGE_COLUMNS`` (or ``HOP_COLUMNS`` for ``hop``), indexed by the group."""
    if by not in DIMENSIONS:
        raise ValueError(f"cannot break down by {by!r}; choose one of {', '.join(DIMENSIONS)}")
    if by == "hop":
        return _by_hop(attempts)
    rows = messages[~messages["is_dsn"]]
    return _by_key(_message_flags(rows, attempts), _keys(rows, layout, by))


def _keys(rows: pd.DataFrame, layout: Layout, by: str) -> pd.Series:
    if by == "provider":
        return rows["provider"].astype(str)
    if by == "domain":
        return rows["recipient_domain"].astype(str)
    if by == "receiver":
        mapping = dict(layout.domain_receiver)
        return rows["recipient_domain"].astype(str).map(lambda d: mapping.get(d, _NONE))
    senders = rows["sender"].astype(str)
    return senders.map(sender_groups(senders.unique(), layout.groups))


def _message_flags(rows: pd.DataFrame, attempts: pd.DataFrame) -> pd.DataFrame:
    """Per recipient row, the 0/1 flags and values the group columns sum or rank."""
    status = rows["status"].astype(str)
    delivered = (status == "delivered").to_numpy()
    deferred = attempts["outcome"].isin(("deferred", "suspended", "skipped"))
    hit = attempts.loc[deferred, ["message_id", "recipient"]]
    deferred_keys = pd.MultiIndex.from_arrays([hit["message_id"], hit["recipient"].astype(str)])
    keys = pd.MultiIndex.from_arrays([rows["message_id"], rows["recipient"].astype(str)])
    remote = (rows["attempts"] > 0).to_numpy()
    legitimate = (rows["sender_class"].astype(str) != "spam").to_numpy()
    latency = (rows["delivered_at"] - rows["created_at"]).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "recipients": 1,
            "delivered": delivered.astype(int),
            "bounced": status.isin(["bounced", "expired"]).to_numpy().astype(int),
            "in_queue": (status == "in_queue").to_numpy().astype(int),
            "remote": remote.astype(int),
            "deferred": (keys.isin(deferred_keys.unique()) & remote).astype(int),
            "spam": (delivered & (rows["folder"].astype(str) == "spam").to_numpy()).astype(int),
            "latency": np.where(delivered, latency, np.nan),
            "legitimate": legitimate.astype(int),
            "collateral": (legitimate & rows["collateral"].to_numpy(dtype=bool)).astype(int),
        }
    )


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype(float)


def _by_key(flags: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    grouped = flags.groupby(keys.to_numpy(), sort=True)
    sums = grouped.sum(numeric_only=True)
    table = pd.DataFrame(
        {
            "recipients": sums["recipients"],
            "delivered": sums["delivered"],
            "bounced": sums["bounced"],
            "in_queue": sums["in_queue"],
            "bounce_rate": _ratio(sums["bounced"], sums["recipients"]),
            "deferral_rate": _ratio(sums["deferred"], sums["remote"]),
            "spam_folder_rate": _ratio(sums["spam"], sums["delivered"]),
            "latency_p90_s": grouped["latency"].quantile(0.9),
            "latency_max_s": grouped["latency"].max(),
            "legitimate": sums["legitimate"],
            "collateral_rate": _ratio(sums["collateral"], sums["legitimate"]),
        }
    )
    table.index.name = "group"
    return table.sort_values("recipients", ascending=False, kind="stable")


def _by_hop(attempts: pd.DataFrame) -> pd.DataFrame:
    frame = attempts.assign(
        hop=attempts["hop"].astype(str),
        outcome=attempts["outcome"].astype(str),
        source_ip=attempts["source_ip"].astype(str),
        pair=attempts["message_id"].astype(str) + " " + attempts["recipient"].astype(str),
    )
    grouped = frame.groupby("hop", sort=True)
    outcomes = pd.crosstab(frame["hop"], frame["outcome"])
    table = pd.DataFrame(
        {
            "attempts": grouped.size(),
            "recipients": grouped["pair"].nunique(),
            **{
                name: outcomes.get(name, pd.Series(0, index=outcomes.index))
                for name in ("sent", "deferred", "bounced")
            },
            "held": sum(
                (outcomes.get(name, pd.Series(0, index=outcomes.index)) for name in HELD),
                start=pd.Series(0, index=outcomes.index),
            ),
            "passed_on": outcomes.get("passed_on", pd.Series(0, index=outcomes.index)),
        }
    ).fillna(0)
    table["deferred_share"] = _ratio(table["deferred"] + table["held"], table["attempts"])
    ips = frame[frame["source_ip"].str.len() > 0].groupby("hop")["source_ip"].nunique()
    table["source_ips"] = ips.reindex(table.index).fillna(0).astype(int)
    table.index.name = "group"
    return table.sort_values("attempts", ascending=False, kind="stable")


def columns_of(by: str) -> dict[str, str]:
    """The columns of a breakdown by ``by`` and their units."""
    return HOP_COLUMNS if by == "hop" else MESSAGE_COLUMNS


COLUMN_LABELS = {
    "recipients": "recipients",
    "delivered": "delivered",
    "bounced": "bounced",
    "in_queue": "in queue",
    "bounce_rate": "bounce rate",
    "deferral_rate": "deferral rate",
    "spam_folder_rate": "spam folder",
    "latency_p90_s": "p90 latency",
    "latency_max_s": "max latency",
    "legitimate": "legitimate",
    "collateral_rate": "collateral",
    "attempts": "attempts",
    "sent": "sent",
    "deferred": "deferred",
    "held": "held",
    "passed_on": "passed on",
    "deferred_share": "deferred share",
    "source_ips": "addresses",
}
"""Short headers for the columns in printed tables."""

DIMENSION_LABELS = {
    "provider": "provider",
    "group": "sender group",
    "domain": "recipient domain",
    "receiver": "receiver",
    "hop": "hop (sending MTA)",
}
"""What each dimension is called in a table."""


BRIEF_COLUMNS = {
    "recipients": "recipients",
    "bounce_rate": "bounced",
    "deferral_rate": "deferred",
    "spam_folder_rate": "spam",
    "latency_p90_s": "p90",
    "collateral_rate": "collateral",
    "attempts": "attempts",
    "deferred_share": "deferred",
    "source_ips": "addresses",
}
"""The columns a terminal shows (``brief``), with one-word headers; the rest are in the
report."""

BRIEF_CAPTION = {
    "message": "bounced: bounce rate; deferred: share deferred at least once; spam: "
    "spam-folder rate of delivered; p90: 90th percentile latency; collateral: share of "
    "legitimate mail hurt by others' reputation",
    "hop": "deferred: share of attempts deferred; addresses: source addresses used",
}
"""What the one-word headers mean, for messages and for hops."""


def text_rows(
    table: pd.DataFrame, by: str, top: int | None = None, *, brief: bool = False
) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of ``table`` (a breakdown by ``by``) written for people, its first
    ``top`` groups and, if more, a last row saying how many were left out; ``brief``: only
    the ``BRIEF_COLUMNS``."""
    units = {c: u for c, u in columns_of(by).items() if not brief or c in BRIEF_COLUMNS}
    labels = BRIEF_COLUMNS if brief else COLUMN_LABELS
    header = [DIMENSION_LABELS[by], *(labels[c] for c in units)]
    shown = table if top is None else table.head(top)
    rows = [
        [str(name), *(format_value(unit, record[c]) for c, unit in units.items())]  # type: ignore[arg-type]
        for name, record in shown.iterrows()
    ]
    if len(shown) < len(table):
        rows.append([f"… {len(table) - len(shown)} more", *([""] * len(units))])
    return header, rows
