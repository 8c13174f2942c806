import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailnet.units import format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("5d", 432000),
        ("1w", 604800),
        ("1h30m", 5400),
        (90, 90),
        (0, 0),
        ("0s", 0),
        ("2.5h", 9000),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 parsecs", "-3s", "h", True, None, "1e400s"])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("20/d", 20 / 86400),
        ("3/h", 3 / 3600),
        ("0.5/s", 0.5),
        ("6/m", 0.1),
        (2, 2.0),
    ],
)
def test_rates(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@given(st.integers(min_value=0, max_value=10**8))
def test_format_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def test_format_fractions():
    assert format_duration(0.05) == "50ms"
    assert math.isclose(parse_duration(format_duration(1.25)), 1.25)


def test_format_numpy_numbers_as_plain_ones():
    assert format_duration(np.float64(1800)) == "30m"
    assert format_duration(np.int64(7200)) == "2h"
    assert format_duration(np.float32(0.5)) == "500ms"
