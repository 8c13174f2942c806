"""The ``cycle`` of a sender group: its rate's hourly and weekly profile.

``cycle = { hourly = [...24 numbers...], weekly = [...7 numbers...] }`` shapes the group's
Poisson stream (``mailnet.policies.sending_cycle``): relative weights, scaled to mean 1
so that ``rate`` stays the average over whole weeks; hour 0 is midnight, day 0 Monday,
and a run starts on Monday at 00:00.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from mailnet.scenario.fields import Model

MAX_WEIGHT = 1e6
"""The largest weight of one hour or day: relative weights need no more range."""


class SendingCycle(Model):
    """Relative sending weights per hour of the day and per day of the week (both
    default flat: no cycle)."""

    hourly: list[float] = Field(default_factory=lambda: [1.0] * 24, min_length=24, max_length=24)
    weekly: list[float] = Field(default_factory=lambda: [1.0] * 7, min_length=7, max_length=7)

    @field_validator("hourly", "weekly")
    @classmethod
    def _weights(cls, values: list[float]) -> list[float]:
        for value in values:
            if not 0 <= value <= MAX_WEIGHT:
                raise ValueError(f"weights are from 0 to {MAX_WEIGHT:g}, not {value}")
        if sum(values) <= 0:
            raise ValueError("weights sum to zero: the group would never send")
        return values
