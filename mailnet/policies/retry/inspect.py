"""Inspecting retry policies: the attempt times of a message to a destination that always
fails, and the per-preset summary that ``mailnet presets`` prints."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from mailnet.policies.retry.base import RetryPolicy
from mailnet.policies.retry.registry import PRESETS
from mailnet.units import format_duration


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
    scan_slack, lifetime, delay_warning, changes_source_ip, the first ten attempt offsets,
    the expiry time for an always-failing destination (all in seconds) and ``client``,
    the SMTP client (:class:`~mailnet.policies.retry.client.ClientParams`)."""
    rows = []
    for name, preset in PRESETS.items():
        policy = preset.build({}, None)
        trace = trace_attempts(policy, 10)
        rows.append(
            {
                "name": name,
                "summary": preset.summary,
                "params": policy.params.by_mta_name(),
                "queue_run_interval": policy.queue_run_interval,
                "scan_slack": policy.scan_slack,
                "lifetime": policy.lifetime,
                "delay_warning": policy.delay_warning,
                "changes_source_ip": policy.changes_source_ip,
                "first_attempts": trace.attempts,
                "expires_at": expiry_time(policy),
                "client": policy.client(),
            }
        )
    return rows


def presets_table() -> list[tuple[str, str, str, str, str]]:
    """The rows ``mailnet presets`` prints: name, parameters, the first ten attempt times,
    when the message is given up ("never" if it is not) and the SMTP client (connect
    timeout, host limits, concurrency, host memory), durations as text."""
    rows = []
    for preset in describe_presets():
        params = ", ".join(f"{k}={_show(v)}" for k, v in preset["params"].items())
        offsets = " ".join(format_duration(round(t)) for t in preset["first_attempts"])
        expires = preset["expires_at"]
        gives_up = "never" if expires is None else format_duration(round(expires))
        client = preset["client"].describe()
        rows.append((preset["name"], params, offsets, gives_up, client))
    return rows


def _show(value: Any) -> str:
    # Whole floats are durations in seconds (every float parameter but backoff_factor);
    # the table has always shown them, backoff_factor included, in duration units.
    if isinstance(value, float) and value == int(value):
        return format_duration(value)
    return str(value)
