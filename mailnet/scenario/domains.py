"""Domain and server sections: recipient domains (``[domains.NAME]``) and the SMTP servers
(``[servers.HOST]``) their MX records name."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from mailnet.scenario.fields import (
    CustomRetry,
    Duration,
    Model,
    PositiveDuration,
    PositiveRate,
)


class MxRecord(Model):
    host: str
    preference: int = Field(10, ge=0, le=65535)


class MailboxFullEpisodes(Model):
    """Full mailboxes as episodes: at any time a share ``share`` of the domain's mailboxes
    is full, each full for an exponential time of mean ``mean_duration`` (and then not
    full for ``mean_duration * (1 - share) / share`` on average)."""

    share: float = Field(gt=0, le=1)
    mean_duration: PositiveDuration


class MailboxFullWindow(Model):
    """A scheduled window ``[start, end)`` in which ``mailboxes`` (local parts, e.g.
    ``"alice"``; all of the domain's when left out) are full."""

    start: Duration
    end: Duration
    mailboxes: list[str] | None = Field(None, min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _ordered(self) -> MailboxFullWindow:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class DnsFaultEpisodes(Model):
    """A domain's DNS fails for episodes: alternating exponential periods, working for a
    mean ``mtbf`` and failing (SERVFAIL or timeout: the sender defers, 4.4.3) for a mean
    ``mttr``."""

    mtbf: PositiveDuration
    mttr: PositiveDuration


class DnsFaultWindow(Model):
    """A scheduled DNS fault ``[start, end)``: ``servfail`` (the sender defers, 4.4.3), or
    ``nxdomain``, a broken domain whose zone is gone (the sender bounces, 5.1.2)."""

    start: Duration
    end: Duration
    answer: Literal["servfail", "nxdomain"] = "servfail"

    @model_validator(mode="after")
    def _ordered(self) -> DnsFaultWindow:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


_WINDOWS = Field(min_length=1, max_length=10_000)
"""Scheduled windows of one domain: at least one, and few enough to check each lookup."""


def _episodes_or_windows(value: Any) -> str:
    """Which form a fault key takes: a list of windows, or a table of episodes (so that
    an error names the problem of the form given, not of the other)."""
    return "Windows" if isinstance(value, list) else "Episodes"


_REPLACED = {
    "dns_tempfail": 'DNS faults are episodes now: dns_faults = { mtbf = "30d", mttr = "1h" }'
    ' or windows [ { start = "2h", end = "4h" } ]',
    "dns_nxdomain": "a domain that exists no longer answers NXDOMAIN at random: a broken"
    ' domain is dns_faults = [ { start = "0s", end = "2d", answer = "nxdomain" } ]',
    "mailbox_full": "full mailboxes are episodes of the recipient's domain now:"
    ' [domains.NAME] mailbox_full = { share = 0.01, mean_duration = "6h" }',
}
"""Keys of earlier versions: a value of 0 (off, as resolved scenarios wrote it) is
dropped; any other value is an error naming the replacement."""


def _replaced(data: Any, keys: tuple[str, ...]) -> Any:
    """``data`` without the replaced ``keys`` set to 0; an error for a non-zero one."""
    if not isinstance(data, dict) or not any(k in data for k in keys):
        return data
    data = dict(data)
    for key in keys:
        if key in data:
            value = data.pop(key)
            if value != 0 or isinstance(value, bool):
                raise ValueError(f"{key} is replaced: {_REPLACED[key]}")
    return data


class Domain(Model):
    """A recipient domain: its MX records (RFC 5321 §5.1) and how its users fetch mail.

    ``retrieval`` is POP polling every ``poll_interval`` (the inbox only) or IMAP push
    (fetched as soon as stored, the spam folder too). ``users`` is how many mailboxes
    generated recipients are drawn from.

    Faults that last: ``mailbox_full`` (episodes per mailbox, or scheduled windows) makes
    the primary MX answer 452 4.2.2 to a full mailbox; ``dns_faults`` (random episodes of
    the domain, or scheduled windows) makes a sender's MX lookup fail: SERVFAIL defers
    (4.4.3), and only a window with ``answer = "nxdomain"`` bounces (5.1.2). Both are
    off by default: no fault without a source that puts one there. Codes: RFC 5321 §5.1
    and RFC 3463 (mail-facts.md §5; Postfix's wording, §11); POP has no folders (RFC
    1939, §5).
    """

    mx: list[MxRecord] | None = None
    null_mx: bool = False
    poll_interval: Duration = 600.0
    retrieval: Literal["pop", "imap"] = "pop"
    users: int = Field(1000, ge=1)
    mailbox_full: (
        Annotated[
            Annotated[MailboxFullEpisodes, Tag("Episodes")]
            | Annotated[list[MailboxFullWindow], _WINDOWS, Tag("Windows")],
            Discriminator(_episodes_or_windows),
        ]
        | None
    ) = None
    dns_faults: (
        Annotated[
            Annotated[DnsFaultEpisodes, Tag("Episodes")]
            | Annotated[list[DnsFaultWindow], _WINDOWS, Tag("Windows")],
            Discriminator(_episodes_or_windows),
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return _replaced(data, ("dns_tempfail", "dns_nxdomain"))

    @model_validator(mode="after")
    def _null(self) -> Domain:
        if self.null_mx and self.mx:
            raise ValueError("a null MX domain has no other MX records")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if isinstance(self.dns_faults, list):
            windows = sorted((w.start, w.end) for w in self.dns_faults)
            for (_, end), (start, _) in pairwise(windows):
                if start < end:
                    raise ValueError(f"dns_faults windows overlap at {start}s")
        return self


class Distribution(Model):
    """A service-time distribution in seconds: exponential, lognormal, constant or uniform."""

    dist: Literal["exponential", "lognormal", "constant", "uniform"] = "exponential"
    mean: Duration | None = None
    sd: Duration | None = None
    low: Duration | None = None
    high: Duration | None = None

    @model_validator(mode="after")
    def _params(self) -> Distribution:
        if self.dist == "uniform":
            if self.low is None or self.high is None or self.high < self.low:
                raise ValueError("uniform needs low <= high")
        else:
            if self.mean is None or self.mean <= 0:
                raise ValueError(f"{self.dist} needs a positive mean")
            if self.dist == "lognormal" and (self.sd is None or self.sd <= 0):
                raise ValueError("lognormal needs a positive sd")
        return self


class RandomOutages(Model):
    """Alternating up and down periods, exponential with means ``mtbf`` and ``mttr``."""

    mtbf: Duration
    mttr: Duration
    mode: Literal["timeout", "refuse"] = "timeout"

    @model_validator(mode="after")
    def _positive(self) -> RandomOutages:
        if self.mtbf <= 0 or self.mttr <= 0:
            raise ValueError("mtbf and mttr must be positive")
        return self


class OutageWindow(Model):
    start: Duration
    end: Duration
    mode: Literal["timeout", "refuse"] = "timeout"

    @model_validator(mode="after")
    def _ordered(self) -> OutageWindow:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class Server(Model):
    """An inbound SMTP server (MX host).

    ``sessions`` run in parallel; up to ``backlog`` further connections wait FIFO for one,
    and beyond that a connection is refused with 421 4.3.2. ``connect_time`` is the
    constant connection set-up (TCP handshake and greeting) before a session can start.
    A ``backup`` server accepts mail for its domain and relays it to the more preferred
    MX hosts from its own queue, with its own retry policy. A ``relay`` accepts mail and
    passes it on from its own queue: to ``relay_to`` (an inbound gateway in front of a
    domain's final server) or, without it, by MX lookup (a provider's smarthost).

    Per-recipient replies beyond unknown users: a primary answers 452 4.2.2 to a
    mailbox its domain's ``mailbox_full`` makes full; with ``recipient_rate_limit`` each
    recipient accepts at most that rate (token bucket of ``recipient_burst`` messages) and
    is answered 450 4.2.1 beyond it, as Gmail does.

    ``verify_recipients``: whether the server knows its domain's users and refuses unknown
    ones at RCPT (550 5.1.1). Default ``true`` for a primary or relay and ``false`` for a
    backup: a Postfix backup MX without ``relay_recipient_maps`` accepts every address of
    its domain, queues the mail and bounces unknown users itself once the primary refuses
    them (STANDARD_CONFIGURATION_README; mail-facts.md §11).

    A backup or relay bounces (554 5.4.0) a copy that has passed ``hopcount_limit`` MTAs,
    counting submission and itself: Postfix's hopcount_limit of Received: headers, 50
    (mail-facts.md §11).
    """

    sessions: int = Field(50, ge=1)
    backlog: int | Literal["unlimited"] = 100
    service_time: Distribution = Distribution(dist="lognormal", mean=2.0, sd=1.0)
    outages: RandomOutages | list[OutageWindow] | None = None
    role: Literal["primary", "backup", "relay"] = "primary"
    relay_to: str | None = None
    ip: str | None = None
    connect_time: Duration = 0.05
    retry: str | CustomRetry = "postfix"
    retry_params: dict[str, Any] = Field(default_factory=dict)
    max_connections: int = Field(20, ge=1)
    recipient_rate_limit: PositiveRate | None = None
    recipient_burst: int = Field(10, ge=1)
    receiver: str | None = None
    hopcount_limit: int = Field(50, ge=2, le=10_000)
    verify_recipients: bool = True

    @model_validator(mode="before")
    @classmethod
    def _verify_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("verify_recipients") is None:
            data = {**data, "verify_recipients": data.get("role") != "backup"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return _replaced(data, ("mailbox_full",))

    @model_validator(mode="after")
    def _relay(self) -> Server:
        if self.relay_to is not None and self.role != "relay":
            raise ValueError('relay_to is only for role = "relay"')
        return self

    @field_validator("backlog")
    @classmethod
    def _backlog(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError('backlog must be >= 0 or "unlimited"')
        return value
