"""Provider sections (``[providers.NAME]``): outbound MTAs, their address pools and controls.

Defaults are Postfix's (mail-facts.md §1) unless a field's docstring says otherwise.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mailnet.scenario.fields import (
    CustomRetry,
    Duration,
    Model,
    PositiveDuration,
    PositiveRate,
)


class SenderRateLimitConfig(Model):
    """Per-sender submission limit: a token bucket; mail beyond it waits at the MSA."""

    rate: PositiveRate
    burst: int = Field(10, ge=1)


class OutboundFilterConfig(Model):
    """The provider's outbound spam filter: stops ``catch_rate`` of spam at submission."""

    catch_rate: float = Field(ge=0, le=1)
    fp_rate: float = Field(0.0, ge=0, le=1)


class SuspensionConfig(Model):
    """Suspend senders whose hard-bounce or complaint rate passes these (Amazon SES: 5 %
    bounces, 0.1 % complaints; a 7-day window and 200 messages as coss.com; mail-facts.md §7)."""

    bounce_rate: float = Field(0.05, gt=0, le=1)
    complaint_rate: float = Field(0.001, gt=0, le=1)
    window: PositiveDuration = 7 * 86400.0
    min_volume: int = Field(200, ge=1)
    duration: PositiveDuration | None = None


class PoolThresholds(Model):
    """When ``pool_strategy = "by-reputation"`` moves a sender to pool ``bad``: its bounce
    rate or complaint rate in the window (the suspension's, else 7 days) reaches these.
    A sender with fewer than ``min_volume`` messages there is too new to judge and uses
    pool ``new`` (if there is one) or ``good``. Defaults: Amazon SES's review lines, 5 %
    bounces and 0.1 % complaints, over at least 200 messages (mail-facts.md §7)."""

    bounce_rate: float = Field(0.05, gt=0, le=1)
    complaint_rate: float = Field(0.001, gt=0, le=1)
    min_volume: int = Field(200, ge=1)


class WarmupConfig(Model):
    """New addresses that may send only ``daily_limits[k]`` messages on day k of warm-up."""

    ips: list[str] = Field(min_length=1)
    daily_limits: list[int] = Field(
        default_factory=lambda: [50, 100, 500, 1000, 5000, 10000, 20000, 40000]
    )
    start: Duration = 0.0


class RemovalRequestConfig(Model):
    """The provider asks the lists that take removal requests to delist its addresses,
    ``after`` a listing begins (noticing it and filing the request; unpublished: 4 h,
    range 1-24 h), from ``lists`` (default: every list of the scenario)."""

    after: Duration = 4 * 3600.0
    lists: list[str] | None = None


class QuarantineConfig(Model):
    """The provider moves the customers whose mail hit a list's traps to the addresses
    ``ips`` (taken out of the normal rotation), ``after`` a listing of one of its addresses
    on one of ``lists`` (default: every list), for ``duration`` (default: for good). The
    delay is unpublished: 1 h, range 10 min-24 h (shared pools split by sender quality,
    mail-facts.md §20)."""

    ips: list[str] = Field(min_length=1)
    after: Duration = 3600.0
    duration: PositiveDuration | None = None
    lists: list[str] | None = None


class Provider(Model):
    """An outbound mail provider: submission server plus outbound MTA with a shared IP pool.

    Defaults are Postfix's (mail-facts.md §1): ``max_connections`` is default_process_limit
    (100), the destination window starts at initial_destination_concurrency (5) and grows
    to default_destination_concurrency_limit (20); one failed pseudo-cohort
    (failed_cohort_limit 1) marks a destination dead; smtp_connect_timeout is 30 s,
    smtp_mx_address_limit 5 and smtp_mx_session_limit 2 (SMTP sessions per delivery; a
    failed connection is no session: mail-facts.md §11, ``smtp_connect.c``).
    """

    ips: list[str] = Field(min_length=1)
    ip_selection: Literal["round-robin", "random", "sender-hash"] = "round-robin"
    max_connections: int = Field(100, ge=1)
    destination_concurrency_limit: int = Field(20, ge=1)
    initial_destination_concurrency: int = Field(5, ge=1)
    destination_concurrency_failed_cohort_limit: float = Field(1.0, gt=0)
    destination_concurrency_negative_feedback: float = Field(1.0, ge=0, le=1)
    destination_concurrency_positive_feedback: float = Field(1.0, ge=0, le=1)
    smtp_connect_timeout: Duration = 30.0
    smtp_mx_address_limit: int = Field(5, ge=1)
    smtp_mx_session_limit: int = Field(2, ge=1)
    local_domains: list[str] = Field(min_length=1)
    hostname: str | None = None
    relay_host: str | None = None
    retry: str | CustomRetry = "postfix"
    retry_params: dict[str, Any] = Field(default_factory=dict)
    asn: int = Field(64496, ge=0)
    asn_size: int = Field(65536, ge=1)
    pool_strategy: Literal["shared", "by-class", "by-reputation", "dedicated"] = "shared"
    pools: dict[str, list[str]] = Field(default_factory=dict)
    pool_thresholds: PoolThresholds = Field(default_factory=PoolThresholds)
    rate_limit: SenderRateLimitConfig | None = None
    outbound_filter: OutboundFilterConfig | None = None
    suspension: SuspensionConfig | None = None
    warmup: WarmupConfig | None = None
    removal_requests: RemovalRequestConfig | None = None
    quarantine: QuarantineConfig | None = None

    @field_validator("ips")
    @classmethod
    def _valid_ips(cls, ips: list[str]) -> list[str]:
        for ip in ips:
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise ValueError(f"not an IPv4 address: {ip!r}") from None
        if len(set(ips)) != len(ips):
            raise ValueError("an address appears twice")
        return ips

    @model_validator(mode="after")
    def _window(self) -> Provider:
        if self.initial_destination_concurrency > self.destination_concurrency_limit:
            raise ValueError(
                "initial_destination_concurrency exceeds destination_concurrency_limit"
            )
        for name, ips in self.pools.items():
            if not ips:
                raise ValueError(f"pool {name!r} has no addresses")
            stray = [ip for ip in ips if ip not in self.ips]
            if stray:
                raise ValueError(f"pool {name!r} uses {stray[0]}, which is not in ips")
        if self.quarantine is not None:
            stray = [ip for ip in self.quarantine.ips if ip not in self.ips]
            if stray:
                raise ValueError(f"quarantine uses {stray[0]}, which is not in ips")
            if set(self.quarantine.ips) == set(self.ips):
                raise ValueError("quarantine takes every address: none is left for the rest")
        needs = {"by-reputation": ("good", "bad")}.get(self.pool_strategy, ())
        missing = [n for n in needs if n not in self.pools]
        if missing:
            raise ValueError(f"pool_strategy {self.pool_strategy!r} needs pools {missing}")
        if self.pool_strategy == "by-class" and not self.pools:
            raise ValueError("pool_strategy 'by-class' needs pools named by sender class")
        return self
