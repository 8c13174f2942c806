"""Microsoft Exchange: Exchange Server's transport retry and Exchange Online's (mail-facts.md §4)."""

from __future__ import annotations

from numpy.random import Generator

from mailnet.policies.retry.base import (
    DAY,
    HOUR,
    MINUTE,
    Count,
    Factor,
    PolicyBase,
    PositiveCount,
    PositiveSeconds,
    RetryParams,
    Seconds,
)
from mailnet.policies.retry.client import POSTFIX_CONNECT_TIMEOUT, ClientParams

EXCHANGE_DOMAIN_CONNECTIONS = 20
"""MaxPerDomainOutboundConnections (mail-facts.md §16, ff329556)."""


class ExchangeParams(RetryParams):
    """Exchange Server's parameters. Defaults: MessageExpirationTimeout 2 d
    (learn.microsoft.com ff324860), TransientFailureRetryCount 6 (ff344266) with
    TransientFailureRetryInterval 5 min (aa998043), MessageRetryInterval 15 min (ff345508),
    DelayNotificationTimeout 4 h (ff342868); for the client (mail-facts.md §16)
    OutboundConnectionFailureRetryInterval 10 min (ff339771) and
    MaxPerDomainOutboundConnections 20 (ff329556)."""

    MessageExpirationTimeout: Seconds = 2 * DAY
    TransientFailureRetryCount: Count = 6
    TransientFailureRetryInterval: PositiveSeconds = 5 * MINUTE
    MessageRetryInterval: PositiveSeconds = 15 * MINUTE
    DelayNotificationTimeout: Seconds = 4 * HOUR
    OutboundConnectionFailureRetryInterval: PositiveSeconds = 10 * MINUTE
    MaxPerDomainOutboundConnections: PositiveCount = EXCHANGE_DOMAIN_CONNECTIONS


class ExchangeRetry(PolicyBase):
    """Exchange Server (on-premises) transport retry (mail-facts.md §4).

    Reading of the docs: after the first attempt fails, up to TransientFailureRetryCount
    quick retries follow TransientFailureRetryInterval apart; after that the message waits
    MessageRetryInterval between tries. So attempts at 0, 5, ... 30 min, then every 15 min.
    A queue-level connection failure would use OutboundConnectionFailureRetryInterval
    (10 min) instead; the policy does not distinguish. The message expires at the first
    failure with age >= MessageExpirationTimeout. Parameters: :class:`ExchangeParams`.
    """

    Params = ExchangeParams
    params: ExchangeParams

    def __init__(
        self, params: ExchangeParams, rng: Generator | None = None, name: str = "exchange"
    ) -> None:
        super().__init__(params, rng, name)
        self.lifetime = params.MessageExpirationTimeout
        self.delay_warning = params.DelayNotificationTimeout or None

    def after_failure(
        self,
        *,
        now: float,
        arrival: float,
        first_failure: float,
        attempts: int,
        destination: str,
        is_bounce: bool = False,
    ) -> float | None:
        """See :class:`RetryPolicy`; Exchange's rule as in the class docstring."""
        if now - arrival >= self.lifetime:
            return None
        p = self.params
        quick = attempts <= p.TransientFailureRetryCount
        return now + (p.TransientFailureRetryInterval if quick else p.MessageRetryInterval)

    def client(self) -> ClientParams:
        """Exchange's transport (mail-facts.md §16): MaxPerDomainOutboundConnections per
        destination, no slow start or dead destinations; after a failed connection the
        next-hop queue is in retry, no connection for any of its mail,
        TransientFailureRetryInterval for the first TransientFailureRetryCount failures,
        then OutboundConnectionFailureRetryInterval; its mail waits in the queue meanwhile.
        No connect timeout or MX fall-over is documented: Postfix's 30 s and limits are
        kept."""
        p = self.params
        return ClientParams(
            "exchange transport",
            "mail-facts.md §16",
            connect_timeout=POSTFIX_CONNECT_TIMEOUT,
            concurrency="per-destination",
            destination_limit=p.MaxPerDomainOutboundConnections,
            memory="next-hop",
            memory_time=p.TransientFailureRetryInterval,
            memory_count=p.TransientFailureRetryCount,
            memory_later=p.OutboundConnectionFailureRetryInterval,
        )


class ExchangeOnlineParams(RetryParams):
    """Exchange Online's parameters: MessageExpiration 24 h (48 h before March 2019; since
    2022 admins may set 12-24 h with ``Set-TransportConfig -MessageExpiration``)
    [S: lonesync.com, pupuweb MC441064]; the retry gap starts at first_retry_interval
    (15 min) and grows by backoff_factor (2) up to max_retry_interval (60 min)."""

    MessageExpiration: Seconds = 24 * HOUR
    first_retry_interval: PositiveSeconds = 15 * MINUTE
    backoff_factor: Factor = 2.0
    max_retry_interval: PositiveSeconds = 60 * MINUTE


class ExchangeOnlineRetry(PolicyBase):
    """Exchange Online (Microsoft 365) outbound retry (mail-facts.md §4).

    The cadence is not documented consistently: a blog quoting Microsoft says "15 min at
    first, rising to 60 min, dynamic", office365itpros says "30 min then hourly". This
    policy follows the Microsoft-quoting source: the gap starts at first_retry_interval
    (15 min) and doubles up to max_retry_interval (60 min): attempts at 0, 15, 45,
    105 min, then hourly. No delay DSN is modelled (no source gives its timing).
    Parameters: :class:`ExchangeOnlineParams`.
    """

    Params = ExchangeOnlineParams
    params: ExchangeOnlineParams

    def __init__(
        self,
        params: ExchangeOnlineParams,
        rng: Generator | None = None,
        name: str = "exchange-online",
    ) -> None:
        super().__init__(params, rng, name)
        self.lifetime = params.MessageExpiration

    def after_failure(
        self,
        *,
        now: float,
        arrival: float,
        first_failure: float,
        attempts: int,
        destination: str,
        is_bounce: bool = False,
    ) -> float | None:
        """See :class:`RetryPolicy`; the cadence chosen in the class docstring."""
        if now - arrival >= self.lifetime:
            return None
        p = self.params
        # Exponent capped so a huge attempt count cannot overflow the float.
        gap = p.first_retry_interval * p.backoff_factor ** min(attempts - 1, 64)
        return now + min(gap, p.max_retry_interval)

    def client(self) -> ClientParams:
        """Exchange Server's client shape (see :meth:`ExchangeRetry.client`), its limits
        undocumented for the service: 20 connections per destination, and a next-hop
        queue in retry for first_retry_interval after each failed connection."""
        hold = self.params.first_retry_interval
        return ClientParams(
            "exchange online transport",
            "mail-facts.md §4, §16 (Exchange Server's values; unverified for the service)",
            connect_timeout=POSTFIX_CONNECT_TIMEOUT,
            concurrency="per-destination",
            destination_limit=EXCHANGE_DOMAIN_CONNECTIONS,
            memory="next-hop",
            memory_time=hold,
            memory_later=hold,
        )
