"""Sendmail: queue runs that retry a message once it is MinQueueAge old (mail-facts.md §3)."""

from __future__ import annotations

import math

from numpy.random import Generator
from pydantic import AliasChoices, Field

from mailnet.policies.retry.base import DAY, HOUR, MINUTE, PolicyBase, RetryParams, Seconds


class SendmailParams(RetryParams):
    """Sendmail's parameters. Defaults: Timeout.queuereturn 5 d, Timeout.queuewarn 4 h,
    MinQueueAge 30 min, a queue runner every 30 min (``sendmail -bd -q30m``,
    contrib/smcontrol.pl). The dotted names are Sendmail's; ``timeout_queuereturn``,
    ``timeout_queuewarn`` and ``min_queue_age`` are accepted too, because dots clash with
    config paths."""

    timeout_queuereturn: Seconds = Field(
        5 * DAY,
        alias="Timeout.queuereturn",
        validation_alias=AliasChoices("Timeout.queuereturn", "timeout_queuereturn"),
    )
    timeout_queuewarn: Seconds = Field(
        4 * HOUR,
        alias="Timeout.queuewarn",
        validation_alias=AliasChoices("Timeout.queuewarn", "timeout_queuewarn"),
    )
    MinQueueAge: Seconds = Field(
        30 * MINUTE, validation_alias=AliasChoices("MinQueueAge", "min_queue_age")
    )
    queue_interval: Seconds = 30 * MINUTE


class SendmailRetry(PolicyBase):
    """Sendmail queue runs with MinQueueAge (``cf/m4/proto.m4``, ``queue.c``; mail-facts.md §3).

    No per-message backoff: a queue run takes a message once ``run time - last try >=
    MinQueueAge``, so it is eligible at ``floor(now) + MinQueueAge``. The last-try stamp is
    taken after the delivery (``e_dtime`` at the end of ``sendenvelope``), so a failure
    that takes even a second makes the next run miss the message: with the defaults such
    a message is retried hourly, not every 30 min. After a failed try the message is
    returned once ``floor(now) >= floor(arrival) + Timeout.queuereturn``
    (``dropenvelope``). Parameters and defaults: :class:`SendmailParams`.
    """

    Params = SendmailParams
    params: SendmailParams

    def __init__(
        self, params: SendmailParams, rng: Generator | None = None, name: str = "sendmail"
    ) -> None:
        super().__init__(params, rng, name)
        self.queue_run_interval = params.queue_interval or None
        self.lifetime = params.timeout_queuereturn
        self.delay_warning = params.timeout_queuewarn or None

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
        """See :class:`RetryPolicy`; Sendmail's rule as in the class docstring."""
        now_s = math.floor(now)
        if now_s >= math.floor(arrival) + self.lifetime:
            return None
        return float(now_s + self.params.MinQueueAge)
