"""Summary-only runs: the summary folded as the run goes equals the tables' summary.

Counts and rates must be equal, means and time averages equal up to the order of a float
sum, and every latency quantile within the sketch's relative accuracy of the exact one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mailnet import load_scenario, simulate
from mailnet.cli import app
from mailnet.metrics import QUANTILES, flatten
from mailnet.sketch import RELATIVE_ACCURACY, LatencySketch
from mailnet.timeseries import settling

ROOT = Path(__file__).resolve().parent.parent
WORLDS = {
    "golden": (ROOT / "tests/golden/scenario.toml", []),
    "spam": (
        ROOT / "experiments/scenarios/shared_ip_spam.toml",
        ["simulation.duration=4h", "simulation.warmup=1h"],
    ),
    "retry": (ROOT / "experiments/scenarios/retry_world.toml", ["simulation.duration=4h"]),
    # three recipients a message, one qmail delivery each, and two domains on one host:
    # deliveries of one message share connection keys, which count once
    "shared_keys": (
        ROOT / "experiments/scenarios/retry_world.toml",
        [
            "simulation.duration=6h",
            'providers.isp.retry="qmail"',
            "senders.users.recipients=3",
            'domains."grey.example".mx=[{host="mx.flaky.example"}]',
        ],
    ),
}

FLOAT_ORDER = 1e-9
"""Relative tolerance of a mean or time average: the same terms summed in another order."""


@pytest.fixture(scope="module", params=sorted(WORLDS))
def runs(request):
    path, overrides = WORLDS[request.param]
    scenario = load_scenario(path, overrides=overrides)
    return simulate(scenario), simulate(scenario, summary_only=True)


def test_summary_only_run_keeps_the_summary(runs):
    full, lite = runs
    a, b = flatten(full.summary), flatten(lite.summary)
    assert list(a) == list(b)  # the same keys, in the same order
    assert json.dumps(full.summary["listings"]) == json.dumps(lite.summary["listings"])
    quantiles = {f"p{int(q * 100)}" for q in QUANTILES}
    checked = 0
    for key, exact in a.items():
        got = b[key]
        stat = key.rpartition(".")[2]
        if "latency_s." in key and stat in quantiles and exact is not None:
            assert got == pytest.approx(exact, rel=RELATIVE_ACCURACY, abs=1e-12), key
            checked += 1
        elif isinstance(exact, float) and (
            stat in ("mean", "mean_wait_s") or key.startswith("queue_time_average.")
        ):
            assert got == pytest.approx(exact, rel=FLOAT_ORDER, abs=1e-12), key
        else:
            assert got == exact, key  # counts and rates: exactly equal
    assert checked >= 12


def test_the_shared_keys_world_has_attempts_that_share_a_connection():
    """What ``shared_keys`` is there for: distinct attempts (other sessions, other ends)
    of one message with one connection key, which the summary-only fold must count once
    while keeping few keys."""
    path, overrides = WORLDS["shared_keys"]
    attempts = simulate(load_scenario(path, overrides=overrides)).attempts
    key = ["message_id", "hop", "mx_host", "started_at"]
    tried = attempts[attempts["mx_host"].notna()]
    distinct = tried.drop_duplicates([*key, "session_at", "ended_at"])
    assert (distinct.groupby(key, observed=True).size() > 1).sum() >= 100


def test_summary_only_run_settles_as_its_tables(runs):
    full, lite = runs
    settled = settling(full.messages, full.queues)
    assert lite.settled == replace(settled, outage_ended_at=None)


def test_summary_only_run_keeps_no_rows(runs):
    _, lite = runs
    for table in (lite.messages, lite.attempts, lite.queues):
        assert table.empty
    assert list(lite.tables()) == ["listings", "suspensions", "changes"]
    assert lite.manifest["summary_only"] is True


def test_rows_are_folded_once_settled():
    """The slots in use follow the mail in flight: a steady world reuses them."""
    from mailnet.streaming import StreamingLog

    scenario = load_scenario(WORLDS["golden"][0])
    logs: list[StreamingLog] = []
    original = StreamingLog.__init__

    def keep(self, scenario):
        original(self, scenario)
        logs.append(self)

    StreamingLog.__init__ = keep  # type: ignore[method-assign]
    try:
        simulate(scenario, summary_only=True)
    finally:
        StreamingLog.__init__ = original  # type: ignore[method-assign]
    table = logs[0].messages
    assert table.created > 4 * len(table)  # rows created, against slots ever used


def test_sketch_quantiles_within_their_bound():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.lognormal(3, 2, 20_000), np.zeros(50)])
    sketch = LatencySketch()
    for v in values:
        sketch.add(float(v))
    assert sketch.count == values.size
    assert sketch.total == pytest.approx(values.sum(), rel=1e-12)
    for q in (0.0, 0.002, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = float(np.quantile(values, q))
        assert sketch.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY, abs=1e-12)
    # a sample of two: the median interpolates halfway between them
    pair = LatencySketch()
    for v in (10.0, 1000.0):
        pair.add(v)
    assert pair.quantile(0.5) == pytest.approx(505.0, rel=RELATIVE_ACCURACY)


def test_cli_summary_only_writes_the_summary_and_no_big_tables(tmp_path):
    out = tmp_path / "run"
    golden = str(WORLDS["golden"][0])
    done = CliRunner().invoke(app, ["run", golden, "--summary-only", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "deferred queue" in done.output
    assert sorted(p.name for p in out.iterdir()) == [
        "changes.parquet",
        "listings.parquet",
        "manifest.json",
        "scenario.toml",
        "summary.json",
        "suspensions.parquet",
    ]
    refused = CliRunner().invoke(app, ["run", golden, "--summary-only", "--by", "group"])
    assert refused.exit_code == 2
    assert "--summary-only: keeps no tables" in refused.output
