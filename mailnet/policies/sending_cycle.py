"""Daily and weekly sending cycles: a Poisson stream whose rate follows the clock.

A sender group's rate is multiplied by an hourly profile (24 entries, hour 0 = midnight)
and a weekly one (7 entries, day 0 = Monday); time 0 of a run is Monday 00:00. Each
profile is scaled to a mean of 1, so ``rate`` stays the long-run average rate (over whole
weeks) and only its timing changes. The rate is constant within each of the week's 168
hours, so the next arrival follows exactly by inverting the integrated rate: a unit
exponential draw is spent hour by hour (Çinlar's time change for a non-homogeneous
Poisson process), one draw per message and no rejected candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

HOUR = 3600.0
"""Seconds in one slot of the profile."""

WEEK_SLOTS = 168
"""Hours in a week: the profile repeats after this many slots."""


def slot_multipliers(hourly: Sequence[float], weekly: Sequence[float]) -> list[float]:
    """The rate multiplier of each hour of the week (168 values, mean 1): the hourly and
    weekly profiles, each scaled to mean 1, multiplied."""
    if len(hourly) != 24 or len(weekly) != 7:
        raise ValueError("a cycle has 24 hourly and 7 weekly entries")
    h_mean = sum(hourly) / 24
    w_mean = sum(weekly) / 7
    if h_mean <= 0 or w_mean <= 0:
        raise ValueError("a profile sums to zero")
    return [(weekly[s // 24] / w_mean) * (hourly[s % 24] / h_mean) for s in range(WEEK_SLOTS)]


class SendingClock:
    """Arrival times of a Poisson stream of average ``rate`` per second shaped by the
    cycle's ``multipliers`` (:func:`slot_multipliers`)."""

    __slots__ = ("_rates",)

    def __init__(self, multipliers: Sequence[float], rate: float):
        if rate <= 0 or max(multipliers) <= 0:
            raise ValueError("a sending clock needs a positive rate")
        self._rates = [rate * m for m in multipliers]

    def next_time(self, now: float, draw: float) -> float:
        """The time (seconds) of the arrival after ``now``, given a unit exponential
        ``draw``: the first time the integrated rate since ``now`` reaches ``draw``."""
        rates = self._rates
        slot = int(now // HOUR)
        end = (slot + 1) * HOUR
        t = now
        while True:
            rate = rates[slot % WEEK_SLOTS]
            if rate > 0:
                span = draw / rate
                if t + span < end:
                    return t + span
                draw -= (end - t) * rate
            t = end
            slot += 1
            end += HOUR


def mean_multiplier(multipliers: Sequence[float], duration: float) -> float:
    """The average rate multiplier over ``[0, duration]`` seconds (1 for whole weeks)."""
    if duration <= 0:
        return 1.0
    weeks, rest = divmod(duration, WEEK_SLOTS * HOUR)
    total = weeks * WEEK_SLOTS * HOUR
    slot = 0
    while rest > 0:
        span = min(HOUR, rest)
        total += multipliers[slot] * span
        rest -= span
        slot += 1
    return total / duration
