"""Domain and server sections: recipient domains (``[domains.NAME]``) and the SMTP servers
(``[servers.HOST]``) their MX records name."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mailnet.scenario.fields import CustomRetry, Duration, Model, PositiveRate


class MxRecord(Model):
    host: str
    preference: int = Field(10, ge=0, le=65535)


class Domain(Model):
    """A recipient domain: its MX records (RFC 5321 §5.1) and how its users fetch mail.

    ``retrieval`` is POP polling every ``poll_interval`` or IMAP push (fetched as soon as
    stored). ``dns_tempfail`` and ``dns_nxdomain`` are the probabilities that a sender's MX
    lookup fails temporarily (defer, 4.4.3) or finds no such domain (bounce, 5.1.2).
    ``users`` is how many mailboxes generated recipients are drawn from.
    """

    mx: list[MxRecord] | None = None
    null_mx: bool = False
    poll_interval: Duration = 600.0
    retrieval: Literal["pop", "imap"] = "pop"
    users: int = Field(1000, ge=1)
    dns_tempfail: float = Field(0.0, ge=0, le=1)
    dns_nxdomain: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _null(self) -> Domain:
        if self.null_mx and self.mx:
            raise ValueError("a null MX domain has no other MX records")
        if self.dns_tempfail + self.dns_nxdomain > 1:
            raise ValueError("dns_tempfail + dns_nxdomain exceed 1")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
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

    Per-recipient replies beyond unknown users: with probability ``mailbox_full`` a
    recipient's mailbox is full at an attempt (452 4.2.2, transient); with
    ``recipient_rate_limit`` each recipient accepts at most that rate (token bucket of
    ``recipient_burst`` messages) and is answered 450 4.2.1 beyond it, as Gmail does.

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
    mailbox_full: float = Field(0.0, ge=0, le=1)
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
