"""The cohort: which rows it follows, how each ends, and its censoring-aware latency."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from mailnet import metric_catalog
from mailnet.cohort import (
    follow,
    outcomes,
    queue_lifetime,
    summary_blocks,
    window,
)
from mailnet.errors import ScenarioError
from mailnet.scenario import Scenario, load_scenario
from mailnet.simulate import simulate
from mailnet.units import DAY, HOUR
from tests.conftest import ONE_MX_TOML

NAN = math.nan


def rows(*spec: tuple[str, float, float, float]) -> pd.DataFrame:
    """Rows of (status, created_at, released_at, delivered_at), one recipient each."""
    status, created, released, delivered = zip(*spec, strict=True)
    n = len(spec)
    return pd.DataFrame(
        {
            "message_id": np.arange(n),
            "recipient": pd.Categorical([f"u{i}@dest.example" for i in range(n)]),
            "status": pd.Categorical(status),
            "created_at": np.array(created, dtype=float),
            "released_at": np.array(released, dtype=float),
            "delivered_at": np.array(delivered, dtype=float),
        }
    )


def test_each_row_ends_in_one_outcome() -> None:
    frame = rows(
        ("delivered", 0, 0, 5),
        ("bounced", 0, 0, NAN),
        ("bounced", 0, NAN, NAN),
        ("in_queue", 0, NAN, NAN),
        ("expired", 0, 0, NAN),
        ("in_queue", 0, 0, NAN),
    )
    assert outcomes(frame).tolist() == [
        "delivered",
        "bounced",
        "stopped_at_submission",
        "held",
        "expired",
        "in_queue",
    ]


def test_follow_by_hand() -> None:
    # created at 0 and followed to 100: delivered at 10 and 40, bounced at 20 (its last
    # attempt), refused at submission (0), queued (censored at 100); F jumps by 1/5 at
    # 10 and then by S(40-) 1/n = (2/5) (1/1) at 40 after the bounce and refusal ends
    frame = rows(
        ("delivered", 0, 0, 10),
        ("bounced", 0, 0, NAN),
        ("bounced", 0, NAN, NAN),
        ("delivered", 0, 0, 40),
        ("in_queue", 0, 0, NAN),
    )
    attempts = pd.DataFrame(
        {
            "message_id": [1, 1],
            "recipient": pd.Categorical(["u1@dest.example"] * 2),
            "ended_at": [5.0, 20.0],
        }
    )
    block = follow(frame, attempts, horizon=100.0)
    assert block["recipients"] == 5
    assert (block["delivered"], block["bounced"], block["stopped_at_submission"]) == (2, 1, 1)
    assert block["in_queue"] == 1
    assert block["queued_share"] == pytest.approx(0.2)
    assert block["delivered_share"] == pytest.approx(0.4)
    assert block["failed_share"] == pytest.approx(0.4)
    # at risk at 40: the delivered and the queued row; S(40-) = 1 - 3/5
    assert block["latency_s"] == {"p50": None, "p90": None, "p99": None}
    assert block["delivered_within"]["1m"] == pytest.approx(0.2 + 0.4 * 0.5)


def test_an_empty_group_has_no_values() -> None:
    block = follow(rows(("delivered", 0, 0, 1))[:0], None, horizon=10.0)
    assert block["recipients"] == 0
    assert block["queued_share"] is None
    assert block["latency_s"]["p50"] is None
    assert block["delivered_within"]["1h"] is None


def scenario(**simulation: object) -> Scenario:
    raw = tomllib.loads(ONE_MX_TOML)
    raw["simulation"].update(simulation)
    return Scenario.from_dict(raw)


def test_window_defaults_and_keys() -> None:
    # postfix: 5 d lifetime; a 2 h run keeps its whole post-warm-up span
    assert queue_lifetime(scenario()) == 5 * DAY
    assert window(scenario(warmup="10m").simulation, 5 * DAY) == (600.0, 2 * HOUR)
    assert window(scenario(duration="7d", warmup="1d").simulation, 5 * DAY) == (DAY, 2 * DAY)
    keyed = scenario(cohort_start="20m", cohort_length="30m").simulation
    assert window(keyed, 5 * DAY) == (1200.0, 3000.0)


def test_queue_lifetime_follows_the_retry_parameters() -> None:
    raw = tomllib.loads(ONE_MX_TOML)
    raw["providers"]["isp"]["retry_params"] = {"maximal_queue_lifetime": "1d"}
    assert queue_lifetime(Scenario.from_dict(raw)) == DAY
    raw["providers"]["isp"] = {**raw["providers"]["isp"], "retry": "qmail", "retry_params": {}}
    assert queue_lifetime(Scenario.from_dict(raw)) == 7 * DAY


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('cohort_start = "3h"', "simulation.cohort_start", "before the end of the run"),
        ('cohort_length = "3h"', "simulation.cohort_length", "must end by the end"),
        ('cohort_start = "1h"\ncohort_length = "2h"', "simulation.cohort_length", "end by"),
        ("cohort_length = 0", "simulation.cohort_length", "must be positive"),
        ("cohort_start = inf", "simulation.cohort_start", "finite"),
        ('cohort_start = "soon"', "simulation.cohort_start", "not a duration"),
    ],
)
def test_bad_cohort_keys_name_file_and_key(
    tmp_path: object, extra: str, key: str, words: str
) -> None:
    path = tmp_path / "world.toml"  # type: ignore[operator]
    path.write_text(ONE_MX_TOML.replace('duration = "2h"', f'duration = "2h"\n{extra}'))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "world.toml" in message
    assert key in message
    assert words in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def outage_run():
    """Mail to a host that is down for the last hour: the late cohort is still queued."""
    raw = tomllib.loads(ONE_MX_TOML)
    raw["simulation"].update(warmup="10m", seed=3)
    raw["servers"]["mx.dest.example"]["outages"] = [{"start": "1h", "end": "3h"}]
    return simulate(Scenario.from_dict(raw))


def test_queued_mail_is_censored_not_dropped(outage_run) -> None:
    block = outage_run.summary["legitimate_remote"]
    mail = outage_run.messages[~outage_run.messages["is_dsn"]]
    late = mail[mail["created_at"] >= 600]
    assert block["recipients"] == len(late)
    assert block["in_queue"] == int((late["status"] == "in_queue").sum()) > 0
    assert block["queued_share"] == pytest.approx(block["in_queue"] / len(late))
    # about half the cohort came during the outage: p90 cannot be known
    assert block["delivered_share"] < 0.9
    assert block["latency_s"]["p90"] is None
    within = block["delivered_within"]
    known = [within[k] for k in ("1m", "10m")]
    assert known == sorted(known)
    assert known[-1] >= block["delivered_share"]
    # a 2 h run cannot tell what share of its queued mail a day brings
    assert within["6h"] is None
    assert within["1d"] is None
    # the latency of delivered mail alone would hide the queued half
    assert outage_run.summary["latency_s"]["p90"] is not None


def test_the_cohort_rows_alone_give_the_same_blocks(outage_run) -> None:
    mail = outage_run.messages[~outage_run.messages["is_dsn"]]
    scen = outage_run.scenario
    full = summary_blocks(mail, scen, outage_run.attempts)
    start, end = full["cohort"]["start_s"], full["cohort"]["end_s"]
    only = mail[(mail["created_at"] >= start) & (mail["created_at"] < end)]
    assert summary_blocks(only, scen, outage_run.attempts) == full


def test_every_metric_states_its_time_window() -> None:
    stated = metric_catalog.window
    assert stated("legitimate_remote.latency_s.p90") == "cohort window"
    assert stated("queue_time_average.mta:isp:deferred") == "after warm-up"
    assert stated("latency_s.p90") == "whole run"
    # the time-based metrics of a cohort block all say so
    cohort = [m.key for m in metric_catalog.CATALOG if m.key.startswith("legitimate_remote.")]
    assert cohort
    assert {stated(k) for k in cohort} == {"cohort window"}
