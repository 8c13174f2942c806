"""What the log is written from: the run's tables as plain column lists, and its hosts.

Every fact comes from a recorded column (``mailnet.tables``); the scenario gives only
names and addresses: each hop's host name, each server's address and role, and which
domains each provider delivers itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from mailnet.scenario import Scenario


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as a list of Python values, missing values as ``None``."""
    values = frame[name].astype(object).tolist()
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
        for v in values
    ]


def _floats(frame: pd.DataFrame, name: str) -> list[float]:
    return frame[name].astype(float).tolist()


class Messages:
    """The messages table, by row, with each message's rows in table order."""

    def __init__(self, frame: pd.DataFrame):
        self.mid: list[int] = frame["message_id"].astype(int).tolist()
        self.rcpt: list[str] = _column(frame, "recipient")
        self.sender: list[str] = [s or "" for s in _column(frame, "sender")]
        self.provider: list[str] = _column(frame, "provider")
        self.domain: list[str] = _column(frame, "recipient_domain")
        self.is_dsn: list[bool] = frame["is_dsn"].astype(bool).tolist()
        self.created = _floats(frame, "created_at")
        self.released = _floats(frame, "released_at")
        self.status: list[str] = _column(frame, "status")
        self.enhanced: list[str | None] = _column(frame, "final_enhanced_code")
        self.reply: list[str | None] = _column(frame, "final_reply")
        self.stored_by: list[str | None] = _column(frame, "stored_by")
        self.dsn_of: list[int | None] = _column(frame, "dsn_of")
        self.dsn_kind: list[str | None] = _column(frame, "dsn_kind")
        self.dsn_recipient: list[str | None] = _column(frame, "dsn_recipient")
        self.rows_of: dict[int, list[int]] = {}
        self.row_of: dict[tuple[int, str], int] = {}
        for i, mid in enumerate(self.mid):
            self.rows_of.setdefault(mid, []).append(i)
            self.row_of[(mid, self.rcpt[i])] = i

    def sender_of(self, mid: int) -> str:
        rows = self.rows_of.get(mid)
        return self.sender[rows[0]] if rows else ""

    def dsn(self, mid: int) -> bool:
        rows = self.rows_of.get(mid)
        if not rows:
            return False
        return self.is_dsn[rows[0]]


class Attempts:
    """The attempts table, by row."""

    def __init__(self, frame: pd.DataFrame):
        self.mid: list[int] = frame["message_id"].astype(int).tolist()
        self.rcpt: list[str] = _column(frame, "recipient")
        self.hop: list[str] = _column(frame, "hop")
        self.ip: list[str] = [ip or "" for ip in _column(frame, "source_ip")]
        self.mx: list[str | None] = _column(frame, "mx_host")
        self.start = _floats(frame, "started_at")
        self.session = _floats(frame, "session_at")
        self.end = _floats(frame, "ended_at")
        self.code: list[int] = frame["code"].astype(int).tolist()
        self.enhanced: list[str] = [e or "" for e in _column(frame, "enhanced_code")]
        self.outcome: list[str] = _column(frame, "outcome")
        self.reply: list[str] = [r or "" for r in _column(frame, "reply")]

    def __len__(self) -> int:
        return len(self.mid)


class Hosts:
    """Host names and addresses of the scenario's hops."""

    def __init__(self, scenario: Scenario):
        self.names: dict[str, str] = {}
        for name, cfg in scenario.providers.items():
            self.names[name] = getattr(cfg, "hostname", None) or f"mta.{cfg.local_domains[0]}"
        for name in scenario.servers:
            self.names[name] = name
        self.ip = {name: cfg.ip for name, cfg in scenario.servers.items()}
        self.relays = {name for name, cfg in scenario.servers.items() if cfg.role != "primary"}
        self.local_domains = {
            name: set(cfg.local_domains) for name, cfg in scenario.providers.items()
        }

    def host(self, hop: str) -> str:
        """The host name a hop logs under."""
        return self.names.get(hop, hop)

    def hostip(self, server: str) -> str:
        """``host[address]`` of a server, as Postfix names a peer."""
        return f"{server}[{self.ip.get(server, '0.0.0.0')}]"
