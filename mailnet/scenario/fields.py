"""Field types shared by every section of a scenario: durations, rates, retry schedules.

Durations and rates are text at the edge (``"4h"``, ``"20/d"``) and seconds (or events
per second) inside; ``mailnet.units`` does the conversion both ways.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from mailnet.units import format_duration, format_rate, parse_duration, parse_rate


def exact_duration(seconds: float) -> str:
    """``seconds`` as text that reads back to exactly the same float: the short form
    (``"5m"``) when it does, else every digit (``"1.0000000000001s"``)."""
    text = format_duration(seconds)
    return text if parse_duration(text) == seconds else f"{float(seconds)!r}s"


def exact_rate(per_second: float) -> str:
    """``per_second`` as text that reads back to exactly the same float (``"20/d"`` when
    that does, else every digit per second)."""
    text = format_rate(per_second)
    return text if parse_rate(text) == per_second else f"{float(per_second)!r}/s"


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be positive, not zero")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(exact_duration)]
"""Seconds inside; ``"5m"`` style text (or a number of seconds) in files."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A duration that must be above zero: an interval, a window, a half-life."""

Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(exact_rate)]
"""Events per second inside; ``"20/d"`` style text in files."""

PositiveRate = Annotated[Rate, AfterValidator(_positive)]
"""A rate that must be above zero: a limit that refills."""

MAX_INTEGER = 2**63 - 1
"""The largest integer a scenario may hold anywhere (TOML's own limit)."""


def huge_integer(value: Any, at: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The key path of the first integer beyond 64 bits in ``value`` (tables and lists
    searched), or None: such numbers overflow wherever they reach the model."""
    if isinstance(value, int) and not isinstance(value, bool):
        return at if abs(value) > MAX_INTEGER else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = huge_integer(item, (*at, key))
        if found is not None:
            return found
    return None


class Model(BaseModel):
    """A section of a scenario file: unknown keys are errors, values are frozen, numbers
    are finite (no inf or nan) and integers fit in 64 bits."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class CustomRetry(Model):
    """A custom retry schedule: attempts at these offsets after the first, until ``lifetime``."""

    offsets: list[Duration] = Field(min_length=1)
    lifetime: Duration
