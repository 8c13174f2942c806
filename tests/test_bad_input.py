"""Broken scenario files: one clear line naming file, key and problem; exit code 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mailnet.errors import ScenarioError
from mailnet.policies.retry import EximParams, retry_params
from mailnet.scenario import Scenario
from tests.conftest import one_mx_world

GOOD = textwrap.dedent("""
    [simulation]
    duration = "1h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 10
    rate = "20/d"
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx1.dest.example", preference = 10 } ]
    [servers."mx1.dest.example"]
    sessions = 5
""")

CASES = [
    # (replace this, with this, expected key in the message, expected words)
    ("sessions = 5", "sessions = 0", 'servers."mx1.dest.example".sessions', "greater than"),
    ("sessions = 5", "sesions = 5", 'servers."mx1.dest.example".sesions', "unknown key"),
    ("sessions = 5", 'sessions = "many"', 'servers."mx1.dest.example".sessions', "integer"),
    ('provider = "isp"', 'provider = "nope"', "senders.users.provider", "no provider named"),
    (
        'host = "mx1.dest.example"',
        'host = "mx9.dest.example"',
        'domains."dest.example".mx[0].host',
        "no [servers] entry",
    ),
    ('duration = "1h"', 'duration = "1 fortnight"', "simulation.duration", "not a duration"),
    ('rate = "20/d"', 'rate = "20 per day"', "senders.users.rate", "not a rate"),
    ('ips = ["198.51.100.1"]', 'ips = ["198.51.100.300"]', "providers.isp.ips", "IPv4"),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\nretry = "smoke-signals"',
        "providers.isp.retry",
        "smoke-signals",
    ),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\nretry_params = { maximal_queue_lifetime = "soon" }',
        "providers.isp.retry_params",
        "maximal_queue_lifetime",
    ),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\nretry = "exim"\nretry_params = { retry_rule = "F,2h,15m; Q,4d,6h" }',
        "providers.isp.retry_params",
        "Q,4d,6h",
    ),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\npool_strategy = "by-class"',
        "providers.isp",
        "pools",
    ),
    (
        "sessions = 5",
        'sessions = 5\nreceiver = "nobody"',
        'servers."mx1.dest.example".receiver',
        "no receiver named",
    ),
    (
        '"dest.example" = 1.0',
        '"elsewhere.example" = 1.0',
        'senders.users.domains."elsewhere.example"',
        "no domain named",
    ),
    ("[simulation]", "[simulation\n", "", "not valid TOML"),
]


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mailnet.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(("old", "new", "key", "words"), CASES)
def test_broken_scenarios(tmp_path, old, new, key, words):
    assert old in GOOD
    path = tmp_path / "broken.toml"
    path.write_text(GOOD.replace(old, new, 1))
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in lines[0]
    assert key in lines[0]
    assert words.lower() in lines[0].lower()
    assert not out.exists()  # nothing ran, nothing written


def test_missing_file(tmp_path):
    proc = run_cli("run", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr
    assert "not found" in proc.stderr


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        (
            'servers."mx1.dest.example".sessions=-1',
            'servers."mx1.dest.example".sessions',
            "greater",
        ),
        ("providers.isp.max_conections=3", "providers.isp.max_conections", "unknown key"),
        ("novalue", "novalue", "KEY=VALUE"),
    ],
)
def test_bad_overrides(tmp_path, override, key, words):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    proc = run_cli("run", str(path), "--set", override, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert key in proc.stderr
    assert words in proc.stderr


def test_good_file_runs_with_overrides(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    out = tmp_path / "o"
    proc = run_cli(
        "run",
        str(path),
        "--set",
        'servers."mx1.dest.example".sessions=80',
        "--set",
        "simulation.duration=30m",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "messages.parquet",
        "attempts.parquet",
        "queues.parquet",
        "summary.json",
        "scenario.toml",
        "manifest.json",
    ):
        assert (out / name).exists(), name
    resolved = (out / "scenario.toml").read_text()
    assert "sessions = 80" in resolved
    assert 'duration = "30m"' in resolved


# ------------------------------------------------------------------ retry parameters
@pytest.mark.parametrize(
    ("where", "retry", "params", "key", "words"),
    [
        (
            "provider",
            None,
            {"maximal_backoff_time": "4 hours"},
            "providers.isp.retry_params.maximal_backoff_time",
            "must be a duration like",
        ),
        (
            "provider",
            None,
            {"minimal_backoff_time": "2h"},
            "providers.isp.retry_params.maximal_backoff_time",
            "must not be below minimal_backoff_time (7200 s)",
        ),
        (
            "provider",
            "exim",
            {"queue_run_intervl": "5m"},
            "providers.isp.retry_params.queue_run_intervl",
            "unknown key (known: delay_warning, queue_run_interval, ",
        ),
        (
            "provider",
            "exim",
            {"retry_rule": "F,2h"},
            "providers.isp.retry_params.retry_rule",
            "retry rule 'F,2h': missing field",
        ),
        (
            "server",
            "sendmail",
            {"min_queue_age": -1},
            'servers."mx.dest.example".retry_params.min_queue_age',
            "got -1",
        ),
        (
            "server",
            "qmail",
            {"chanskip": 0},
            'servers."mx.dest.example".retry_params.chanskip',
            "must be greater than zero, got 0",
        ),
        (
            "server",
            "exchange",
            {"TransientFailureRetryCount": 1.5},
            'servers."mx.dest.example".retry_params.TransientFailureRetryCount',
            "must be a whole number >= 0, got 1.5",
        ),
        (
            "server",
            {"offsets": ["1h", "30m"], "lifetime": "1d"},
            {},
            'servers."mx.dest.example".retry.offsets',
            "must be positive and increasing",
        ),
        (
            "server",
            {"offsets": ["1h"], "lifetime": "1d"},
            {"repeat_last_gap": "no"},
            'servers."mx.dest.example".retry_params.repeat_last_gap',
            "must be true or false",
        ),
        ("provider", "nosuch", {}, "providers.isp.retry", "unknown retry preset 'nosuch'"),
    ],
)
def test_bad_retry_params_name_their_key(where, retry, params, key, words):
    raw = one_mx_world()
    table = raw["providers"]["isp"] if where == "provider" else raw["servers"]["mx.dest.example"]
    if retry is not None:
        table["retry"] = retry
    table["retry_params"] = params
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_dict(raw, source="world.toml")
    line = str(caught.value)
    assert line.startswith(f"world.toml: {key}: "), line
    assert words in line
    assert "\n" not in line


def test_retry_params_reach_the_policy_typed():
    raw = one_mx_world()
    raw["providers"]["isp"]["retry"] = "exim"
    # an H rule draws from the MTA's own random stream
    raw["providers"]["isp"]["retry_params"] = {"retry_rule": "H,1d,10m,2", "delay_warning": 0}
    scenario = Scenario.from_dict(raw)
    params = retry_params(scenario.providers["isp"].retry, scenario.providers["isp"].retry_params)
    assert isinstance(params, EximParams)
    assert params.retry_rule == "H,1d,10m,2"
    assert params.queue_run_interval == 1800.0
