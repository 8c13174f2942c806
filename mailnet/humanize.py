"""Numbers written for people: durations in two units (``21 h 9 min``), shares in per cent
(``1.2 %``), counts with thousands separators.

Every table the command line and the reports print goes through here (through
``metric_catalog.format_value`` for summary metrics), so a value reads the same
everywhere. Plain Python: the command line imports it.
"""

from __future__ import annotations

import math

from mailnet.units import DAY, HOUR, MINUTE

MISSING = "\N{EN DASH}"
"""How an undefined value (``None``, NaN) is written."""

_LARGE_UNITS = ((DAY, "d", HOUR, "h"), (HOUR, "h", MINUTE, "min"), (MINUTE, "min", 1.0, "s"))
"""From one minute up: the unit and the next smaller one (``2 d 3 h``, ``5 min 21 s``)."""


def duration(seconds: float | None) -> str:
    """``seconds`` as people write a duration: two whole units from one minute up
    (76,140 -> ``21 h 9 min``, 321 -> ``5 min 21 s``, 7200 -> ``2 h``), three significant
    digits below (``1.06 s``, ``350 ms``); ``MISSING`` for ``None`` and NaN."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < MINUTE - 0.5:
        return _short(seconds)
    for size, name, small, small_name in _LARGE_UNITS:
        if seconds >= size - 0.5 * small:
            whole = round(seconds / small)  # in the smaller unit
            big, rest = divmod(whole, round(size / small))
            return f"{big} {name}" + (f" {rest} {small_name}" if rest else "")
    return _short(seconds)  # not reached: the last unit covers a minute and more


def _short(seconds: float) -> str:
    """Under a minute: three significant digits in s or ms."""
    if seconds < 1e-6:  # float noise around zero
        return "0 s"
    if seconds < 0.001:
        return "< 1 ms"
    if seconds < 1.0:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def share(fraction: float | None) -> str:
    """A fraction in [0, 1] in per cent: one decimal from 1 % (``12.2 %``, ``1.2 %``), two
    significant digits below (``0.19 %``, ``0.005 %``), ``0 %`` and ``100 %`` exact."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    percent = 100.0 * fraction
    if percent in {0.0, 100.0}:
        return f"{percent:.0f} %"
    if abs(percent) < 1.0:
        return f"{percent:.2g} %"
    return f"{percent:.1f} %"


def count(value: float | None) -> str:
    """A whole number with thousands separators (``12,345``); other numbers as ``number``."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == int(value):
        return f"{int(value):,}"
    return number(value)


def number(value: float | None) -> str:
    """Any other quantity, to four significant digits (``1.412``, ``256.1``, ``1,234``)."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.4g}"
