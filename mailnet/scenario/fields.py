"""Field types shared by every section of a scenario: durations, rates, retry schedules.

Durations and rates are text at the edge (``"4h"``, ``"20/d"``) and seconds (or events
per second) inside; ``mailnet.units`` does the conversion both ways.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from mailnet.units import format_duration, format_rate, parse_duration, parse_rate

Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
"""Seconds inside; ``"5m"`` style text (or a number of seconds) in files."""

Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(format_rate)]
"""Events per second inside; ``"20/d"`` style text in files."""


class Model(BaseModel):
    """A section of a scenario file: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CustomRetry(Model):
    """A custom retry schedule: attempts at these offsets after the first, until ``lifetime``."""

    offsets: list[Duration] = Field(min_length=1)
    lifetime: Duration
