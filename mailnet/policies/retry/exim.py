"""Exim: retry rules applied with per-destination retry data (mail-facts.md §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from numpy.random import Generator
from pydantic import AfterValidator, BeforeValidator

from mailnet.policies.exim_rules import (
    DEFAULT_RETRY_RULE,
    RETRY_INTERVAL_MAX,
    RetryRule,
    next_interval,
    parse_retry_rules,
)
from mailnet.policies.retry.base import (
    DAY,
    HOUR,
    MINUTE,
    PolicyBase,
    PositiveCount,
    PositiveSeconds,
    RetryParams,
    Seconds,
)
from mailnet.policies.retry.client import ClientParams


def _rule_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be an Exim retry rule string, got {value!r}")
    return value


def _valid_rules(value: str) -> str:
    try:
        parse_retry_rules(value)
    except ValueError as err:
        raise ValueError(f"is not a valid Exim retry rule: {err}") from None
    return value


def _at_most_a_day(value: float) -> float:
    if value > RETRY_INTERVAL_MAX:
        raise ValueError("may not exceed 24h (Exim's limit)")
    return value


class EximParams(RetryParams):
    """Exim's parameters. Defaults: retry_rule ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``
    (``configure.default`` l.943), queue_run_interval 30 min (the typical ``exim -bd
    -q30m``, spec.xfpt l.4724; 0 means an idealised continuous runner), retry_interval_max
    24 h (also its largest allowed value) and retry_data_expire 7 d (``globals.c``),
    delay_warning 24 h (only a single time; Exim's time lists are not modelled). The smtp
    transport's connect_timeout 5 min and hosts_max_try 5 (mail-facts.md §2, §13) shape
    its client (:meth:`EximRetry.client`)."""

    retry_rule: Annotated[str, BeforeValidator(_rule_text), AfterValidator(_valid_rules)] = (
        DEFAULT_RETRY_RULE
    )
    queue_run_interval: Seconds = 30 * MINUTE
    retry_interval_max: Annotated[PositiveSeconds, AfterValidator(_at_most_a_day)] = (
        RETRY_INTERVAL_MAX
    )
    retry_data_expire: PositiveSeconds = 7 * DAY
    delay_warning: Seconds = 24 * HOUR
    connect_timeout: PositiveSeconds = 5 * MINUTE
    hosts_max_try: PositiveCount = 5


@dataclass(slots=True)
class HostRetryData:
    """Exim's retry hints record for one destination (``dbdata_retry``)."""

    first_failed: float
    last_try: float
    next_try: float


class EximRetry(PolicyBase):
    """Exim retry rules with per-destination retry data (``retry.c``; mail-facts.md §2).

    After a failure at ``now`` (whole seconds, as Exim's ``time()``), the destination's
    record is read (a new one, or one not updated for retry_data_expire, starts with
    first_failed = last_try = next_try = now). The failing interval is ``now -
    first_failed``, or the message's age if larger: Exim's 2006 rule, which ``retry.c``
    applies to address errors (e.g. 4xx to RCPT, greylisting) but not to host errors;
    the policy cannot tell them apart and applies it always, which only differs once a
    success has reset a host's data. The first rule whose cutoff is >= that interval
    sets the gap; past the last cutoff the message fails (``None``). For G and H,
    ``lastgap = min(next_try - last_try, now - last_try)``: the gap the rule asked for,
    unless the try came early (another message reached the host sooner). Late queue runs
    thus never inflate the geometric series. Every gap is capped at retry_interval_max,
    and the record's last_try/next_try become ``now``/``now + gap``; the message is
    eligible at that next_try.

    With a continuous runner and failures handled a second after the attempt, the default
    rule gives attempts 0, 0.25 ... 2.0 h, then 3, 4.5, 6.75, 10.1, 15.2, 22.8 h, then every
    6 h, and the bounce at about 100.8 h (28 attempts); with ``-q30m`` the 15-minute phase
    becomes 30 minutes. A failure in the very second of a cutoff still uses the earlier
    rule (``<=`` in ``retry.c``). Parameters and defaults: :class:`EximParams`. An H rule
    needs ``rng``.
    """

    Params = EximParams
    params: EximParams

    def __init__(
        self, params: EximParams, rng: Generator | None = None, name: str = "exim"
    ) -> None:
        super().__init__(params, rng, name)
        self.rules: tuple[RetryRule, ...] = parse_retry_rules(params.retry_rule)
        if rng is None and any(rule.kind == "H" for rule in self.rules):
            raise ValueError(
                f"retry parameter 'retry_rule' of preset {name!r}: an H rule "
                "needs a random generator (rng)"
            )
        self.rng = rng
        self.queue_run_interval = params.queue_run_interval or None
        self.lifetime = self.rules[-1].cutoff if self.rules else 0.0
        self.delay_warning = params.delay_warning or None
        self._hints: dict[str, HostRetryData] = {}

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
        """See :class:`RetryPolicy`; Exim's ``retry_update`` as in the class docstring."""
        return self.update(self._hints, destination, now, arrival)

    def update(
        self, hints: dict[str, HostRetryData], key: str, now: float, arrival: float
    ) -> float | None:
        """Exim's ``retry_update`` of the record ``hints[key]`` for a failure at ``now``:
        the next try (seconds), or ``None`` once past the last cutoff. ``arrival`` is the
        message's; a host error passes ``now`` so that only the record's age counts."""
        now_s = float(math.floor(now))
        record = hints.get(key)
        if record is None or now_s - record.last_try > self.params.retry_data_expire:
            record = HostRetryData(first_failed=now_s, last_try=now_s, next_try=now_s)
            hints[key] = record
        failing = max(now_s - record.first_failed, now_s - math.floor(arrival))
        lastgap = min(record.next_try - record.last_try, now_s - record.last_try)
        step = next_interval(
            self.rules,
            failing,
            lastgap,
            rng=self.rng,
            interval_max=self.params.retry_interval_max,
        )
        record.last_try = now_s
        record.next_try = now_s + step.interval
        return None if step.timed_out else record.next_try

    def after_success(self, *, now: float, destination: str) -> None:
        """A delivery got through: drop the destination's retry data, as Exim does."""
        self._hints.pop(destination, None)

    def client(self) -> ClientParams:
        """Exim's smtp transport (mail-facts.md §13): connect_timeout, hosts_max_try
        hosts per delivery (hosts waiting for their retry time not counted), a 4xx moves
        on to the next host; no per-destination window or dead destinations; per-host
        retry records, with these retry rules, skip a host until its retry time."""
        p = self.params
        return ClientParams(
            "exim smtp transport",
            "mail-facts.md §13",
            connect_timeout=p.connect_timeout,
            mx_address_limit=p.hosts_max_try,
            mx_session_limit=None,
            concurrency="global",
            memory="retry-records",
        )
