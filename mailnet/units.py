"""Units at the edge: durations and rates as people write them, seconds inside.

Simulated time is in seconds everywhere in mailnet. Text such as ``"4h"`` or ``"20/d"``
is only accepted in scenario files and on the command line, and converted here.
"""

from __future__ import annotations

import math
import re

SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY

_UNITS = {
    "ms": 0.001,
    "s": SECOND,
    "m": MINUTE,
    "min": MINUTE,
    "h": HOUR,
    "d": DAY,
    "w": WEEK,
}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|min|m|h|d|w)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration: ``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"5d"``, ``"1w"`` or a number.

    Compound Exim-style forms such as ``"1h30m"`` are accepted too. Raises ``ValueError``
    with a short reason on anything else, including negative or non-finite values.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _DURATION.match(text)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
        else:
            parts = re.findall(r"([0-9]*\.?[0-9]+)(ms|s|m|h|d|w)", text)
            if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
                raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 30s, 5m, 2h, 5d)")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be finite and not negative, got {value!r}")
    return seconds


_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*/\s*(ms|s|m|h|d|w)\s*$")


def parse_rate(value: str | float | int) -> float:
    """Events per second in a rate: ``"20/d"``, ``"3/h"``, ``"0.5/s"``, or a number (per second)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate, got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"not a rate: {value!r} (use e.g. 20/d, 3/h, 0.5/s)")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a rate, got {value!r}")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be finite and not negative, got {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    """The shortest exact text for a number of seconds: 300 -> ``"5m"``, 90 -> ``"90s"``."""
    seconds = float(seconds)  # so that round() below gives an int for any numeric type
    if seconds == 0:
        return "0s"
    for unit, size in (("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    if seconds < 1 and abs(seconds * 1000 - round(seconds * 1000)) < 1e-9:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:.12g}s"


def format_rate(per_second: float) -> str:
    """A rate as text with the largest unit giving a whole-ish count: 20/86400 -> ``"20/d"``."""
    for unit, size in (("s", SECOND), ("m", MINUTE), ("h", HOUR), ("d", DAY)):
        count = per_second * size
        if count >= 1 or unit == "d":
            return f"{count:.12g}/{unit}"
    return f"{per_second:.12g}/s"
