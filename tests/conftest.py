"""Shared builders for small scenarios used across the tests."""

from __future__ import annotations

import copy

import pytest

from mailnet.scenario import Scenario


def one_mx_world(**server) -> dict:
    """A provider ``isp`` sending to ``dest.example`` served by one MX ``mx.dest.example``."""
    base = {
        "simulation": {"duration": "1d", "seed": 1},
        "providers": {"isp": {"ips": ["198.51.100.1"], "local_domains": ["isp.example"]}},
        "senders": {"users": {"provider": "isp", "count": 1,
                              "messages": [{"at": "0s", "to": ["alice@dest.example"]}]}},
        "domains": {"dest.example": {"mx": [{"host": "mx.dest.example", "preference": 10}]}},
        "servers": {"mx.dest.example": {"sessions": 10, "backlog": 10,
                                         "service_time": {"dist": "constant", "mean": "1s"},
                                         **server}},
    }
    return base


def build(raw: dict, **changes) -> Scenario:
    raw = copy.deepcopy(raw)
    for dotted, value in changes.items():
        node = raw
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return Scenario.from_dict(raw)


@pytest.fixture
def world_raw():
    return one_mx_world()
