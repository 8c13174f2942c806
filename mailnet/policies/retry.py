"""Retry policies of real MTAs and webmail senders: when a deferred message is tried again.

A policy is a pure decision object (no simpy). The outbound MTA tries a new message at
once; after each transient failure it calls :meth:`RetryPolicy.after_failure` and either
holds the message until the returned time or bounces it as expired on ``None``. With a
``queue_run_interval`` the MTA only tries deferred mail at scans ``0, q, 2q, ...`` (taking
messages due by ``scan + scan_slack``); without one it tries at the returned time.
Presets reproduce mail-facts.md §1-6; all times are seconds (floats).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from numpy.random import Generator

from mailnet.policies.exim_rules import (
    DEFAULT_RETRY_RULE,
    RETRY_INTERVAL_MAX,
    RetryRule,
    next_interval,
    parse_retry_rules,
)

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@runtime_checkable
class RetryPolicy(Protocol):
    """What the outbound MTA needs from a retry policy.

    Attributes: ``name``; ``queue_run_interval`` (seconds between deferred-queue scans
    anchored at t=0, or ``None`` to try exactly at the eligible time); ``scan_slack`` (a
    scan takes messages due by scan time + slack); ``lifetime`` (queue lifetime, for
    information); ``params`` (resolved parameters under the MTA's own names, durations in
    seconds); ``delay_warning`` (message age in seconds after which one "delayed" DSN is
    sent, or ``None``); ``changes_source_ip`` (retries leave from another address).

    One instance belongs to one MTA: Exim keeps per-destination retry data in it.
    """

    name: str
    queue_run_interval: float | None
    scan_slack: float
    lifetime: float
    params: dict[str, Any]
    delay_warning: float | None
    changes_source_ip: bool

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
        """Time the message becomes eligible again, or ``None`` to bounce it as expired.

        ``now``: when the failure is handled; ``arrival``: when the message entered the
        queue (its first attempt); ``first_failure``: its first failed attempt;
        ``attempts``: attempts so far including this one; ``destination``: the key retry
        data are kept under; ``is_bounce``: the message is a null-sender DSN (only Postfix
        treats those differently, with bounce_queue_lifetime). A returned time at or
        before ``now`` means "as soon as possible".
        """
        ...

    def after_success(self, *, now: float, destination: str) -> None:
        """Tell the policy a delivery to ``destination`` succeeded (Exim forgets its retry data)."""
        ...


# --------------------------------------------------------------------------- parameters

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DURATION_PART = re.compile(f"({_NUMBER.pattern})(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}


def _seconds(value: Any, name: str) -> float:
    """Seconds in ``value``: a number of seconds or text like "90s", "30m", "1h30m", "500ms"."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif text and re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"{name}: expected a duration like '90s', '30m', '2h', '5d' or a "
            f"number of seconds, got {value!r}"
        )
    return seconds


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")
    return value


def _factor(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValueError(f"{name}: expected a number >= 1, got {value!r}")
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _offsets(value: Any, name: str) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name}: expected a non-empty list of durations, got {value!r}")
    offsets = tuple(_seconds(item, name) for item in value)
    if offsets[0] <= 0 or any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise ValueError(f"{name}: offsets must be positive and increasing, got {value!r}")
    return offsets


def _rule(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected an Exim retry rule string, got {value!r}")
    try:
        parse_retry_rules(value)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    return value


_Convert = Callable[[Any, str], Any]


def _resolve(
    preset: str,
    spec: Mapping[str, tuple[_Convert, Any]],
    given: Mapping[str, Any],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Defaults from ``spec`` overridden by ``given``; unknown names and bad values raise."""
    resolved = {key: default for key, (_, default) in spec.items()}
    aliases = aliases or {}
    for key, value in given.items():
        canonical = aliases.get(key, key)
        if canonical not in spec:
            known = ", ".join(sorted(spec))
            raise ValueError(
                f"unknown retry parameter {key!r} for preset {preset!r} (known: {known})"
            )
        convert = spec[canonical][0]
        resolved[canonical] = convert(value, f"retry parameter {key!r} of preset {preset!r}")
    return resolved


def _positive(params: Mapping[str, Any], preset: str, *names: str) -> None:
    for key in names:
        if params[key] <= 0:
            raise ValueError(
                f"retry parameter {key!r} of preset {preset!r} must be greater "
                f"than zero, got {params[key]!r}"
            )


# --------------------------------------------------------------------------- policies


class _Base:
    """Shared attribute defaults; subclasses set the rest in ``__init__``."""

    name: str
    queue_run_interval: float | None = None
    scan_slack: float = 0.0
    lifetime: float
    params: dict[str, Any]
    delay_warning: float | None = None
    changes_source_ip: bool = False

    def after_success(self, *, now: float, destination: str) -> None:
        """Forget nothing: only Exim keeps per-destination retry data."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params!r})"


class PostfixRetry(_Base):
    """Postfix queue manager backoff (``qmgr_active.c``, ``qmgr_active_done_3_generic``).

    Defaults from ``mail_params.h`` / ``postconf.proto`` (mail-facts.md §1):
    queue_run_delay 300 s, minimal_backoff_time 300 s, maximal_backoff_time 4000 s,
    maximal_queue_lifetime 5 d, bounce_queue_lifetime 5 d, delay_warning_time 0 (off).

    Whole-second rule as observed on real Postfix 3.7.11 (mail-facts.md §1): with
    ``age = floor(now) - floor(arrival)``, the message expires (``None``) once
    ``floor(now) >= floor(arrival) + lifetime`` (bounce_queue_lifetime for bounces;
    lifetime 0 means "try once"), else it is eligible at ``floor(now) + clamp(age,
    minimal_backoff_time, maximal_backoff_time)``. Scans every queue_run_delay take files
    due by the scan second + 1 (``st_mtime > time(0) + 1`` skips). For an always-refusing
    destination: attempts at 0, 5, 10, 20, 40, 80, 150 min, then every 70 min; expiry at
    the first failure at or after 5 d.
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "queue_run_delay": (_seconds, 300.0),
        "minimal_backoff_time": (_seconds, 300.0),
        "maximal_backoff_time": (_seconds, 4000.0),
        "maximal_queue_lifetime": (_seconds, 5 * DAY),
        "bounce_queue_lifetime": (_seconds, 5 * DAY),
        "delay_warning_time": (_seconds, 0.0),
    }
    scan_slack = 1.0

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "postfix"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "queue_run_delay", "minimal_backoff_time")
        if self.params["maximal_backoff_time"] < self.params["minimal_backoff_time"]:
            raise ValueError(
                f"retry parameter 'maximal_backoff_time' of preset {name!r} must "
                "not be below minimal_backoff_time"
            )
        self.queue_run_interval = self.params["queue_run_delay"]
        self.lifetime = self.params["maximal_queue_lifetime"]
        self.delay_warning = self.params["delay_warning_time"] or None

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
        now_s, born = math.floor(now), math.floor(arrival)
        key = "bounce_queue_lifetime" if is_bounce else "maximal_queue_lifetime"
        if now_s >= born + self.params[key]:
            return None
        delay = min(
            max(now_s - born, self.params["minimal_backoff_time"]),
            self.params["maximal_backoff_time"],
        )
        return float(now_s + delay)


@dataclass(slots=True)
class _HostRetryData:
    """Exim's retry hints record for one destination (``dbdata_retry``)."""

    first_failed: float
    last_try: float
    next_try: float


class EximRetry(_Base):
    """Exim retry rules with per-destination retry data (``retry.c``; mail-facts.md §2).

    Defaults: retry_rule ``F,2h,15m; G,16h,1h,1.5; F,4d,6h`` (``configure.default``
    l.943), queue_run_interval 30 min (the typical ``exim -bd -q30m``, spec.xfpt l.4724;
    0 means an idealised continuous runner), retry_interval_max 24 h and retry_data_expire
    7 d (``globals.c``), delay_warning 24 h (only a single time; Exim's time lists are not
    modelled).

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
    rule (``<=`` in ``retry.c``).
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "retry_rule": (_rule, DEFAULT_RETRY_RULE),
        "queue_run_interval": (_seconds, 30 * MINUTE),
        "retry_interval_max": (_seconds, RETRY_INTERVAL_MAX),
        "retry_data_expire": (_seconds, 7 * DAY),
        "delay_warning": (_seconds, 24 * HOUR),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "exim"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "retry_interval_max", "retry_data_expire")
        if self.params["retry_interval_max"] > RETRY_INTERVAL_MAX:
            raise ValueError(
                f"retry parameter 'retry_interval_max' of preset {name!r} may not "
                "exceed 24h (Exim's limit)"
            )
        self.rules: tuple[RetryRule, ...] = parse_retry_rules(self.params["retry_rule"])
        if rng is None and any(rule.kind == "H" for rule in self.rules):
            raise ValueError(
                f"retry parameter 'retry_rule' of preset {name!r}: an H rule "
                "needs a random generator (rng)"
            )
        self.rng = rng
        self.queue_run_interval = self.params["queue_run_interval"] or None
        self.lifetime = self.rules[-1].cutoff if self.rules else 0.0
        self.delay_warning = self.params["delay_warning"] or None
        self._hints: dict[str, _HostRetryData] = {}

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
        now_s = float(math.floor(now))
        record = self._hints.get(destination)
        if record is None or now_s - record.last_try > self.params["retry_data_expire"]:
            record = _HostRetryData(first_failed=now_s, last_try=now_s, next_try=now_s)
            self._hints[destination] = record
        failing = max(now_s - record.first_failed, now_s - math.floor(arrival))
        lastgap = min(record.next_try - record.last_try, now_s - record.last_try)
        step = next_interval(
            self.rules,
            failing,
            lastgap,
            rng=self.rng,
            interval_max=self.params["retry_interval_max"],
        )
        record.last_try = now_s
        record.next_try = now_s + step.interval
        return None if step.timed_out else record.next_try

    def after_success(self, *, now: float, destination: str) -> None:
        """A delivery got through: drop the destination's retry data, as Exim does."""
        self._hints.pop(destination, None)


class QmailRetry(_Base):
    """qmail-send's quadratic schedule (``notqmail/qmail-send.c``; mail-facts.md §4).

    For a message born at b, after a try at ``now``: ``n = floor(sqrt(now - b))`` (0 if b
    is in the future) plus chanskip (20 for remote deliveries, 10 local), next try at
    ``b + n**2``: attempts at (20k)**2 s, i.e. 0, 6.7 min, 26.7 min, 1 h, 1.78 h, ...
    Whole seconds as qmail's ``recent``. queuelifetime 604800 s (``qmail-control.9``):
    a message older than that gets one more try whose temporary failure is permanent
    (``flagdying``, ``recent > birth + lifetime``), so the default gives 39 attempts up to
    6.7 d and a final one at 7.04 d. qmail sends no delay warnings.

    qmail evaluates both rules when a try *starts*; the policy only sees the failure,
    which may come a connect timeout later. It therefore takes as the start the latest
    ``b + (chanskip*j)**2`` at or before the failure. This is exact for tries that start
    on schedule (qmail tries at the due second), however long the failure takes; a try
    started late is treated as if it had started at the previous due time.
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "queuelifetime": (_seconds, 604800.0),
        "chanskip": (_count, 20),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "qmail"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "chanskip")
        self.lifetime = self.params["queuelifetime"]

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
        skip = self.params["chanskip"]
        n = math.isqrt(recent - birth) // skip * skip if recent >= birth else 0
        if n * n > self.lifetime:  # the try started after birth + queuelifetime
            return None
        n += skip
        return float(birth + n * n)


class SendmailRetry(_Base):
    """Sendmail queue runs with MinQueueAge (``cf/m4/proto.m4``, ``queue.c``; mail-facts.md §3).

    Defaults: Timeout.queuereturn 5 d, Timeout.queuewarn 4 h, MinQueueAge 30 min, queue
    runner every 30 min (``sendmail -bd -q30m``, contrib/smcontrol.pl). No per-message
    backoff: a queue run takes a message once ``run time - last try >= MinQueueAge``, so
    it is eligible at ``floor(now) + MinQueueAge``. The last-try stamp is taken after the
    delivery (``e_dtime`` at the end of ``sendenvelope``), so a failure that takes even a
    second makes the next run miss the message: with the defaults such a message is
    retried hourly, not every 30 min. After a failed try the message is returned once
    ``floor(now) >= floor(arrival) + Timeout.queuereturn`` (``dropenvelope``).

    The dotted names are Sendmail's; ``timeout_queuereturn``, ``timeout_queuewarn`` and
    ``min_queue_age`` are accepted as aliases because dots clash with config paths.
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "Timeout.queuereturn": (_seconds, 5 * DAY),
        "Timeout.queuewarn": (_seconds, 4 * HOUR),
        "MinQueueAge": (_seconds, 30 * MINUTE),
        "queue_interval": (_seconds, 30 * MINUTE),
    }
    ALIASES: ClassVar[dict[str, str]] = {
        "timeout_queuereturn": "Timeout.queuereturn",
        "timeout_queuewarn": "Timeout.queuewarn",
        "min_queue_age": "MinQueueAge",
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "sendmail"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params, self.ALIASES)
        self.queue_run_interval = self.params["queue_interval"] or None
        self.lifetime = self.params["Timeout.queuereturn"]
        self.delay_warning = self.params["Timeout.queuewarn"] or None

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
        return float(now_s + self.params["MinQueueAge"])


class ExchangeRetry(_Base):
    """Exchange Server (on-premises) transport retry (mail-facts.md §4).

    Defaults: MessageExpirationTimeout 2 d (learn.microsoft.com ff324860),
    TransientFailureRetryCount 6 (ff344266) with TransientFailureRetryInterval 5 min
    (aa998043), MessageRetryInterval 15 min (ff345508), DelayNotificationTimeout 4 h
    (ff342868). Reading of the docs: after the first attempt fails, up to
    TransientFailureRetryCount quick retries follow TransientFailureRetryInterval apart;
    after that the message waits MessageRetryInterval between tries. So attempts at 0, 5,
    ... 30 min, then every 15 min. A queue-level connection failure would use
    OutboundConnectionFailureRetryInterval (10 min) instead; the policy does not
    distinguish. The message expires at the first failure with age >=
    MessageExpirationTimeout.
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "MessageExpirationTimeout": (_seconds, 2 * DAY),
        "TransientFailureRetryCount": (_count, 6),
        "TransientFailureRetryInterval": (_seconds, 5 * MINUTE),
        "MessageRetryInterval": (_seconds, 15 * MINUTE),
        "DelayNotificationTimeout": (_seconds, 4 * HOUR),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "exchange"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "TransientFailureRetryInterval", "MessageRetryInterval")
        self.lifetime = self.params["MessageExpirationTimeout"]
        self.delay_warning = self.params["DelayNotificationTimeout"] or None

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
        quick = attempts <= self.params["TransientFailureRetryCount"]
        key = "TransientFailureRetryInterval" if quick else "MessageRetryInterval"
        return now + self.params[key]


class ExchangeOnlineRetry(_Base):
    """Exchange Online (Microsoft 365) outbound retry (mail-facts.md §4).

    Expiry 24 h (48 h before March 2019; since 2022 admins may set 12-24 h with
    ``Set-TransportConfig -MessageExpiration``) [S: lonesync.com, pupuweb MC441064].
    The cadence is not documented consistently: a blog quoting Microsoft says "15 min at
    first, rising to 60 min, dynamic", office365itpros says "30 min then hourly". This
    policy follows the Microsoft-quoting source: the gap starts at first_retry_interval
    (15 min) and doubles up to max_retry_interval (60 min): attempts at 0, 15, 45,
    105 min, then hourly. No delay DSN is modelled (no source gives its timing).
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "MessageExpiration": (_seconds, 24 * HOUR),
        "first_retry_interval": (_seconds, 15 * MINUTE),
        "backoff_factor": (_factor, 2.0),
        "max_retry_interval": (_seconds, 60 * MINUTE),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "exchange-online"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "first_retry_interval", "max_retry_interval")
        self.lifetime = self.params["MessageExpiration"]

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
        gap = p["first_retry_interval"] * p["backoff_factor"] ** min(attempts - 1, 64)
        return now + min(gap, p["max_retry_interval"])


class Rfc5321Retry(_Base):
    """The retry guidance of RFC 5321 §4.5.4.1 (mail-facts.md §5) made concrete.

    The RFC: the retry interval "SHOULD be at least 30 minutes", "two connection attempts
    in the first hour ..., and then backing off to one every two or three hours", give-up
    time "at least 4-5 days". Concrete choice: early_attempts (2) tries early_interval
    (30 min) apart, then retry_interval (2 h, the lower end) between tries; attempts at
    0, 30 min, 2.5 h, 4.5 h, ...; the message expires at the first failure with age >=
    give_up (5 d).
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "early_attempts": (_count, 2),
        "early_interval": (_seconds, 30 * MINUTE),
        "retry_interval": (_seconds, 2 * HOUR),
        "give_up": (_seconds, 5 * DAY),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "rfc5321"
    ) -> None:
        self.name = name
        self.params = _resolve(name, self.PARAMS, params)
        _positive(self.params, name, "early_interval", "retry_interval")
        self.lifetime = self.params["give_up"]

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
        early = attempts < self.params["early_attempts"]
        return now + self.params["early_interval" if early else "retry_interval"]


class ScheduleRetry(_Base):
    """Attempts at fixed offsets after the first attempt (measured webmail or custom).

    Retry k (k = 1, 2, ...) is due at ``arrival + offsets[k-1]``; the MTA makes the first
    attempt at arrival, so offsets count from it. Anchoring on arrival rather than on
    each failure reproduces the measured offsets to the second whatever the failures
    cost. After the listed offsets the last gap repeats (``repeat_last_gap``) or the
    sender gives up (``None``). In both cases the message expires at the first failure
    with ``now - arrival >= lifetime``.
    """

    PARAMS: ClassVar[dict[str, tuple[_Convert, Any]]] = {
        "offsets": (_offsets, None),
        "lifetime": (_seconds, 5 * DAY),
        "repeat_last_gap": (_flag, True),
        "changes_source_ip": (_flag, False),
        "delay_warning": (_seconds, 0.0),
    }

    def __init__(
        self, params: Mapping[str, Any], rng: Generator | None = None, name: str = "custom"
    ) -> None:
        self.name = name
        if "offsets" not in params:
            raise ValueError(f"retry schedule {name!r} needs 'offsets'")
        self.params = _resolve(name, self.PARAMS, params)
        self.params["offsets"] = list(self.params["offsets"])
        self.offsets: tuple[float, ...] = tuple(self.params["offsets"])
        self.lifetime = self.params["lifetime"]
        self.changes_source_ip = self.params["changes_source_ip"]
        self.delay_warning = self.params["delay_warning"] or None
        self._last_gap = self.offsets[-1] - (self.offsets[-2] if len(self.offsets) > 1 else 0.0)

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
        if attempts <= len(self.offsets):
            offset = self.offsets[attempts - 1]
        elif self.params["repeat_last_gap"]:
            offset = self.offsets[-1] + self._last_gap * (attempts - len(self.offsets))
        else:
            return None
        return max(arrival + offset, now)


# --------------------------------------------------------------------------- presets


def _mmss(*stamps: str) -> list[float]:
    """Offsets written as the paper prints them, "min:sec", in seconds."""
    return [float(int(m) * 60 + int(s)) for m, s in (stamp.split(":") for stamp in stamps)]


# Pagani et al., DSN 2016, retry times under a 6 h greylist (mail-facts.md §6).
_GMAIL = _mmss("6:02", "29:02", "56:36", "98:44", "162:03", "229:44", "309:05", "434:46")
_YAHOO = _mmss("2:07", "5:39", "12:58", "27:16", "55:13", "109:35", "216:47", "430:36")
_HOTMAIL = _mmss("1:01", "2:03", "3:04", "5:06", "8:07", "12:08", "16:10")
_HOTMAIL_EVERY = 4 * MINUTE
_GMX = _mmss("5:01", "12:33", "23:50", "40:46", "66:09", "104:14", "161:22", "247:04", "375:36")
_AOL = _mmss("5:32", "11:32", "21:32", "31:32")

# Those senders were watched under a 6 h greylist, so nothing past about 7 h was seen:
# after each list the last gap repeats (except AOL, which gave up), and the 5 d lifetime
# is RFC 5321 §4.5.4.1's 4-5 d give-up (also Postfix's and Sendmail's default), an
# assumption rather than a measurement. Hotmail's "then every 4 min" is written out as
# one more offset so that the repeated gap is exactly 4 min; its 94th attempt falls at
# 360:10, the first after the 6 h greylist, matching the 94 attempts reported.


@dataclass(frozen=True, slots=True)
class Preset:
    """A named retry policy: ``build(params, rng)`` gives a fresh instance."""

    name: str
    summary: str
    build: Callable[[Mapping[str, Any], Generator | None], RetryPolicy]


def _preset(
    name: str, cls: type, summary: str, defaults: Mapping[str, Any] | None = None
) -> Preset:
    def build(params: Mapping[str, Any], rng: Generator | None) -> RetryPolicy:
        return cls({**(defaults or {}), **params}, rng, name=name)

    return Preset(name, summary, build)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "postfix",
            PostfixRetry,
            "Postfix qmgr backoff clamp(age, 300 s, 4000 s), scans every 300 s, 5 d lifetime",
        ),
        _preset(
            "exim",
            EximRetry,
            "Exim retry rule F,2h,15m; G,16h,1h,1.5; F,4d,6h per destination, -q30m runner",
        ),
        _preset(
            "qmail",
            QmailRetry,
            "qmail-send attempts at (20k)^2 s after injection, 7 d queuelifetime",
        ),
        _preset(
            "sendmail",
            SendmailRetry,
            "Sendmail -q30m runs with MinQueueAge 30 min, 5 d queuereturn, 4 h warning",
        ),
        _preset(
            "exchange",
            ExchangeRetry,
            "Exchange Server: 6 retries 5 min apart, then every 15 min, 2 d expiry",
        ),
        _preset(
            "exchange-online",
            ExchangeOnlineRetry,
            "Exchange Online: retries 15 min apart doubling to hourly, 24 h expiry",
        ),
        _preset(
            "rfc5321",
            Rfc5321Retry,
            "RFC 5321 §4.5.4.1: two tries in the first hour, then every 2 h, 5 d give-up",
        ),
        _preset(
            "gmail",
            ScheduleRetry,
            "Gmail retry times measured by Pagani et al. 2016; retries change source IP",
            {"offsets": _GMAIL, "changes_source_ip": True},
        ),
        _preset(
            "yahoo",
            ScheduleRetry,
            "Yahoo retry times measured by Pagani et al. 2016",
            {"offsets": _YAHOO},
        ),
        _preset(
            "hotmail",
            ScheduleRetry,
            "Hotmail retry times measured by Pagani et al. 2016, then every 4 min",
            {"offsets": _HOTMAIL + [_HOTMAIL[-1] + _HOTMAIL_EVERY]},
        ),
        _preset(
            "gmx",
            ScheduleRetry,
            "GMX/mail.com retry times measured by Pagani et al. 2016",
            {"offsets": _GMX},
        ),
        _preset(
            "aol",
            ScheduleRetry,
            "AOL retry times measured by Pagani et al. 2016; gives up after the fourth retry",
            {"offsets": _AOL, "repeat_last_gap": False},
        ),
    )
}
"""Every named policy, by name. Webmail presets (gmail ... aol) are :class:`ScheduleRetry`."""


def make_retry_policy(
    spec: str | Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    rng: Generator | None = None,
) -> RetryPolicy:
    """Build a retry policy from a preset name or a custom schedule.

    ``spec`` is a name from :data:`PRESETS` (case and ``_``/``-`` insensitive), a mapping
    ``{"preset": name, <param>: value, ...}``, or a custom schedule
    ``{"offsets": [...], "lifetime": ..., "repeat_last_gap": bool}`` with offsets after
    the first attempt (see :class:`ScheduleRetry`; lifetime defaults to 5 d). ``params``
    override the preset's defaults; durations may be seconds or text such as "500ms",
    "90s", "15m", "2h", "5d". ``rng`` is needed only by Exim H rules.

    Raises ``ValueError`` with a one-line message on an unknown preset, an unknown
    parameter (naming it and the known ones) or a bad value.
    """
    overrides: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        overrides.update(spec)
        if "preset" in overrides:
            name = overrides.pop("preset")
        elif "offsets" in overrides:
            overrides.update(params or {})
            return ScheduleRetry(overrides, rng, name="custom")
        else:
            raise ValueError(
                "a retry mapping needs 'preset' or 'offsets' "
                f"(got keys: {', '.join(map(str, spec)) or 'none'})"
            )
    else:
        name = spec
    if not isinstance(name, str):
        raise ValueError(f"retry preset must be a name, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ValueError(f"unknown retry preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    overrides.update(params or {})
    return PRESETS[key].build(overrides, rng)


# --------------------------------------------------------------------------- inspection


@dataclass(frozen=True, slots=True)
class AttemptTrace:
    """Attempt start times of one message to an always-failing destination, and when
    (the handling time of its last failure) the policy gave up, ``None`` if it did not."""

    attempts: list[float]
    expired_at: float | None


def trace_attempts(
    policy: RetryPolicy,
    n: int | None = None,
    failure_delay: float = 0.0,
    horizon: float | None = None,
    destination: str = "always-fails",
) -> AttemptTrace:
    """Replay the MTA loop for a message created at t=0 whose every attempt fails.

    Each failure is handled ``failure_delay`` s after its attempt starts. The next attempt
    is at the eligible time, or with a queue-run interval q at the first scan ``k*q``
    after the failure with ``eligible <= k*q + scan_slack``. Stops after ``n`` attempts,
    before an attempt later than ``horizon``, or when the policy gives up. Runs on a
    copy, so the policy's per-destination state is untouched.
    """
    policy = copy.deepcopy(policy)
    attempts: list[float] = []
    start = 0.0
    while n is None or len(attempts) < n:
        if horizon is not None and start > horizon:
            break
        attempts.append(start)
        failed = start + failure_delay
        eligible = policy.after_failure(
            now=failed,
            arrival=0.0,
            first_failure=failure_delay,
            attempts=len(attempts),
            destination=destination,
        )
        if eligible is None:
            return AttemptTrace(attempts, failed)
        start = _next_attempt(policy, failed, eligible)
    return AttemptTrace(attempts, None)


def _next_attempt(policy: RetryPolicy, failed: float, eligible: float) -> float:
    interval = policy.queue_run_interval
    if interval is None:
        return max(eligible, failed)
    # The scan that started the failed attempt is over; later scans take the message
    # once it is due within the slack.
    due = math.ceil((eligible - policy.scan_slack) / interval)
    return max(due, math.floor(failed / interval) + 1) * interval


def attempt_offsets(
    policy: RetryPolicy, n: int = 10, failure_delay: float = 0.0, horizon: float | None = None
) -> list[float]:
    """The first ``n`` attempt times (seconds) of a message created at t=0 to a destination
    that always fails; fewer if the policy gives up first. See :func:`trace_attempts`."""
    return trace_attempts(policy, n, failure_delay, horizon).attempts


def expiry_time(
    policy: RetryPolicy, failure_delay: float = 0.0, max_attempts: int = 100_000
) -> float | None:
    """When a message created at t=0 to an always-failing destination bounces as expired
    (seconds), or ``None`` if the policy is still retrying after ``max_attempts``."""
    return trace_attempts(policy, max_attempts, failure_delay).expired_at


def describe_presets() -> list[dict[str, Any]]:
    """One row per preset with its defaults: name, summary, params, queue_run_interval,
    scan_slack, lifetime, delay_warning, changes_source_ip, the first ten attempt offsets
    and the expiry time for an always-failing destination (all in seconds)."""
    rows = []
    for name, preset in PRESETS.items():
        policy = preset.build({}, None)
        trace = trace_attempts(policy, 10)
        rows.append(
            {
                "name": name,
                "summary": preset.summary,
                "params": dict(policy.params),
                "queue_run_interval": policy.queue_run_interval,
                "scan_slack": policy.scan_slack,
                "lifetime": policy.lifetime,
                "delay_warning": policy.delay_warning,
                "changes_source_ip": policy.changes_source_ip,
                "first_attempts": trace.attempts,
                "expires_at": expiry_time(policy),
            }
        )
    return rows
