"""Retry presets against the schedules in mail-facts.md, for a destination that always fails."""

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from mailnet.policies.retry import (
    PRESETS,
    PostfixParams,
    PostfixRetry,
    RetryParamsError,
    RetryPolicy,
    ScheduleParams,
    SendmailParams,
    attempt_offsets,
    describe_presets,
    expiry_time,
    make_retry_policy,
    presets_table,
    retry_params,
    trace_attempts,
)

M, H, D = 60.0, 3600.0, 86400.0


def mmss(*stamps):
    return [float(int(m) * 60 + int(s)) for m, s in (x.split(":") for x in stamps)]


# --------------------------------------------------------------------------- Postfix


def test_postfix_schedule_and_expiry():
    policy = make_retry_policy("postfix")
    assert policy.queue_run_interval == 300
    assert policy.scan_slack == 1.0
    # 0, 5, 10, 20, 40, 80, 150 min, then every 70 min (mail-facts.md §1).
    assert attempt_offsets(policy, n=10) == [
        0,
        300,
        600,
        1200,
        2400,
        4800,
        9000,
        13200,
        17400,
        21600,
    ]
    trace = trace_attempts(policy)
    assert all(b - a == 4200 for a, b in zip(trace.attempts[6:], trace.attempts[7:], strict=False))
    # Expires at the first failed attempt at or after 5 d: 9000 + 101 * 4200 s.
    assert trace.expired_at == trace.attempts[-1] == 433200
    assert trace.attempts[-2] < 5 * D
    assert len(trace.attempts) == 108


def test_postfix_scaled_down_like_the_real_observation():
    # The timers of the Postfix 3.7.11 measurement in mail-facts.md §1.
    policy = make_retry_policy(
        "postfix",
        {
            "queue_run_delay": "10s",
            "minimal_backoff_time": 10,
            "maximal_backoff_time": "80s",
            "maximal_queue_lifetime": "10m",
        },
    )
    trace = trace_attempts(policy)
    assert trace.attempts == [0, 10, 20, 40, 80, 160, 240, 320, 400, 480, 560, 640]
    assert trace.expired_at == 640


def test_postfix_whole_seconds_and_scan_slack():
    policy = make_retry_policy("postfix")
    # age = floor(now) - floor(arrival), eligible = floor(now) + clamp(age).
    assert (
        policy.after_failure(now=300.9, arrival=0.7, first_failure=0.7, attempts=2, destination="d")
        == 600.0
    )
    # Failures handled a second after their attempt: the first is due at 301 and taken
    # by the 300 scan (slack 1); the second is due at 301 + 301 = 602, after 600 + 1.
    assert attempt_offsets(policy, n=4, failure_delay=1.0) == [0, 300, 900, 2100]
    strict = make_retry_policy("postfix")
    strict.scan_slack = 0.0
    assert attempt_offsets(strict, n=2, failure_delay=1.0) == [0, 600]


def test_postfix_lifetime_zero_tries_once():
    policy = make_retry_policy("postfix", {"maximal_queue_lifetime": 0})
    assert attempt_offsets(policy) == [0.0]
    assert expiry_time(policy) == 0.0


def test_postfix_bounce_lifetime():
    policy = make_retry_policy("postfix", {"bounce_queue_lifetime": "1d"})
    kwargs = {"now": D, "arrival": 0.0, "first_failure": 0.0, "attempts": 20, "destination": "d"}
    assert policy.after_failure(**kwargs, is_bounce=True) is None
    assert policy.after_failure(**kwargs) == D + 4000


# --------------------------------------------------------------------------- Exim

# Hours after the first failure (mail-facts.md §2): 15 min steps to 2 h, G 1 h x 1.5 to
# 16 h, then 6 h steps; the failure after the 4 d cutoff (~100.8 h) bounces.
EXIM_HOURS = (
    [k / 4 for k in range(9)]
    + [3, 4.5, 6.75, 10.125, 15.1875, 22.78125]
    + [22.78125 + 6 * k for k in range(1, 14)]
)


def test_exim_default_schedule_continuous_runner():
    policy = make_retry_policy("exim", {"queue_run_interval": 0})
    assert policy.queue_run_interval is None
    # Each failure handled a second after its attempt, so times drift by 1 s per attempt.
    trace = trace_attempts(policy, failure_delay=1.0)
    assert len(trace.attempts) == len(EXIM_HOURS) == 28
    for got, hours in zip(trace.attempts, EXIM_HOURS, strict=True):
        assert abs(got - hours * H) <= 30
    assert abs(trace.expired_at - 100.78 * H) < 60


def test_exim_cutoff_is_inclusive():
    # A failure in the very second of the 2 h cutoff still uses F,2h,15m.
    policy = make_retry_policy("exim", {"queue_run_interval": 0})
    assert attempt_offsets(policy, n=11)[8:] == [2 * H, 2.25 * H, 3.25 * H]


def test_exim_with_q30m_runner():
    policy = make_retry_policy("exim")
    assert policy.queue_run_interval == 30 * M
    assert policy.delay_warning == 24 * H
    trace = trace_attempts(policy)
    # 15 min steps collapse to the 30 min runs. At 9000 s lastgap = min(900 asked, 1800
    # actual); at 59400 s min(18225, 19800) keeps runner lateness out of the growth.
    assert trace.attempts[:12] == [
        0,
        1800,
        3600,
        5400,
        7200,
        9000,
        12600,
        18000,
        27000,
        39600,
        59400,
        81000,
    ]
    assert trace.attempts[11:] == [81000 + 6 * H * k for k in range(14)]
    assert trace.expired_at == 361800


def test_exim_retry_data_are_per_destination():
    policy = make_retry_policy("exim", {"queue_run_interval": 0})
    assert (
        policy.after_failure(now=0, arrival=0, first_failure=0, attempts=1, destination="mx.a")
        == 900
    )
    # A new message to a host failing for 20 h is already on the F,4d,6h rule ...
    assert (
        policy.after_failure(
            now=20 * H, arrival=20 * H, first_failure=20 * H, attempts=1, destination="mx.a"
        )
        == 26 * H
    )
    # ... another host starts afresh ...
    assert (
        policy.after_failure(
            now=20 * H, arrival=20 * H, first_failure=20 * H, attempts=1, destination="mx.b"
        )
        == 20 * H + 900
    )
    # ... and after 4 d of failures a new message fails at its first failure.
    assert (
        policy.after_failure(
            now=97 * H, arrival=97 * H, first_failure=97 * H, attempts=1, destination="mx.a"
        )
        is None
    )
    # A success forgets the host.
    policy.after_success(now=98 * H, destination="mx.a")
    assert (
        policy.after_failure(
            now=98 * H, arrival=98 * H, first_failure=98 * H, attempts=1, destination="mx.a"
        )
        == 98 * H + 900
    )


def test_exim_message_age_counts_when_larger():
    policy = make_retry_policy("exim")
    # The host's data are fresh but the message is 5 d old: past the 4 d cutoff.
    assert (
        policy.after_failure(now=5 * D, arrival=0, first_failure=0, attempts=30, destination="mx")
        is None
    )


def test_exim_old_retry_data_expire():
    policy = make_retry_policy("exim", {"retry_data_expire": "1d"})
    policy.after_failure(now=0, arrival=0, first_failure=0, attempts=1, destination="mx")
    assert (
        policy.after_failure(
            now=2 * D, arrival=2 * D, first_failure=2 * D, attempts=1, destination="mx"
        )
        == 2 * D + 900
    )


def test_exim_trace_leaves_policy_state_alone():
    policy = make_retry_policy("exim")
    attempt_offsets(policy, n=5, failure_delay=1.0)
    assert (
        policy.after_failure(
            now=10 * H, arrival=10 * H, first_failure=10 * H, attempts=1, destination="always-fails"
        )
        == 10 * H + 900
    )


def test_exim_rule_override_and_h_rule():
    policy = make_retry_policy("exim", {"retry_rule": "F,1h,10m", "queue_run_interval": 0})
    assert policy.lifetime == H
    # At 1 h the failing interval is still within the cutoff: one more try, then bounce.
    assert attempt_offsets(policy, n=10) == [600.0 * k for k in range(8)]
    with pytest.raises(ValueError, match="H rule needs a random generator"):
        make_retry_policy("exim", {"retry_rule": "H,1d,10m,2"})
    policy = make_retry_policy(
        "exim", {"retry_rule": "H,1d,10m,2", "queue_run_interval": 0}, rng=np.random.default_rng(1)
    )
    gaps = np.diff(attempt_offsets(policy, n=8))
    assert gaps[0] == 600
    assert all(g >= 600 for g in gaps)
    assert gaps[-1] > 1200


# --------------------------------------------------------------------------- qmail, Sendmail


def test_qmail_squares_and_final_try():
    policy = make_retry_policy("qmail")
    assert policy.queue_run_interval is None
    squares = [float((20 * k) ** 2) for k in range(10)]
    assert attempt_offsets(policy) == squares
    # Slow failures (qmail's 60 s connect timeout) do not shift the schedule.
    assert attempt_offsets(policy, failure_delay=60.0) == squares
    assert expiry_time(policy, failure_delay=60.0) == 608460
    trace = trace_attempts(policy)
    # 39 attempts within the 7 d queuelifetime (last at 6.7 d), then one final try.
    assert len(trace.attempts) == 40
    assert trace.attempts[-2:] == [760.0**2, 780.0**2]
    assert trace.expired_at == 608400


def test_sendmail_min_queue_age():
    """Stock MinQueueAge 0 (mail-facts.md §3): every -q30m run retries, however long the
    failure took. With a configured 30 min the last-try stamp is taken after the failure:
    one second late misses the next run."""
    policy = make_retry_policy("sendmail")
    assert policy.queue_run_interval == 1800
    assert policy.delay_warning == 4 * H
    assert policy.params.MinQueueAge == 0
    assert attempt_offsets(policy, n=5) == [0, 1800, 3600, 5400, 7200]
    assert attempt_offsets(policy, n=5, failure_delay=127.0) == [0, 1800, 3600, 5400, 7200]
    assert expiry_time(policy) == 5 * D
    configured = make_retry_policy("sendmail", {"MinQueueAge": "30m"})
    assert attempt_offsets(configured, n=5) == [0, 1800, 3600, 5400, 7200]
    assert attempt_offsets(configured, n=5, failure_delay=1.0) == [0, 3600, 7200, 10800, 14400]


def test_sendmail_aliases_and_dotted_names():
    dotted = make_retry_policy("sendmail", {"Timeout.queuereturn": "2d", "MinQueueAge": "1h"})
    plain = make_retry_policy("sendmail", {"timeout_queuereturn": "2d", "min_queue_age": "1h"})
    assert dotted.params == plain.params
    assert dotted.lifetime == 2 * D
    assert attempt_offsets(dotted, n=3) == [0, 3600, 7200]


# --------------------------------------------------------------------------- Exchange, RFC


def test_exchange_quick_retries_then_message_retry_interval():
    policy = make_retry_policy("exchange")
    assert policy.delay_warning == 4 * H
    assert policy.lifetime == 2 * D
    assert attempt_offsets(policy, n=10) == [k * 5 * M for k in range(7)] + [45 * M, 60 * M, 75 * M]
    assert expiry_time(policy) == 2 * D


def test_exchange_online_expires_after_a_day():
    policy = make_retry_policy("exchange-online")
    assert attempt_offsets(policy, n=6) == [0, 15 * M, 45 * M, 105 * M, 165 * M, 225 * M]
    assert D <= expiry_time(policy) < D + H


def test_rfc5321_guidance():
    policy = make_retry_policy("rfc5321")
    offsets = attempt_offsets(policy, n=1000)
    assert offsets[:4] == [0, 30 * M, 2.5 * H, 4.5 * H]
    assert sum(1 for t in offsets if t < H) == 2
    assert min(b - a for a, b in itertools.pairwise(offsets)) >= 30 * M
    assert 5 * D <= expiry_time(policy) < 5 * D + 2 * H


# --------------------------------------------------------------------------- webmail


@pytest.mark.parametrize(
    ("name", "stamps"),
    [
        ("gmail", ["6:02", "29:02", "56:36", "98:44", "162:03", "229:44", "309:05", "434:46"]),
        ("yahoo", ["2:07", "5:39", "12:58", "27:16", "55:13", "109:35", "216:47", "430:36"]),
        ("hotmail", ["1:01", "2:03", "3:04", "5:06", "8:07", "12:08", "16:10"]),
        (
            "gmx",
            ["5:01", "12:33", "23:50", "40:46", "66:09", "104:14", "161:22", "247:04", "375:36"],
        ),
        ("aol", ["5:32", "11:32", "21:32", "31:32"]),
    ],
)
def test_webmail_measured_offsets(name, stamps):
    policy = make_retry_policy(name)
    assert policy.queue_run_interval is None
    expected = [0.0, *mmss(*stamps)]
    assert attempt_offsets(policy, n=len(expected)) == expected
    # Anchored on the first attempt, so slow failures do not shift the schedule.
    assert attempt_offsets(policy, n=len(expected), failure_delay=20.0) == expected
    assert policy.changes_source_ip == (name == "gmail")


def test_webmail_after_the_measured_list():
    gmail = attempt_offsets(make_retry_policy("gmail"), n=11)
    assert gmail[9] - gmail[8] == gmail[10] - gmail[9] == gmail[8] - gmail[7]
    hotmail = attempt_offsets(make_retry_policy("hotmail"), n=100)
    assert all(b - a == 4 * M for a, b in itertools.pairwise(hotmail[7:]))
    # The 94th attempt is the first after the 6 h greylist of the measurement.
    assert hotmail[92] < 6 * H <= hotmail[93] == mmss("360:10")[0]
    aol = trace_attempts(make_retry_policy("aol"))
    assert len(aol.attempts) == 5
    assert aol.expired_at == mmss("31:32")[0]
    assert 5 * D <= expiry_time(make_retry_policy("yahoo")) < 5 * D + 4 * H


def test_custom_offsets():
    policy = make_retry_policy({"offsets": ["5m", "30m", "2h"], "lifetime": "2d"})
    assert attempt_offsets(policy, n=6) == [0, 300, 1800, 7200, 12600, 18000]
    trace = trace_attempts(policy)
    assert trace.attempts[-2] < 2 * D <= trace.expired_at
    once = make_retry_policy({"offsets": [600], "lifetime": 3600, "repeat_last_gap": False})
    assert trace_attempts(once) == trace_attempts(once, n=10)
    assert trace_attempts(once).attempts == [0, 600]


def test_horizon_stops_the_trace():
    assert attempt_offsets(make_retry_policy("postfix"), n=100, horizon=2400) == [
        0,
        300,
        600,
        1200,
        2400,
    ]


# --------------------------------------------------------------------------- factory


def test_param_overrides_and_preset_mapping():
    policy = make_retry_policy(
        "postfix", {"maximal_backoff_time": "1h", "queue_run_delay": 60, "delay_warning_time": "4h"}
    )
    assert policy.params["maximal_backoff_time"] == 3600.0
    assert policy.queue_run_interval == 60
    assert policy.delay_warning == 4 * H
    same = make_retry_policy(
        {"preset": "postfix", "maximal_backoff_time": 3600},
        {"queue_run_delay": "1m", "delay_warning_time": 14400},
    )
    assert same.params == policy.params
    assert make_retry_policy("Exchange_Online").name == "exchange-online"
    assert (
        make_retry_policy(
            "postfix", {"minimal_backoff_time": "500ms", "maximal_backoff_time": "1h30m"}
        ).params["minimal_backoff_time"]
        == 0.5
    )


def test_unknown_parameter_message():
    with pytest.raises(ValueError, match=r"^unknown retry parameter") as caught:
        make_retry_policy("postfix", {"foo": 1})
    message = str(caught.value)
    assert message.startswith("unknown retry parameter 'foo' for preset 'postfix' (known: ")
    assert "maximal_backoff_time" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("spec", "params", "needle"),
    [
        ("nosuch", None, "unknown retry preset 'nosuch' (known: aol, "),
        ("postfix", {"maximal_queue_lifetime": "5 days"}, "'maximal_queue_lifetime'"),
        ("postfix", {"maximal_queue_lifetime": -1}, "'maximal_queue_lifetime'"),
        ("postfix", {"queue_run_delay": 0}, "'queue_run_delay' of preset 'postfix' must be"),
        ("postfix", {"maximal_backoff_time": 10}, "'maximal_backoff_time'"),
        ("exim", {"retry_rule": "F,2h"}, "retry rule 'F,2h': missing field"),
        ("exim", {"retry_interval_max": "2d"}, "may not exceed 24h"),
        ("exchange", {"TransientFailureRetryCount": 1.5}, "'TransientFailureRetryCount'"),
        ("gmail", {"offsets": ["10m", "5m"]}, "increasing"),
        ({"offsets": ["5m"], "lifetim": "1d"}, None, "unknown retry parameter 'lifetim'"),
        ({"lifetime": "1d"}, None, "needs 'preset' or 'offsets'"),
    ],
)
def test_bad_specs_raise_one_line(spec, params, needle):
    with pytest.raises(ValueError, match="retry") as caught:
        make_retry_policy(spec, params)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_preset_satisfies_the_protocol_and_is_described():
    rows = {row["name"]: row for row in describe_presets()}
    assert set(rows) == set(PRESETS)
    for name, row in rows.items():
        policy = make_retry_policy(name)
        assert isinstance(policy, RetryPolicy)
        assert row["first_attempts"] == attempt_offsets(policy)
        assert len(row["first_attempts"]) == (5 if name == "aol" else 10)
        assert row["expires_at"] is not None
        assert row["lifetime"] > 0
    assert rows["postfix"]["delay_warning"] is None
    assert rows["exim"]["params"]["retry_rule"] == "F,2h,15m; G,16h,1h,1.5; F,4d,6h"


def test_presets_table_shows_each_client_beside_the_schedule():
    rows = {row[0]: row for row in presets_table()}
    assert rows["postfix"][4].startswith("postfix smtp: connect 30s; hosts 5, sessions 2")
    assert "connect 5m; hosts 5" in rows["exim"][4]
    assert "per-host retry records" in rows["exim"][4]
    assert "connect 1m" in rows["qmail"][4]
    assert "tcpto: skip address 64m after 2 timeouts" in rows["qmail"][4]
    assert "host status cache 30m" in rows["sendmail"][4]
    assert "20 per destination" in rows["exchange"][4]
    assert "next-hop queue in retry 5m x6, then 10m" in rows["exchange"][4]
    # the client's own parameters are the preset's, overridable like the schedule's
    client = make_retry_policy("qmail", {"timeoutconnect": "20s", "tcpto_hold": "2h"}).client()
    assert (client.connect_timeout, client.memory_time) == (20.0, 7200.0)
    client = make_retry_policy("exim", {"hosts_max_try": 2}).client()
    assert client.mx_address_limit == 2
    with pytest.raises(RetryParamsError, match="hosts_max_try"):
        make_retry_policy("exim", {"hosts_max_try": 0})
    with pytest.raises(RetryParamsError, match=r"Timeout\.hoststatus"):
        make_retry_policy("sendmail", {"Timeout.hoststatus": "-5m"})


# --------------------------------------------------------------------------- typed parameters


def test_params_are_typed_under_the_mta_names():
    policy = make_retry_policy("sendmail", {"min_queue_age": "1h", "Timeout.queuewarn": "2h"})
    assert isinstance(policy.params, SendmailParams)
    assert policy.params.MinQueueAge == 3600.0
    assert policy.params.timeout_queuewarn == 2 * H
    assert policy.params["Timeout.queuewarn"] == 2 * H
    assert policy.params.get("no_such_parameter", 1) == 1
    assert list(policy.params.by_mta_name()) == [
        "Timeout.queuereturn",
        "Timeout.queuewarn",
        "MinQueueAge",
        "queue_interval",
        "Timeout.connect",
        "Timeout.hoststatus",
    ]
    with pytest.raises(ValidationError):
        policy.params.MinQueueAge = 60.0  # frozen once validated
    gmail = retry_params("gmail")
    assert isinstance(gmail, ScheduleParams)
    assert gmail.offsets[0] == 362.0
    assert gmail.changes_source_ip is True
    assert PostfixRetry(PostfixParams(queue_run_delay=60)).queue_run_interval == 60.0


def test_params_error_names_the_parameter():
    with pytest.raises(RetryParamsError) as caught:
        make_retry_policy("postfix", {"minimal_backoff_time": "2h"})
    error = caught.value
    assert (error.preset, error.key) == ("postfix", "maximal_backoff_time")
    assert error.short == "must not be below minimal_backoff_time (7200 s), got 4000 s"
    assert str(error) == f"retry parameter 'maximal_backoff_time' of preset 'postfix' {error.short}"
    with pytest.raises(RetryParamsError) as caught:
        make_retry_policy("qmail", {"chanskip": 20, "queue_lifetime": "1d"})
    assert caught.value.unknown
    assert (
        caught.value.short
        == "unknown key (known: chanskip, concurrencyremote, queuelifetime, tcpto_hold, timeoutconnect)"
    )
