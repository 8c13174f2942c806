"""Fixed retry schedules: attempts at given offsets, for custom schedules and the measured
webmail senders (``webmail``)."""

from __future__ import annotations

from numpy.random import Generator

from mailnet.policies.retry.base import DAY, Flag, Offsets, PolicyBase, RetryParams, Seconds


class ScheduleParams(RetryParams):
    """A schedule's parameters: ``offsets`` (required; durations after the first attempt,
    positive and increasing), ``lifetime`` (5 d, RFC 5321 §4.5.4.1's give-up),
    ``repeat_last_gap`` (true), ``changes_source_ip`` (false) and ``delay_warning`` (0,
    off)."""

    offsets: Offsets
    lifetime: Seconds = 5 * DAY
    repeat_last_gap: Flag = True
    changes_source_ip: Flag = False
    delay_warning: Seconds = 0.0


class ScheduleRetry(PolicyBase):
    """Attempts at fixed offsets after the first attempt (measured webmail or custom).

    Retry k (k = 1, 2, ...) is due at ``arrival + offsets[k-1]``; the MTA makes the first
    attempt at arrival, so offsets count from it. Anchoring on arrival rather than on
    each failure reproduces the measured offsets to the second whatever the failures
    cost. After the listed offsets the last gap repeats (``repeat_last_gap``) or the
    sender gives up (``None``). In both cases the message expires at the first failure
    with ``now - arrival >= lifetime``. Parameters: :class:`ScheduleParams`.
    """

    Params = ScheduleParams
    params: ScheduleParams

    def __init__(
        self, params: ScheduleParams, rng: Generator | None = None, name: str = "custom"
    ) -> None:
        super().__init__(params, rng, name)
        self.offsets: tuple[float, ...] = tuple(params.offsets)
        self.lifetime = params.lifetime
        self.changes_source_ip = params.changes_source_ip
        self.delay_warning = params.delay_warning or None
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
        elif self.params.repeat_last_gap:
            offset = self.offsets[-1] + self._last_gap * (attempts - len(self.offsets))
        else:
            return None
        return max(arrival + offset, now)
