"""The one TOML dotted-key helper behind --set, experiment keys and the tests' builders."""

from __future__ import annotations

import pytest

from mailnet.errors import ScenarioError
from mailnet.scenario import apply_overrides, key_parts, parse_dotted, parse_override, set_dotted


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("simulation.duration", ("simulation", "duration")),
        ('servers."mx1.example".sessions', ("servers", "mx1.example", "sessions")),
        ("servers.'mx\"q'.ip", ("servers", 'mx"q', "ip")),
        (" a . b ", ("a", "b")),
        (("servers", "mx1.example"), ("servers", "mx1.example")),
    ],
)
def test_key_parts_follow_toml(key, parts):
    assert key_parts(key) == parts


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("providers..ip", "not a TOML dotted key"),
        ("a b", "not a TOML dotted key"),
        ("a = 0\nb", "not a single TOML dotted key"),
        ("a = 1 #", "not a single TOML dotted key"),
    ],
)
def test_bad_keys(key, words):
    with pytest.raises(ValueError, match=words):
        key_parts(key)


def test_parse_dotted_nests_and_set_dotted_replaces():
    assert parse_dotted('servers."mx.example".sessions', 3) == {
        "servers": {"mx.example": {"sessions": 3}}
    }
    tree = {"servers": {"mx": {"service_time": {"dist": "lognormal", "sd": 1}}}}
    set_dotted(tree, ("servers", "mx", "service_time"), {"dist": "constant"})
    set_dotted(tree, "simulation.seed", 7)
    assert tree == {
        "servers": {"mx": {"service_time": {"dist": "constant"}}},
        "simulation": {"seed": 7},
    }


def test_overrides_parse_toml_values_and_merge_tables():
    assert parse_override("simulation.duration=30m") == {"simulation": {"duration": "30m"}}
    assert parse_override('servers."mx.x".sessions = 80') == {"servers": {"mx.x": {"sessions": 80}}}
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}
    assert parse_override("a.b=1\nc = 2") == {"a": {"b": "1\nc = 2"}}
    raw = {"servers": {"mx": {"sessions": 1, "backlog": 5}}}
    merged = apply_overrides(raw, ["servers.mx.sessions=2", "servers.mx.sessions=3"])
    assert merged == {"servers": {"mx": {"sessions": 3, "backlog": 5}}}
    assert raw["servers"]["mx"]["sessions"] == 1
    assert apply_overrides(raw, {'servers."mx".backlog': 0})["servers"]["mx"] == {
        "sessions": 1,
        "backlog": 0,
    }


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("novalue", "--set: novalue: expected KEY=VALUE"),
        ("providers..ip=1", "--set: providers..ip: not a TOML dotted key"),
    ],
)
def test_bad_overrides_are_one_line(override, line):
    with pytest.raises(ScenarioError) as caught:
        parse_override(override)
    assert str(caught.value) == line
