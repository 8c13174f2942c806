"""Shared builders for small scenarios used across the tests."""

from __future__ import annotations

import copy
import textwrap

import pytest

from mailnet.scenario import Scenario, set_dotted


def one_mx_world(**server) -> dict:
    """A provider ``isp`` sending to ``dest.example`` served by one MX ``mx.dest.example``."""
    return {
        "simulation": {"duration": "1d", "seed": 1},
        "providers": {"isp": {"ips": ["198.51.100.1"], "local_domains": ["isp.example"]}},
        "senders": {
            "users": {
                "provider": "isp",
                "count": 1,
                "messages": [{"at": "0s", "to": ["alice@dest.example"]}],
            }
        },
        "domains": {"dest.example": {"mx": [{"host": "mx.dest.example", "preference": 10}]}},
        "servers": {
            "mx.dest.example": {
                "sessions": 10,
                "backlog": 10,
                "service_time": {"dist": "constant", "mean": "1s"},
                **server,
            }
        },
    }


def build(raw: dict, **changes) -> Scenario:
    """A validated scenario from ``raw`` with ``changes`` set, each keyed by its key parts
    joined with ``__`` (``servers__mx.dest.example__sessions=3``)."""
    raw = copy.deepcopy(raw)
    for key, value in changes.items():
        set_dotted(raw, key.split("__"), value)
    return Scenario.from_dict(raw)


@pytest.fixture
def world_raw():
    return one_mx_world()


# about 30 ms per run: a few simulated hours of one provider sending to one MX that fails
ONE_MX_TOML = textwrap.dedent("""
    [simulation]
    duration = "2h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 10
    rate = "30/h"
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx.dest.example", preference = 10 } ]
    [servers."mx.dest.example"]
    sessions = 2
    backlog = 10
    service_time = { dist = "exponential", mean = "5s" }
    outages = { mtbf = "1h", mttr = "10m" }
""")


def sweep_app():
    """A typer app whose only command is ``sweep``, for CliRunner tests."""
    import typer

    from mailnet.sweep.cli import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _group() -> None:
        """Keep ``sweep`` a subcommand."""

    return app


def captured_logs(monkeypatch) -> list:
    """The event logs ``simulate`` gives the worlds it builds, each appended as its world
    is made: the folding tables of a summary-only or streamed run are compiled classes,
    whose methods a test cannot replace, so it reads their state instead."""
    import sys

    module = sys.modules["mailnet.simulate"]
    world = module.World
    logs: list = []

    def make(scenario, env, streams, log, **options):
        logs.append(log)
        return world(scenario, env, streams, log, **options)

    monkeypatch.setattr(module, "World", make)
    return logs
