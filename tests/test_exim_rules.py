"""Exim retry-rule parsing and next-interval arithmetic (``readconf.c``, ``retry.c``)."""

import numpy as np
import pytest

from mailnet.policies.exim_rules import (
    DEFAULT_RETRY_RULE,
    RetryRule,
    format_exim_time,
    next_interval,
    parse_exim_time,
    parse_retry_rules,
    select_rule,
)

H, M = 3600.0, 60.0
DEFAULT = parse_retry_rules(DEFAULT_RETRY_RULE)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("4d", 345600),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1d12h", 129600),
        (" 2h ", 7200),
    ],
)
def test_exim_time(text, seconds):
    assert parse_exim_time(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "2x", "h2", "1.5h", "-1h", "2 h", "1h30"])
def test_exim_time_rejects(text):
    with pytest.raises(ValueError, match="bad Exim time"):
        parse_exim_time(text)


def test_format_exim_time_round_trips():
    for seconds in (30, 900, 5400, 129600, 604800 + 3600):
        assert parse_exim_time(format_exim_time(seconds)) == seconds


def test_default_rule_parses_exactly():
    assert (
        RetryRule("F", 2 * H, 15 * M),
        RetryRule("G", 16 * H, 1 * H, 1.5),
        RetryRule("F", 96 * H, 6 * H),
    ) == DEFAULT
    assert "; ".join(map(str, DEFAULT)) == DEFAULT_RETRY_RULE


def test_parse_is_lenient_like_exim():
    assert parse_retry_rules(" f , 2h , 15m ;g,16h,1h,1.5;") == DEFAULT[:2]
    assert parse_retry_rules("H,1d,10m,2") == (RetryRule("H", 86400.0, 600.0, 2.0),)
    assert parse_retry_rules("G,1d,10m,1") == (RetryRule("G", 86400.0, 600.0, 1.0),)
    assert parse_retry_rules("") == ()


@pytest.mark.parametrize(
    ("text", "bad_rule", "problem"),
    [
        ("X,2h,15m", "X,2h,15m", "unknown rule letter 'X'"),
        ("F,2h", "F,2h", "missing field"),
        ("G,16h,1h", "G,16h,1h", "missing field"),
        ("F,2h,15m,3", "F,2h,15m,3", "too many fields"),
        ("F,2x,15m", "F,2x,15m", "bad cutoff '2x'"),
        ("F,2h,15", "F,2h,15", "bad interval '15'"),
        ("F,0s,15m", "F,0s,15m", "cutoff must be greater than zero"),
        ("G,16h,1h,0.5", "G,16h,1h,0.5", "factor 0.5 must be at least 1"),
        ("G,16h,1h,x", "G,16h,1h,x", "bad factor 'x'"),
        ("F,2h,15m; F,1h,30m", "F,1h,30m", "not after the previous rule's cutoff 2h"),
        ("F,2h,15m; F,2h,30m", "F,2h,30m", "not after"),
        ("F,2h,15m;;F,4d,6h", "", "empty rule"),
    ],
)
def test_malformed_rules_name_rule_and_problem(text, bad_rule, problem):
    with pytest.raises(ValueError, match=r"^retry rule ") as caught:
        parse_retry_rules(text)
    message = str(caught.value)
    assert f"retry rule {bad_rule!r}" in message
    assert problem in message
    assert "\n" not in message


def test_select_rule_uses_cutoff_inclusively():
    assert select_rule(DEFAULT, 0) == (DEFAULT[0], False)
    assert select_rule(DEFAULT, 2 * H) == (DEFAULT[0], False)
    assert select_rule(DEFAULT, 2 * H + 1) == (DEFAULT[1], False)
    assert select_rule(DEFAULT, 96 * H) == (DEFAULT[2], False)
    assert select_rule(DEFAULT, 96 * H + 1) == (DEFAULT[2], True)
    assert select_rule((), 0) == (None, True)


def test_fixed_and_geometric_intervals():
    assert next_interval(DEFAULT, 600, lastgap=900) == (15 * M, False)
    # G: below p1 the gap is p1; otherwise lastgap * 1.5, in whole seconds.
    assert next_interval(DEFAULT, 3 * H, lastgap=900) == (1 * H, False)
    assert next_interval(DEFAULT, 3 * H, lastgap=3600) == (5400, False)
    assert next_interval(DEFAULT, 3 * H, lastgap=18225) == (27337, False)
    assert next_interval(DEFAULT, 20 * H, lastgap=5 * H) == (6 * H, False)
    assert next_interval(DEFAULT, 97 * H, lastgap=6 * H) == (6 * H, True)
    assert next_interval((), 0, lastgap=0) == (0.0, True)


def test_interval_is_capped():
    rules = parse_retry_rules("G,30d,1h,10")
    assert next_interval(rules, 1 * H, lastgap=5 * H).interval == 24 * H
    assert next_interval(rules, 1 * H, lastgap=5 * H, interval_max=8 * H).interval == 8 * H


def test_h_rule_draws_from_upper_half():
    rules = parse_retry_rules("H,30d,1h,2")
    with pytest.raises(ValueError, match="H rule needs a random generator"):
        next_interval(rules, 1 * H, lastgap=3 * H)
    rng = np.random.default_rng(7)
    # next_gap = 6 h, so retry.c gives 1 h + 2.5 h + U[0, 5 h)/2: within [3.5 h, 6 h).
    gaps = [next_interval(rules, 1 * H, lastgap=3 * H, rng=rng).interval for _ in range(500)]
    assert min(gaps) >= 3.5 * H
    assert max(gaps) < 6 * H
    assert max(gaps) - min(gaps) > 2 * H
    # A small lastgap leaves no room for randomness.
    assert next_interval(rules, 1 * H, lastgap=10 * M, rng=rng).interval == 1 * H
    again = np.random.default_rng(7)
    assert next_interval(rules, 1 * H, lastgap=3 * H, rng=again).interval == gaps[0]
