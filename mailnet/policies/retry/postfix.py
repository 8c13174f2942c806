"""Postfix: the queue manager's backoff between queue scans (mail-facts.md §1)."""

from __future__ import annotations

import math

from numpy.random import Generator
from pydantic import Field, ValidationInfo, field_validator

from mailnet.policies.retry.base import DAY, PolicyBase, PositiveSeconds, RetryParams, Seconds


class PostfixParams(RetryParams):
    """Postfix's parameters; defaults from ``mail_params.h`` / ``postconf.proto``
    (mail-facts.md §1): queue_run_delay 300 s, minimal_backoff_time 300 s,
    maximal_backoff_time 4000 s, maximal_queue_lifetime 5 d, bounce_queue_lifetime 5 d,
    delay_warning_time 0 (off). maximal_backoff_time may not be below minimal_backoff_time."""

    queue_run_delay: PositiveSeconds = 300.0
    minimal_backoff_time: PositiveSeconds = 300.0
    # checked against minimal_backoff_time even when left at its default
    maximal_backoff_time: Seconds = Field(4000.0, validate_default=True)
    maximal_queue_lifetime: Seconds = 5 * DAY
    bounce_queue_lifetime: Seconds = 5 * DAY
    delay_warning_time: Seconds = 0.0

    @field_validator("maximal_backoff_time")
    @classmethod
    def _not_below_minimal(cls, value: float, info: ValidationInfo) -> float:
        minimal = info.data.get("minimal_backoff_time")
        if minimal is not None and value < minimal:
            raise ValueError(
                f"must not be below minimal_backoff_time ({minimal:g} s), got {value:g} s"
            )
        return value


class PostfixRetry(PolicyBase):
    """Postfix queue manager backoff (``qmgr_active.c``, ``qmgr_active_done_3_generic``).

    Whole-second rule as observed on real Postfix 3.7.11 (mail-facts.md §1): with
    ``age = floor(now) - floor(arrival)``, the message expires (``None``) once
    ``floor(now) >= floor(arrival) + lifetime`` (bounce_queue_lifetime for bounces;
    lifetime 0 means "try once"), else it is eligible at ``floor(now) + clamp(age,
    minimal_backoff_time, maximal_backoff_time)``. Scans every queue_run_delay take files
    due by the scan second + 1 (``st_mtime > time(0) + 1`` skips). For an always-refusing
    destination: attempts at 0, 5, 10, 20, 40, 80, 150 min, then every 70 min; expiry at
    the first failure at or after 5 d. Parameters: :class:`PostfixParams`.
    """

    Params = PostfixParams
    params: PostfixParams
    scan_slack = 1.0

    def __init__(
        self, params: PostfixParams, rng: Generator | None = None, name: str = "postfix"
    ) -> None:
        super().__init__(params, rng, name)
        self.queue_run_interval = params.queue_run_delay
        self.lifetime = params.maximal_queue_lifetime
        self.delay_warning = params.delay_warning_time or None

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
        """See :class:`RetryPolicy`; whole-second Postfix rule in the class docstring."""
        p = self.params
        now_s, born = math.floor(now), math.floor(arrival)
        lifetime = p.bounce_queue_lifetime if is_bounce else p.maximal_queue_lifetime
        if now_s >= born + lifetime:
            return None
        delay = min(max(now_s - born, p.minimal_backoff_time), p.maximal_backoff_time)
        return float(now_s + delay)
