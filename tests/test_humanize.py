"""Numbers written for people: durations in two units, shares in per cent."""

from __future__ import annotations

import math

import pytest

from mailnet import humanize


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 s"),
        (0.0004, "< 1 ms"),
        (0.35, "350 ms"),
        (1.06, "1.06 s"),
        (59.4, "59.4 s"),
        (59.6, "1 min"),  # rounds up into the next unit, never "60 s"
        (321.0, "5 min 21 s"),
        (3599.8, "1 h"),
        (7200.0, "2 h"),
        (76140.0, "21 h 9 min"),
        (2 * 86400 + 3 * 3600, "2 d 3 h"),
        (-90.0, "-1 min 30 s"),
        (None, humanize.MISSING),
        (math.nan, humanize.MISSING),
    ],
)
def test_durations_read_as_people_write_them(seconds: float | None, text: str) -> None:
    assert humanize.duration(seconds) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.0, "0 %"),
        (1.0, "100 %"),
        (0.012, "1.2 %"),
        (0.1216, "12.2 %"),
        (0.0019, "0.19 %"),
        (0.00005, "0.005 %"),
        (None, humanize.MISSING),
    ],
)
def test_shares_are_per_cent(fraction: float | None, text: str) -> None:
    assert humanize.share(fraction) == text


def test_counts_and_numbers() -> None:
    assert humanize.count(12345) == "12,345"
    assert humanize.count(2.5) == "2.5"
    assert humanize.number(256.123) == "256.1"
