"""The metric catalogue against real summaries: every key of a summary is declared, every
plain declaration appears in a summary, and the tables and figures read the catalogue."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mailnet import metric_catalog as catalog
from mailnet.metrics import flatten, summarize
from mailnet.scenario import Scenario
from mailnet.simulate import RunResult, simulate
from tests.conftest import ONE_MX_TOML

GOLDEN_SUMMARY = Path(__file__).parent / "golden" / "summary.json"


@pytest.fixture(scope="module")
def golden_keys() -> list[str]:
    return list(flatten(json.loads(GOLDEN_SUMMARY.read_text())))


def one_mx_run(warmup: str) -> RunResult:
    raw = tomllib.loads(ONE_MX_TOML)
    raw["simulation"]["warmup"] = warmup
    return simulate(Scenario.from_dict(raw))


@pytest.fixture(scope="module")
def small_keys() -> list[str]:
    """A one-MX world with outages and a warm-up: other hosts and queues than the golden one."""
    return list(flatten(one_mx_run("10m").summary))


@pytest.mark.parametrize("keys", ["golden_keys", "small_keys"])
def test_every_summary_key_is_declared(keys: str, request: pytest.FixtureRequest) -> None:
    assert catalog.undeclared(request.getfixturevalue(keys)) == []


@pytest.mark.parametrize("keys", ["golden_keys", "small_keys"])
def test_every_plain_declaration_is_in_the_summary(
    keys: str, request: pytest.FixtureRequest
) -> None:
    assert catalog.missing(request.getfixturevalue(keys)) == []


def test_keys_present_only_in_some_runs_are_families(golden_keys: list[str]) -> None:
    assert catalog.lookup("listings.spamcop:ip") is not None
    assert catalog.lookup("classes.ham.bounced_by_reason.5.1.1") is not None
    assert catalog.lookup("no_such_metric") is None
    assert catalog.undeclared([*golden_keys, "no_such_metric"]) == ["no_such_metric"]


def test_declarations_are_unique_and_families_do_not_shadow_plain_keys() -> None:
    keys = [m.key for m in catalog.CATALOG]
    assert len(keys) == len(set(keys))
    for metric in catalog.CATALOG:
        if not metric.is_family:
            assert catalog.lookup(metric.key) is metric


def test_families_split_host_names_with_dots() -> None:
    metric = catalog.lookup("queue_time_average.server:mx1.bigmail.example:backlog")
    assert metric is not None
    assert metric.match("queue_time_average.server:mx1.bigmail.example:backlog") == {
        "host": "mx1.bigmail.example"
    }
    assert metric.panel_title("queue_time_average.server:mx1.bigmail.example:backlog") == (
        "server mx1.bigmail.example"
    )
    assert catalog.title("servers.mx1.bigmail.example.p_wait") == (
        "mx1.bigmail.example: probability of waiting for a session"
    )


def test_headline_metrics_keep_their_order(golden_keys: list[str]) -> None:
    chosen = catalog.members(golden_keys, headline=True)
    assert chosen[:8] == [
        "delivery_rate",
        "bounce_rate",
        "deferral_rate",
        "latency_s.p50",
        "latency_s.p90",
        "latency_s.p99",
        "end_to_end_latency_s.p90",
        "attempts_per_remote_recipient",
    ]
    queues = [k for k in golden_keys if k.startswith("queue_time_average.")]
    assert chosen[-len(queues) :] == queues


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("delivery_rate", 0.725, "72.5 %"),
        ("latency_s.p90", 546.96, "9 min 7 s"),
        ("messages", 12345, "12,345"),
        ("attempts_per_remote_recipient", 2.25, "2.25"),
        ("bounce_rate", None, catalog.MISSING),
        ("session_wait_s.mean", float("nan"), catalog.MISSING),
        ("status.delivered", np.int64(7), "7"),
        ("no_such_metric", 0.5, "0.5"),
    ],
)
def test_values_are_written_in_their_unit(key: str, value: object, text: str) -> None:
    assert catalog.format_metric(key, value) == text


def test_axis_scale_follows_the_unit() -> None:
    assert catalog.axis_scale("share", [0.1]) == (0.01, "%")
    assert catalog.axis_scale("s", [30.0, 7200.0]) == (3600.0, "h")
    assert catalog.axis_scale("number", [3.0]) == (1.0, "")


def test_summary_without_a_world_is_declared() -> None:
    result = one_mx_run("30m")
    again = summarize(result.messages, result.attempts, result.queues, result.scenario)
    assert catalog.undeclared(flatten(again)) == []
