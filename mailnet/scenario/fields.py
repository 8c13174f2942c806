"""Field types shared by every section of a scenario: durations, rates, retry schedules.

Durations and rates are text at the edge (``"4h"``, ``"20/d"``) and seconds (or events
per second) inside; ``mailnet.units`` does the conversion both ways.
"""

from __future__ import annotations

import math
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
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

MAX_NAME_LENGTH = 253
"""The longest name of an entity (a provider, sender group, domain, server, receiver or
blocklist): the longest DNS name (RFC 1035 §2.3.4). Names reach every row of the tables,
so a megabyte-long one costs gigabytes."""

MAX_DEPTH = 32
"""The deepest nesting of tables and lists a scenario may have; real ones reach 5."""

ENTITY_SECTIONS = ("providers", "senders", "domains", "servers", "receivers", "blocklists")
"""The sections whose keys are entity names."""

CEILINGS: dict[tuple[str, ...], float] = {
    # clients of one group: each is an address in every message row
    ("senders", "*", "count"): 10_000_000,
    # Postfix's smtpd_recipient_limit: at most 1000 RCPT TO per message
    ("senders", "*", "recipients"): 1000,
    # a campaign's send times are drawn at once: 8 bytes each
    ("senders", "*", "campaigns", "size"): 10_000_000,
    ("servers", "*", "sessions"): 1_000_000,
    ("servers", "*", "backlog"): 1_000_000_000,
    ("servers", "*", "max_connections"): 1_000_000,
    ("providers", "*", "max_connections"): 1_000_000,
    ("providers", "*", "destination_concurrency_limit"): 1_000_000,
    ("providers", "*", "initial_destination_concurrency"): 1_000_000,
}
"""Per-field ceilings: far above any real mail system, low enough that a typo (an extra
six zeros) is refused at load time instead of exhausting memory in the run. ``*`` stands
for any entity name."""


def raw_problem(raw: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first structural problem of a raw scenario (as read from TOML), as
    ``(key path, problem)``, or None: nesting deeper than ``MAX_DEPTH``, an integer beyond
    64 bits, an entity name longer than ``MAX_NAME_LENGTH``, a value above its ceiling
    (``CEILINGS``). Walks without recursion, so no input can exhaust the stack."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), raw)]
    while stack:
        at, value = stack.pop()
        if len(at) > MAX_DEPTH:
            return at[:MAX_DEPTH], f"nested more than {MAX_DEPTH} tables or lists deep"
        problem = _value_problem(at, value)
        if problem is not None:
            return at, problem
        if isinstance(value, dict):
            items: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        stack.extend(((*at, key), item) for key, item in reversed(items))
    return None


def _value_problem(at: tuple[str | int, ...], value: Any) -> str | None:
    if len(at) == 2 and at[0] in ENTITY_SECTIONS and len(str(at[1])) > MAX_NAME_LENGTH:
        return f"name longer than {MAX_NAME_LENGTH} characters"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # the field's own check says it must be finite
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return f"integer out of range (beyond ±{MAX_INTEGER})"
    ceiling = CEILINGS.get(tuple("*" if i == 1 else str(p) for i, p in enumerate(at)))
    if ceiling is not None and value > ceiling:
        shown = f"{value:,}" if isinstance(value, int) and value < 10**15 else f"{value:.4g}"
        return f"at most {int(ceiling):,}, not {shown}"
    return None


class Model(BaseModel):
    """A section of a scenario file: unknown keys are errors, values are frozen, numbers
    are finite (no inf or nan) and integers fit in 64 bits, and a number is never given as
    ``true`` or ``false`` (which pydantic would read as 1 or 0)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _numeric(field.annotation):
                raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


def _numeric(annotation: Any) -> bool:
    """Whether a field of this type takes a number and not a boolean."""
    if annotation is bool:
        return False
    if annotation in (int, float):
        return True
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _numeric(args[0])
    if origin in (Union, UnionType):  # int | None, int | Literal["unlimited"]
        return bool not in args and any(_numeric(a) for a in args)
    return False


class CustomRetry(Model):
    """A custom retry schedule: attempts at these offsets after the first, until ``lifetime``."""

    offsets: list[Duration] = Field(min_length=1)
    lifetime: Duration
