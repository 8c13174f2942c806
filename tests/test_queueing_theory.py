"""Validation against queueing theory: Erlang C (waiting) and Erlang B (blocking).

One MX with c sessions and exponential service, fed by a Poisson stream of single-recipient
messages through an MTA whose limits never bind. Each seed is one replication; the
tolerance is the Student-t 99% half-width of the mean over the replications, so it follows
from the sample size, and each test also checks that this half-width is narrow enough to
catch an error of a few percent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mailnet import simulate
from mailnet.metrics import per_host, session_waits
from mailnet.report.theory import erlang_b, erlang_c
from mailnet.scenario import Scenario

SEEDS = [11, 12, 13, 14, 15, 16, 17, 18]


def mmc_world(c: int, lam: float, mu: float, backlog, duration: float, *, lifetime="5d") -> dict:
    return {
        "simulation": {"duration": duration, "warmup": "1000s", "seed": 1},
        "providers": {
            "isp": {
                "ips": ["198.51.100.1"],
                "local_domains": ["isp.example"],
                "max_connections": 100000,
                "destination_concurrency_limit": 100000,
                "initial_destination_concurrency": 100000,
                # no scheduler feedback: every refusal would otherwise throttle the destination
                "destination_concurrency_negative_feedback": 0,
                "destination_concurrency_failed_cohort_limit": 1e12,
                "retry_params": {"maximal_queue_lifetime": lifetime},
            }
        },
        "senders": {
            "users": {"provider": "isp", "count": 1, "rate": lam, "domains": {"dest.example": 1.0}}
        },
        "domains": {"dest.example": {"mx": [{"host": "mx.dest.example"}]}},
        "servers": {
            "mx.dest.example": {
                "sessions": c,
                "backlog": backlog,
                "service_time": {"dist": "exponential", "mean": 1.0 / mu},
            }
        },
    }


def t_halfwidth(values: np.ndarray, confidence: float = 0.99) -> float:
    n = len(values)
    return stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)


@pytest.mark.slow
def test_erlang_c_wait_probability_and_mean_wait():
    c, lam, mu = 4, 2.8, 1.0
    a = lam / mu
    p_wait_theory = erlang_c(c, a)
    wq_theory = p_wait_theory / (c * mu - lam)
    scenario = Scenario.from_dict(mmc_world(c, lam, mu, "unlimited", 25000))
    p_waits, mean_waits = [], []
    for seed in SEEDS:
        result = simulate(scenario, seed=seed)
        attempts = result.attempts[result.attempts["started_at"] >= 1000]
        waits = session_waits(attempts, {"mx.dest.example": 0.05})
        assert len(waits) > 60000
        p_waits.append(float((waits > 1e-9).mean()))
        mean_waits.append(float(waits.mean()))
    p_waits, mean_waits = np.array(p_waits), np.array(mean_waits)
    assert abs(p_waits.mean() - p_wait_theory) < t_halfwidth(p_waits), (p_waits, p_wait_theory)
    assert abs(mean_waits.mean() - wq_theory) < t_halfwidth(mean_waits), (mean_waits, wq_theory)
    # and the tolerance is meaningful: an error of 8% would have been caught
    assert t_halfwidth(mean_waits) < 0.08 * wq_theory
    assert t_halfwidth(p_waits) < 0.05 * p_wait_theory


@pytest.mark.slow
def test_erlang_b_refused_fraction():
    c, lam, mu = 4, 3.0, 1.0
    blocking_theory = erlang_b(c, lam / mu)
    scenario = Scenario.from_dict(mmc_world(c, lam, mu, 0, 25000, lifetime="0s"))
    fractions = []
    for seed in SEEDS:
        result = simulate(scenario, seed=seed)
        a = result.attempts[
            (result.attempts["started_at"] >= 1000) & (result.attempts["hop"] == "isp")
        ]
        assert len(a) > 60000
        fractions.append(float((a["enhanced_code"] == "4.3.2").mean()))
        # lifetime 0: every refused message bounced after its one attempt
        m = result.messages[~result.messages["is_dsn"]]
        assert (m["attempts"] <= 1).all()
    fractions = np.array(fractions)
    assert abs(fractions.mean() - blocking_theory) < t_halfwidth(fractions), (
        fractions,
        blocking_theory,
    )
    assert t_halfwidth(fractions) < 0.03 * blocking_theory


def test_per_host_values_of_a_categorical_match_mapping_each_row():
    """The set-up time per attempt row, looked up per category, is what mapping each
    row's host text gives: NaN for a host without a value and for a missing host."""
    hosts = ["mx1", "mx2", None, "mx1", "mx3", "mx2"]
    values = {"mx1": 0.05, "mx2": 0.0}
    expected = pd.Series(hosts, dtype=object).astype(str).map(values).astype(float)
    for column in (pd.Series(hosts, dtype="category"), pd.Series(hosts, dtype=object)):
        np.testing.assert_array_equal(per_host(column, values), expected.to_numpy())
