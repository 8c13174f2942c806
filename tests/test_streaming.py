"""Summary-only runs: the summary folded as the run goes equals the tables' summary.

Counts and rates must be equal, means and time averages equal up to the order of a float
sum, and every latency quantile within the sketch's relative accuracy of the order
statistics around the exact (interpolated) quantile.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
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
}

FLOAT_ORDER = 1e-9
"""Relative tolerance of a mean or time average: the same terms summed in another order."""


def _latencies(messages: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every latency sample of the summary by its flattened key prefix."""
    mail = messages[~messages["is_dsn"]]
    delivered = mail[mail["status"] == "delivered"]
    lat = delivered["delivered_at"] - delivered["created_at"]
    retrieved = mail[mail["retrieved_at"].notna()]
    out = {
        "latency_s": lat.to_numpy(),
        "end_to_end_latency_s": (retrieved["retrieved_at"] - retrieved["created_at"]).to_numpy(),
        "legitimate.latency_s": lat[delivered["sender_class"] != "spam"].to_numpy(),
    }
    for cls in mail["sender_class"].unique():
        out[f"classes.{cls}.latency_s"] = lat[delivered["sender_class"] == cls].to_numpy()
    return out


def _bracket(values: np.ndarray, q: float) -> tuple[float, float]:
    """The order statistics the exact quantile ``q`` interpolates between."""
    x = np.sort(values)
    rank = q * (x.size - 1)
    return float(x[math.floor(rank)]), float(x[math.ceil(rank)])


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
    samples = _latencies(full.messages)
    checked = 0
    for key, exact in a.items():
        got = b[key]
        prefix, _, stat = key.rpartition(".")
        if prefix in samples and stat in {f"p{int(q * 100)}" for q in QUANTILES}:
            if exact is None:
                assert got is None, key
                continue
            lo, hi = _bracket(samples[prefix], int(stat[1:]) / 100)
            assert lo * (1 - RELATIVE_ACCURACY) <= got <= hi * (1 + RELATIVE_ACCURACY), key
            checked += 1
        elif isinstance(exact, float) and (
            stat in ("mean", "mean_wait_s") or key.startswith("queue_time_average.")
        ):
            assert got == pytest.approx(exact, rel=FLOAT_ORDER, abs=1e-12), key
        else:
            assert got == exact, key  # counts and rates: exactly equal
    assert checked >= 12


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
    for q in (0.01, 0.5, 0.9, 0.99, 1.0):
        lo, hi = _bracket(values, q)
        got = sketch.quantile(q)
        assert got is not None
        assert lo * (1 - RELATIVE_ACCURACY) <= got <= hi * (1 + RELATIVE_ACCURACY)


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
