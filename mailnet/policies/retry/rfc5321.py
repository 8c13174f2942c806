"""RFC 5321 §4.5.4.1's retry guidance made concrete (mail-facts.md §5)."""

from __future__ import annotations

from numpy.random import Generator

from mailnet.policies.retry.base import (
    DAY,
    HOUR,
    MINUTE,
    Count,
    PolicyBase,
    PositiveSeconds,
    RetryParams,
    Seconds,
)


class Rfc5321Params(RetryParams):
    """The concrete choice: early_attempts (2) tries early_interval (30 min) apart, then
    retry_interval (2 h, the lower end of "two or three hours") between tries, giving up
    at give_up (5 d, within "at least 4-5 days")."""

    early_attempts: Count = 2
    early_interval: PositiveSeconds = 30 * MINUTE
    retry_interval: PositiveSeconds = 2 * HOUR
    give_up: Seconds = 5 * DAY


class Rfc5321Retry(PolicyBase):
    """The retry guidance of RFC 5321 §4.5.4.1 (mail-facts.md §5) made concrete.

    The RFC: the retry interval "SHOULD be at least 30 minutes", "two connection attempts
    in the first hour ..., and then backing off to one every two or three hours", give-up
    time "at least 4-5 days". With :class:`Rfc5321Params`' defaults: attempts at 0,
    30 min, 2.5 h, 4.5 h, ...; the message expires at the first failure with age >=
    give_up.
    """

    Params = Rfc5321Params
    params: Rfc5321Params

    def __init__(
        self, params: Rfc5321Params, rng: Generator | None = None, name: str = "rfc5321"
    ) -> None:
        super().__init__(params, rng, name)
        self.lifetime = params.give_up

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
        """See :class:`RetryPolicy`; the schedule in the class docstring."""
        if now - arrival >= self.lifetime:
            return None
        p = self.params
        return now + (p.early_interval if attempts < p.early_attempts else p.retry_interval)
