"""Sender sections (``[senders.NAME]``): populations of mail clients and what they send."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mailnet.scenario.cycles import SendingCycle
from mailnet.scenario.fields import Duration, Model, Rate


class ExplicitMessage(Model):
    """One message at a fixed time: exact tests and hand-made timelines."""

    at: Duration
    to: list[str] = Field(min_length=1)
    sender: int = Field(0, ge=0)


class Campaigns(Model):
    """Bursts: every ``every`` (first at ``start``), ``size`` messages spread at random
    over ``over`` seconds, besides any steady rate."""

    every: Duration
    size: int = Field(ge=1)
    over: Duration = 0.0
    start: Duration = 0.0

    @model_validator(mode="after")
    def _fits(self) -> Campaigns:
        if self.every <= 0:
            raise ValueError("every must be positive")
        if self.over > self.every:
            raise ValueError("a campaign must end (over) before the next one starts (every)")
        return self


class SenderGroup(Model):
    """A population of mail clients (MUAs) of one class, submitting to one provider.

    ``domain`` is the group's own authenticated sending domain (DKIM d=); by default its
    mail is signed with its provider's shared domain, whose reputation it shares.
    ``cycle`` makes ``rate`` follow the hour of the day and the day of the week
    (``mailnet.scenario.cycles``).
    """

    provider: str
    domain: str | None = Field(
        None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"
    )
    count: int = Field(1, ge=1)
    sender_class: Literal["ham", "bulk", "spam"] = Field("ham", alias="class")
    rate: Rate | None = None
    recipients: float = Field(1.0, ge=1)
    invalid_recipients: float = Field(0.0, ge=0, le=1)
    domains: dict[str, float] = Field(default_factory=dict)
    messages: list[ExplicitMessage] | None = None
    trace: str | None = None
    campaigns: Campaigns | None = None
    traps: float = Field(0.0, ge=0, le=1)
    complaints: float = Field(0.0, ge=0, le=1)
    retries: bool = True
    cycle: SendingCycle | None = None

    @field_validator("domains")
    @classmethod
    def _weights(cls, domains: dict[str, float]) -> dict[str, float]:
        for name, weight in domains.items():
            if weight < 0:
                raise ValueError(f"weight of {name!r} is negative")
        if domains and sum(domains.values()) <= 0:
            raise ValueError("weights sum to zero")
        return domains

    @model_validator(mode="after")
    def _one_source(self) -> SenderGroup:
        given = [k for k in ("rate", "messages", "trace") if getattr(self, k) is not None]
        if len(given) > 1 or (not given and self.campaigns is None):
            raise ValueError(
                "give exactly one of rate, messages or trace (campaigns may come with a rate)"
            )
        if self.campaigns is not None and given and given != ["rate"]:
            raise ValueError("campaigns go with a rate or alone, not with messages or trace")
        if (self.rate is not None or self.campaigns is not None) and not self.domains:
            raise ValueError("a sender with a rate or campaigns needs domains to send to")
        if self.cycle is not None and self.rate is None:
            raise ValueError("a cycle shapes a rate: give rate with it")
        if self.traps + self.invalid_recipients > 1:
            raise ValueError("traps + invalid_recipients exceed 1")
        return self
