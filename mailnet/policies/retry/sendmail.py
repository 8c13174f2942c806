"""Sendmail: queue runs that retry a message once it is MinQueueAge old (mail-facts.md §3),
and its SMTP client with the host status cache (§15)."""

from __future__ import annotations

import math

from numpy.random import Generator
from pydantic import AliasChoices, Field

from mailnet.policies.retry.base import (
    DAY,
    HOUR,
    MINUTE,
    PolicyBase,
    PositiveSeconds,
    RetryParams,
    Seconds,
)
from mailnet.policies.retry.client import ClientParams


class SendmailParams(RetryParams):
    """Sendmail's parameters, as a stock ``sendmail.mc`` built with ``cf/m4/proto.m4``
    sets them (mail-facts.md §3, §15): Timeout.queuereturn 5 d, Timeout.queuewarn 4 h,
    MinQueueAge 0 (the compiled default; proto.m4 only writes a commented-out 30 min),
    a queue runner every 30 min (``sendmail -bd -q30m``, contrib/smcontrol.pl),
    Timeout.hoststatus 30 min and Timeout.connect 127 s: Sendmail's 0 leaves the connect
    timeout to the kernel, and Linux gives up after six SYN retransmissions, 127 s
    (mail-facts.md §15, unverified). The dotted names are Sendmail's; ``timeout_queuereturn``,
    ``timeout_queuewarn``, ``min_queue_age``, ``timeout_connect`` and
    ``timeout_hoststatus`` are accepted too, because dots clash with config paths."""

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
    MinQueueAge: Seconds = Field(0.0, validation_alias=AliasChoices("MinQueueAge", "min_queue_age"))
    queue_interval: Seconds = 30 * MINUTE
    timeout_connect: PositiveSeconds = Field(
        127.0,
        alias="Timeout.connect",
        validation_alias=AliasChoices("Timeout.connect", "timeout_connect"),
    )
    timeout_hoststatus: PositiveSeconds = Field(
        30 * MINUTE,
        alias="Timeout.hoststatus",
        validation_alias=AliasChoices("Timeout.hoststatus", "timeout_hoststatus"),
    )


class SendmailRetry(PolicyBase):
    """Sendmail queue runs with MinQueueAge (``cf/m4/proto.m4``, ``queue.c``; mail-facts.md §3).

    No per-message backoff: a queue run takes a message once ``run time - last try >=
    MinQueueAge``, so it is eligible at ``floor(now) + MinQueueAge``. With the stock
    MinQueueAge 0 every queue run retries it: every 30 min. The last-try stamp is taken
    after the delivery (``e_dtime`` at the end of ``sendenvelope``), so with a
    configuration that sets MinQueueAge 30 min (``confMIN_QUEUE_AGE``) a failure that
    takes even a second makes the next run miss the message, which is then retried
    hourly. After a failed try the message is
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

    def client(self) -> ClientParams:
        """Sendmail's SMTP mailer (mail-facts.md §15): Timeout.connect; MX hosts in order,
        the next only when a connection or greeting fails (one session per delivery); no
        per-destination window; the host status cache skips a host whose last connection
        failed less than Timeout.hoststatus ago, shared by all deliveries of the MTA (as
        with HostStatusDirectory set, or within one queue run).
        """
        p = self.params
        return ClientParams(
            "sendmail smtp mailer",
            "mail-facts.md §15",
            connect_timeout=p.timeout_connect,
            mx_address_limit=None,
            mx_session_limit=1,
            concurrency="global",
            memory="host-status",
            memory_time=p.timeout_hoststatus,
        )
