"""``[internet]``: an internet-sized world from a few parameters.

A scenario with an ``[internet]`` section has its providers, sender groups, recipient
domains, MX servers, receivers and blocklists generated before anything else is read
(``mailnet.scenario.internet_world``): the section is replaced by ordinary tables, and tables the
file writes itself are merged over the generated ones (a key the file gives wins). The
result is an ordinary scenario: ``mailnet generate`` writes it out, and that file runs to
identical tables.

The world is drawn from the named random streams ``internet.*`` of ``seed`` (default: the
scenario's ``simulation.seed``), so the same section and seed give the same world and a run
with another ``--seed`` keeps it. Users are counts, as everywhere in mailnet: one sender
group per provider, never an object per user.

Defaults and their sources (each key below); "assumption" marks a value no source
publishes, chosen to be plausible and meant to be varied.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from mailnet.policies.retry.registry import PRESETS
from mailnet.scenario.cycles import SendingCycle
from mailnet.scenario.fields import MAX_INTEGER, Model, PositiveRate

DEFAULT_RETRY_MIX = {
    "exim": 0.55,
    "postfix": 0.37,
    "sendmail": 0.04,
    "exchange": 0.03,
    "qmail": 0.01,
}
"""Shares of the providers' MTAs: the Security Space MX survey of December 2023 (Exim
55.7 %, Postfix 37.7 %, Sendmail 3.5 %, every other product under 2 %), rounded; the
rest split between Exchange, which banner surveys undercount, and qmail. A survey of
receiving servers: no survey of sending MTAs is published."""

DEFAULT_HOURLY = [
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.9, 1.5, 1.9, 2.0, 1.9,
    1.6, 1.8, 1.9, 1.8, 1.6, 1.3, 1.0, 0.9, 0.85, 0.75, 0.5, 0.3,
]  # fmt: skip
"""Relative sending per hour of the day: office hours with a lunch dip, quiet nights
(assumption: Gomes et al., IMC 2004, find daily and weekly cycles in legitimate mail and
none in spam, mail-facts.md §8, but publish no profile to copy)."""

DEFAULT_WEEKLY = [1.15, 1.15, 1.15, 1.15, 1.1, 0.45, 0.4]
"""Relative sending per day, Monday first: weekends at about 40 % of a weekday
(assumption, as ``DEFAULT_HOURLY``)."""


MAX_WEIGHTS = 2_000_000
"""The most ``providers x domains``: each provider's sender groups list the popularity of
every domain, and a scenario holding more weights than this takes minutes to load."""


class InternetConfig(Model):
    """The parameters of a generated world (README "A generated internet")."""

    seed: int | None = Field(None, ge=0, le=MAX_INTEGER)
    domains: int = Field(1000, ge=1, le=1_000_000)
    zipf_exponent: float = Field(1.0, ge=0, le=5)
    giants: int = Field(3, ge=0, le=30)
    giant_mx: int = Field(5, ge=1, le=20)
    giant_sessions: int = Field(1000, ge=1, le=1_000_000)
    tail_sessions: int = Field(50, ge=1, le=1_000_000)
    two_mx: float = Field(0.3, ge=0, le=1)
    backup_mx: float = Field(0.1, ge=0, le=1)
    greylisting: float = Field(0.1, ge=0, le=1)
    providers: int = Field(20, ge=1, le=1000)
    provider_exponent: float = Field(1.0, ge=0, le=5)
    users_per_ip: int = Field(20_000, ge=1, le=10_000_000)
    retry_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RETRY_MIX))
    users: int = Field(100_000, ge=1, le=10_000_000)
    rate: PositiveRate = 5 / 86400
    recipients: float = Field(1.3, ge=1, le=1000)
    invalid_recipients: float = Field(0.01, ge=0, le=1)
    cycle: SendingCycle | None = Field(
        default_factory=lambda: SendingCycle(hourly=DEFAULT_HOURLY, weekly=DEFAULT_WEEKLY)
    )
    spammers: float = Field(0.2, ge=0, le=1)
    spam_rate: PositiveRate = 2000 / 86400
    spam_traps: float = Field(0.001, ge=0, le=1)
    spam_complaints: float = Field(0.003, ge=0, le=1)

    @field_validator("retry_mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        for name, share in mix.items():
            if name not in PRESETS:
                known = ", ".join(sorted(PRESETS))
                raise ValueError(f"unknown retry preset {name!r} (known: {known})")
            if not 0 <= share <= 1:
                raise ValueError(f"share of {name!r} must be in [0, 1]")
        if sum(mix.values()) <= 0:
            raise ValueError("shares sum to zero")
        return mix

    @model_validator(mode="after")
    def _size(self) -> InternetConfig:
        if self.providers * self.domains > MAX_WEIGHTS:
            raise ValueError(
                f"providers x domains is {self.providers * self.domains:,}, more than "
                f"{MAX_WEIGHTS:,}: every provider's senders weigh every domain"
            )
        return self
