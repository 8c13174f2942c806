"""What a run directory and the run command show: the suspensions table, an honest manifest,
the package version, and a summary table and sweep axes that read the metric catalogue."""

from __future__ import annotations

import ast
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy

import mailnet
from mailnet import humanize
from mailnet import metric_catalog as catalog
from mailnet.cli import print_summary
from mailnet.output import write_run
from mailnet.report import make_report
from mailnet.report.inputs import load_run
from mailnet.report.sweeps import metric_scale, metric_title, panel_title
from mailnet.scenario import load_scenario
from mailnet.simulate import SUSPENSION_COLUMNS, RunResult, simulate

ROOT = Path(__file__).resolve().parent.parent
SHARED_IP = ROOT / "experiments" / "scenarios" / "shared_ip_spam.toml"
GOLDEN = ROOT / "tests" / "golden" / "scenario.toml"


@pytest.fixture(scope="module")
def suspended() -> RunResult:
    """The shared-IP world with SES-like suspension: the spammer is suspended."""
    overrides = ["simulation.duration=12h", "providers.isp.suspension.bounce_rate=0.05"]
    return simulate(load_scenario(SHARED_IP, overrides=overrides), seed=1)


def test_suspensions_are_written_and_read_back(suspended: RunResult, tmp_path: Path) -> None:
    assert len(suspended.suspensions) > 0
    out = write_run(suspended, tmp_path / "run")
    table = pd.read_parquet(out / "suspensions.parquet")
    assert list(table.columns) == list(SUSPENSION_COLUMNS)
    pd.testing.assert_frame_equal(table, suspended.suspensions)
    assert (table["bounce_rate"] >= 0.05).all()
    assert load_run(out).suspensions.equals(table)
    html = make_report(out).read_text(encoding="utf-8")
    assert "Sender suspensions" in html
    assert str(table["sender"].iloc[0]) in html


def test_a_run_without_suspensions_writes_an_empty_typed_table(tmp_path: Path) -> None:
    result = simulate(load_scenario(GOLDEN))
    out = write_run(result, tmp_path / "run")
    table = pd.read_parquet(out / "suspensions.parquet")
    assert table.empty
    assert {c: str(t) for c, t in table.dtypes.items()} == {
        c: ("string" if t == "string" else t) for c, t in SUSPENSION_COLUMNS.items()
    }


def test_report_reads_run_directories_without_a_suspensions_table(tmp_path: Path) -> None:
    out = write_run(simulate(load_scenario(GOLDEN)), tmp_path / "run")
    (out / "suspensions.parquet").unlink()
    assert load_run(out).suspensions.empty


def test_manifest_has_the_installed_version_and_no_event_count() -> None:
    result = simulate(load_scenario(GOLDEN))
    assert mailnet.__version__ == version("mailnet")
    assert result.manifest["mailnet_version"] == mailnet.__version__
    assert "simulated_events" not in result.manifest
    json.dumps(result.manifest)


def test_simulate_reads_no_private_simpy_state() -> None:
    tree = ast.parse((ROOT / "mailnet" / "simulate.py").read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and node.attr != "__init__"
    ]
    assert private == []


def test_a_given_environment_runs_the_same_model() -> None:
    """The benchmark counts events in an environment of its own: same tables."""

    class Counting(simpy.Environment):
        def __init__(self) -> None:
            super().__init__()
            self.scheduled = 0

        def schedule(
            self, event: simpy.Event, priority: int = simpy.core.NORMAL, delay: float = 0
        ) -> None:
            self.scheduled += 1
            super().schedule(event, priority, delay)

    scenario = load_scenario(GOLDEN)
    env = Counting()
    counted = simulate(scenario, environment=env)
    plain = simulate(scenario)
    assert env.scheduled > len(counted.messages)  # the world's events were counted
    pd.testing.assert_frame_equal(counted.messages, plain.messages)
    assert counted.summary == plain.summary


def test_run_summary_table_shows_the_brief_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((ROOT / "tests" / "golden" / "summary.json").read_text())
    print_summary(summary, {"wall_time_s": 1.5})
    text = capsys.readouterr().out
    rate = humanize.share(summary["delivery_rate"])
    p90 = humanize.duration(summary["latency_s"]["p90"])
    legit_p90 = humanize.duration(summary["legitimate"]["latency_s"]["p90"])
    for row in ("delivery rate", rate, "latency, 90th percentile", p90, legit_p90):
        assert row in text
    assert "wall time" in text


@pytest.mark.parametrize(
    ("metric", "values", "scale", "label"),
    [
        ("delivery_rate", [0.5, 0.9], 0.01, "delivery rate (%)"),
        (
            "legitimate.latency_s.p90",
            [30.0, 9000.0],
            3600.0,
            "legitimate mail: delivery latency, 90th percentile (h)",
        ),
        ("session_wait_s.mean", [0.1, 2.0], 1.0, "wait for a session, mean (s)"),
        ("queue_time_average.mta:isp:deferred", [1.0], 1.0, "messages in the deferred queue"),
        ("attempts_per_remote_recipient", [1.2], 1.0, "attempts per remote recipient"),
        ("not_declared_metric", [1.0], 1.0, "not declared metric"),
    ],
)
def test_sweep_axes_read_the_catalogue(
    metric: str, values: list[float], scale: float, label: str
) -> None:
    assert metric_scale(metric, np.array(values)) == (scale, label)


def test_sweep_titles_read_the_catalogue() -> None:
    assert metric_title("legitimate.latency_s.p90") == catalog.title("legitimate.latency_s.p90")
    assert panel_title("queue_time_average.mta:isp:deferred") == "MTA isp"
    assert panel_title("delivery_rate") == "delivery rate"


def test_a_large_family_shows_its_largest_members_and_one_row_for_the_rest() -> None:
    from mailnet.run_summary import FAMILY_ROWS, other_rows

    deferred = {f"mta{i:02d}": (i * 7) % 25 / 10 for i in range(25)}  # 0.0 .. 2.4, shuffled
    active = {f"mta{i:02d}": 0.5 for i in range(FAMILY_ROWS)}  # not more than FAMILY_ROWS
    series = {f"mta:{m}:deferred": v for m, v in deferred.items()}
    series |= {f"mta:{m}:active": v for m, v in active.items()}
    rows = other_rows({"queue_time_average": series})
    labels = [label for label, _, _ in rows]
    shown = [m for m in deferred if f"deferred queue at MTA {m}" in " ".join(labels)]
    largest = sorted(deferred, key=deferred.get, reverse=True)[:FAMILY_ROWS]
    assert sorted(shown) == sorted(largest)
    assert sum("active queue at MTA mta" in label for label in labels) == FAMILY_ROWS
    more = [row for row in rows if "(and 15 more)" in row[0]]
    rest = max(v for m, v in deferred.items() if m not in largest)
    assert more == [
        (
            "time-average messages in the deferred queue at MTA (and 15 more)",
            f"each at most {rest:g}",
            "",
        )
    ]
    # the row for the rest follows the family's last shown member
    last_shown = max(i for i, label in enumerate(labels) if "deferred queue at MTA mta" in label)
    assert labels[last_shown + 1] == more[0][0]
