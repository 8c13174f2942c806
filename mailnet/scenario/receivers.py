"""Reputation sections: receivers' policies (``[receivers.NAME]``) and the DNS blocklists
(``[blocklists.NAME]``) they consult."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mailnet.scenario.fields import Duration, Model, PositiveDuration, PositiveRate

Scope = Literal["ip", "prefix", "asn"]
"""A listing level: the address itself, its prefix, or its autonomous system."""

SCOPES: tuple[Scope, ...] = ("ip", "prefix", "asn")


class GreylistConfig(Model):
    """postgrey's greylisting; defaults are postgrey 1.37's (mail-facts.md §6)."""

    delay: Duration = 300.0
    retry_window: Duration = 2 * 86400.0
    max_age: Duration = 35 * 86400.0
    auto_whitelist_clients: int = Field(5, ge=0)
    ipv4_prefix: int = Field(24, ge=0, le=32)


class ReputationConfig(Model):
    """A receiver's local reputation of client addresses and, with ``domain``, of
    authenticated sending domains (mailnet.policies.reputation has the score and the
    sources). ``throttle_below``/``reject_below`` default to the ``style``'s published
    spam-rate lines (gmail 0.909/0.769, yahoo 0.769/0.5, microsoft 0.9/0.5);
    ``new_prior``, ``new_daily`` (messages a day) and ``warm_growth`` (a day) govern
    addresses in a provider's warm-up."""

    half_life: PositiveDuration = 7 * 86400.0
    prior: float = Field(1.0, ge=0, le=1)
    prior_weight: float = Field(10.0, gt=0)
    throttle_below: float | None = Field(None, ge=0, le=1)
    reject_below: float | None = Field(None, ge=0, le=1)
    throttle_rate: PositiveRate = 1 / 60
    throttle_burst: int = Field(10, ge=1)
    style: Literal["gmail", "microsoft", "yahoo"] = "gmail"
    domain: bool = True
    new_prior: float = Field(0.8, ge=0, le=1)
    new_daily: float = Field(500.0, gt=0, le=1e9)
    warm_growth: float = Field(0.4, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> ReputationConfig:
        if (
            self.reject_below is not None
            and self.throttle_below is not None
            and self.reject_below > self.throttle_below
        ):
            raise ValueError("reject_below must not exceed throttle_below")
        return self


class FilterConfig(Model):
    """Content filtering: spam-folder error rates at a perfect and at the worst IP score."""

    fp_base: float = Field(0.001, ge=0, le=1)
    fn_base: float = Field(0.05, ge=0, le=1)
    fp_worst: float = Field(0.2, ge=0, le=1)
    fn_worst: float = Field(0.005, ge=0, le=1)


class Receiver(Model):
    """A receiving organisation's policies, shared by the servers that name it.

    ``blocklists`` maps list names to the action on a listed client: ``reject`` (554
    5.7.1, permanent) or ``defer`` (451 4.7.1, transient); ``blocklist_scopes`` limits
    which listing levels count (default: ip, prefix and asn).
    """

    blocklists: dict[str, Literal["reject", "defer"]] = Field(default_factory=dict)
    blocklist_scopes: list[Scope] = Field(default_factory=lambda: list(SCOPES))
    greylisting: GreylistConfig | None = None
    reputation: ReputationConfig | None = None
    filter: FilterConfig | None = None


class BlocklistConfig(Model):
    """A DNSBL: a preset (spamcop, uceprotect, spamhaus-css) and overrides of its rules
    (``mailnet.policies.blocklists.Blocklist``; preset values and their sources in
    ``mailnet.policies.blocklist_presets``).

    ``traps`` maps sender groups to the share of their recipients that also land in this
    list's own spam traps (pristine and typo traps run by the list or its feeds,
    mail-facts.md §18): the list sinks those messages itself, whatever the scenario's
    receivers do with the rest. No operator publishes trap rates: every share is a model
    assumption (default 0: the group hits none of this list's traps).
    """

    preset: str | None = None
    zone: str | None = None
    trap_hits: int | None = Field(None, ge=1)
    complaints: int | None = Field(None, ge=1)
    spam_volume: int | None = Field(None, ge=1)
    min_reports: float | None = Field(None, gt=0, le=1e6)
    trap_weight: float | None = Field(None, gt=0, le=1e6)
    volume_ratio: float | None = Field(None, gt=0, le=1)
    window: PositiveDuration | None = None
    duration: PositiveDuration | None = None
    removal_delay: Duration | None = None
    removal_limit: int | None = Field(None, ge=0, le=1000)
    prefix_len: int | None = Field(None, ge=8, le=32)
    prefix_threshold: int | None = Field(None, ge=1)
    asn_share: float | None = Field(None, gt=0, le=1)
    asn_min_listed: int | None = Field(None, ge=1)
    traps: dict[str, float] = Field(default_factory=dict)

    @field_validator("traps")
    @classmethod
    def _shares(cls, traps: dict[str, float]) -> dict[str, float]:
        for group, share in traps.items():
            if not 0 <= share <= 1:
                raise ValueError(f"trap share of {group!r} must be in [0, 1]")
        return traps
