"""qmail: qmail-send's quadratic retry schedule (mail-facts.md §4)."""

from __future__ import annotations

import math

from numpy.random import Generator

from mailnet.policies.retry.base import (
    PolicyBase,
    PositiveCount,
    PositiveSeconds,
    RetryParams,
    Seconds,
)
from mailnet.policies.retry.client import ClientParams


class QmailParams(RetryParams):
    """qmail's parameters: queuelifetime 604800 s (``qmail-control.9``) and chanskip 20
    (remote deliveries; 10 is the local channel's); for qmail-remote timeoutconnect 60 s
    and concurrencyremote 20 (mail-facts.md §4, §14), and tcpto_hold 3840 s, how long
    ``tcpto`` skips an address: ``(60 + (pid & 31)) << 6`` s is 3840-5824 s, taken at its
    least (``tcpto.c``, "at least another hour" in ``qmail-tcpto.8``)."""

    queuelifetime: Seconds = 604800.0
    chanskip: PositiveCount = 20
    timeoutconnect: PositiveSeconds = 60.0
    concurrencyremote: PositiveCount = 20
    tcpto_hold: PositiveSeconds = 3840.0


class QmailRetry(PolicyBase):
    """qmail-send's quadratic schedule (``notqmail/qmail-send.c``; mail-facts.md §4).

    For a message born at b, after a try at ``now``: ``n = floor(sqrt(now - b))`` (0 if b
    is in the future) plus chanskip (20 for remote deliveries, 10 local), next try at
    ``b + n**2``: attempts at (20k)**2 s, i.e. 0, 6.7 min, 26.7 min, 1 h, 1.78 h, ...
    Whole seconds as qmail's ``recent``. A message older than queuelifetime gets one more
    try whose temporary failure is permanent (``flagdying``, ``recent > birth +
    lifetime``), so the default gives 39 attempts up to 6.7 d and a final one at 7.04 d.
    qmail sends no delay warnings.

    qmail evaluates both rules when a try *starts*; the policy only sees the failure,
    which may come a connect timeout later. It therefore takes as the start the latest
    ``b + (chanskip*j)**2`` at or before the failure. This is exact for tries that start
    on schedule (qmail tries at the due second), however long the failure takes; a try
    started late is treated as if it had started at the previous due time.
    """

    Params = QmailParams
    params: QmailParams

    def __init__(
        self, params: QmailParams, rng: Generator | None = None, name: str = "qmail"
    ) -> None:
        super().__init__(params, rng, name)
        self.lifetime = params.queuelifetime

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
        """See :class:`RetryPolicy`; qmail's ``nextretry`` as in the class docstring."""
        recent, birth = math.floor(now), math.floor(arrival)
        skip = self.params.chanskip
        n = math.isqrt(recent - birth) // skip * skip if recent >= birth else 0
        if n * n > self.lifetime:  # the try started after birth + queuelifetime
            return None
        n += skip
        return float(birth + n * n)

    def client(self) -> ClientParams:
        """qmail-remote (mail-facts.md §14): timeoutconnect; every address tried in turn,
        the next only after a failed connection (one session: a 4xx ends the attempt);
        concurrencyremote deliveries in all, no per-domain limit; one recipient per
        delivery; ``tcpto`` skips an address after two connect timeouts."""
        p = self.params
        return ClientParams(
            "qmail-remote",
            "mail-facts.md §14",
            connect_timeout=p.timeoutconnect,
            mx_address_limit=None,
            mx_session_limit=1,
            concurrency="global",
            max_connections=p.concurrencyremote,
            recipients_per_delivery=1,
            memory="tcpto",
            memory_time=p.tcpto_hold,
        )
