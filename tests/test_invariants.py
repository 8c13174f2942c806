"""Conservation and determinism over a small but complete world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mailnet import load_scenario, simulate
from mailnet.records import STATUSES

BASELINE = "experiments/scenarios/baseline.toml"
SHORT = ["simulation.duration=8h", "simulation.warmup=1h"]


@pytest.fixture(scope="module")
def run():
    return simulate(load_scenario(BASELINE, overrides=SHORT), seed=3)


def test_every_row_has_exactly_one_status(run):
    m = run.messages
    assert m["status"].notna().all()
    assert set(m["status"].unique()) <= set(STATUSES)
    assert not m.duplicated(["message_id", "recipient"]).any()
    counts = run.summary["status"]
    assert sum(counts.values()) == run.summary["recipients"] == int((~m["is_dsn"]).sum())


def test_final_fields_match_status(run):
    m = run.messages
    delivered = m["status"] == "delivered"
    assert m.loc[delivered, "delivered_at"].notna().all()
    assert m.loc[~delivered, "delivered_at"].isna().all()
    assert (m.loc[delivered, "delivered_at"] >= m.loc[delivered, "created_at"]).all()
    retrieved = m["retrieved_at"].notna()
    assert (delivered | ~retrieved).all()
    assert (m.loc[retrieved, "retrieved_at"] >= m.loc[retrieved, "delivered_at"]).all()
    bounced = m["status"].isin(["bounced", "expired", "dropped"])
    assert (m.loc[bounced, "final_code"] >= 400).all()
    # only DSNs are dropped, and DSNs are never bounced or expired
    assert (m.loc[m["status"] == "dropped", "is_dsn"]).all()
    assert not m.loc[m["is_dsn"], "status"].isin(["bounced", "expired"]).any()


def test_attempt_counts_add_up(run):
    assert int(run.messages["attempts"].sum()) == len(run.attempts)
    per_row = run.attempts.groupby(["message_id", "recipient"], observed=True).size()
    m = run.messages.set_index(["message_id", "recipient"])
    joined = m.loc[per_row.index, "attempts"]
    assert (joined.to_numpy() == per_row.to_numpy()).all()


def test_in_queue_rows_are_not_final_and_have_no_final_attempt(run):
    m = run.messages
    a = run.attempts
    sent = a[a["outcome"] == "sent"]
    waiting = m[m["status"] == "in_queue"]
    # a row still queued has had no attempt that ended its journey: either no successful
    # hand-off, or a hand-off to a backup MX that is still relaying it
    keys = set(zip(waiting["message_id"], waiting["recipient"], strict=True))
    handed = sent[[k in keys for k in zip(sent["message_id"], sent["recipient"], strict=True)]]
    relays = {"backup.bigmail.example", "backup.corp.example"}
    assert set(handed["mx_host"].astype(str)) <= relays


def test_one_dsn_per_bounce_event(run):
    m = run.messages
    failed = m[(~m["is_dsn"]) & m["status"].isin(["bounced", "expired"])]
    assert run.summary["dsn"]["messages"] >= failed["message_id"].nunique() > 0
    dsn = m[m["is_dsn"]]
    assert (dsn["sender"] == "").all()
    assert set(dsn["recipient"]) <= set(m["sender"])


def test_queue_levels_never_negative(run):
    assert (run.queues["value"] >= 0).all()
    assert (np.diff(run.queues["time"].to_numpy()) >= 0).all()


def test_queue_levels_are_recorded_where_they_change(run):
    """Each series of the queues table is a step function with a row where its level
    changed: a queue scan that releases nothing, or a session change that leaves the
    backlog as it was, adds no row. Every MTA's deferred queue and every server's
    sessions and backlog still have a series."""
    q = run.queues
    series = q.groupby(["kind", "entity", "metric"], observed=True, sort=False)["value"]
    repeated = series.diff() == 0  # NaN, not 0, at each series' first row
    assert not repeated.any(), q[repeated].head()
    names = set(q.groupby(["kind", "metric"], observed=True).size().index)
    assert {("mta", "deferred"), ("server", "sessions"), ("server", "backlog")} <= names


def test_same_seed_same_tables_other_seed_differs():
    scenario = load_scenario(BASELINE, overrides=["simulation.duration=3h", "simulation.warmup=0s"])
    a = simulate(scenario, seed=5)
    b = simulate(scenario, seed=5)
    c = simulate(scenario, seed=6)
    for name in ("messages", "attempts", "queues"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.summary == b.summary
    assert not a.messages["created_at"].equals(c.messages["created_at"])


def test_unrelated_parameter_does_not_shift_arrivals():
    """Named streams: changing a server's capacity leaves every sender's draws alone."""
    base = load_scenario(BASELINE, overrides=["simulation.duration=2h", "simulation.warmup=0s"])
    other = load_scenario(
        BASELINE,
        overrides=[
            "simulation.duration=2h",
            "simulation.warmup=0s",
            'servers."mx.corp.example".sessions=3',
        ],
    )
    a = simulate(base, seed=9).messages
    b = simulate(other, seed=9).messages
    key = ["message_id", "recipient", "sender", "created_at"]
    pd.testing.assert_frame_equal(
        a.loc[~a["is_dsn"], key].reset_index(drop=True),
        b.loc[~b["is_dsn"], key].reset_index(drop=True),
    )
