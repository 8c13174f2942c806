"""Broken scenario files: one clear line naming file, key and problem; exit code 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mailnet.errors import ScenarioError
from mailnet.policies.retry import EximParams, retry_params
from mailnet.scenario import Scenario, load_scenario
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
    # pydantic alone would read true as 1: a silent wrong answer
    ("count = 10", "count = true", "senders.users.count", "expected a number, not true"),
    ("sessions = 5", "sessions = false", 'servers."mx1.dest.example".sessions', "not false"),
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
    (
        "sessions = 5",
        'role = "relay"\nrelay_to = "gw.dest.example"\n'
        '[servers."gw.dest.example"]\nrole = "relay"\nrelay_to = "mx1.dest.example"',
        'servers."gw.dest.example".relay_to',
        "mail for 'dest.example' loops: mx1.dest.example -> gw.dest.example -> mx1.dest.example",
    ),
    ('duration = "1h"', 'duration = "1h"\nseed = -1', "simulation.seed", "greater than or equal"),
    ("count = 10", "count = 1" + "0" * 300, "senders.users.count", "integer out of range"),
    ("count = 10", "count = 10\nrecipients = inf", "senders.users.recipients", "finite number"),
    (
        '"dest.example" = 1.0',
        '"dest.example" = nan',
        'senders.users.domains."dest.example"',
        "finite number",
    ),
    (
        'duration = "1h"',
        'duration = "1h"\nsample_interval = 0',
        "simulation.sample_interval",
        "must be positive",
    ),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\nrate_limit = { rate = "0/h" }',
        "providers.isp.rate_limit.rate",
        "must be positive",
    ),
    (
        'local_domains = ["isp.example"]',
        'local_domains = ["isp.example"]\nsuspension = { window = "0s" }',
        "providers.isp.suspension.window",
        "must be positive",
    ),
    (
        "sessions = 5",
        'sessions = 5\nreceiver = "r"\n[receivers.r]\nreputation = { half_life = "0s" }',
        "receivers.r.reputation.half_life",
        "must be positive",
    ),
    (
        "sessions = 5",
        'sessions = 5\nrecipient_rate_limit = "0/d"',
        'servers."mx1.dest.example".recipient_rate_limit',
        "must be positive",
    ),
    (
        "sessions = 5",
        "sessions = 5\nhopcount_limit = 1",
        'servers."mx1.dest.example".hopcount_limit',
        "greater than or equal to 2",
    ),
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
        (
            'servers."mx.dest.exmaple".sessions=5',
            '--set: servers."mx.dest.exmaple".sessions',
            "no server named 'mx.dest.exmaple' in the scenario; to add one, give its whole table",
        ),
        (
            "receivers.strict.greylisting.delay=1m",
            "--set: receivers.strict.greylisting.delay",
            "no receiver named 'strict'",
        ),
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


def test_negative_seed_option_is_refused(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    proc = run_cli("run", str(path), "--seed", "-5", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "mailnet: error: --seed: a seed is a whole number from 0 to 9223372036854775807, got -5"
    )
    assert not (tmp_path / "o").exists()


def test_overrides_may_add_an_entity_with_its_whole_table_or_set_an_implicit_one(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    out = tmp_path / "o"
    proc = run_cli(
        "run",
        str(path),
        "--set",
        'servers."mx2.dest.example"={ sessions = 3 }',
        "--set",
        'servers."mx2.dest.example".backlog=7',
        "--set",
        'servers."mx.isp.example".sessions=9',
        "--set",
        "simulation.duration=10m",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    resolved = load_scenario(out / "scenario.toml")
    assert resolved.servers["mx2.dest.example"].backlog == 7
    assert resolved.servers["mx.isp.example"].sessions == 9


TRACE_GOOD = "at,sender,recipients\n10s,0,a@dest.example\n1m,3,b@DEST.Example;c@dest.example\n"

TRACES = [
    # (trace text, expected words after "row N: " or the file name)
    ("at,sender,recipients\n10s,0,\n", "row 2: no recipients"),
    ("at,sender,recipients\n10s,0,a@dest.example,extra\n", "row 2: 4 fields, expected 3"),
    ("at,sender,recipients\n10s,0\n", "row 2: 2 fields, expected 3"),
    ("at,sender,recipients\n10s,0,alice\n", "row 2: not a mail address: 'alice'"),
    (
        "at,sender,recipients\n10s,0,a@nowhere.example\n",
        "row 2: no domain named 'nowhere.example' in [domains]",
    ),
    ("at,sender,recipients\nsoon,0,a@dest.example\n", "row 2: at: not a duration"),
    ("at,sender,recipients\n10s,10,a@dest.example\n", "row 2: sender '10' is not a client index"),
    ("when,who,whom\n10s,0,a@dest.example\n", "the header must be at,sender,recipients"),
]


def _trace_scenario(tmp_path, trace: str):
    (tmp_path / "trace.csv").write_text(trace)
    path = tmp_path / "traced.toml"
    path.write_text(
        GOOD.replace('rate = "20/d"', 'trace = "trace.csv"').replace(
            'domains = { "dest.example" = 1.0 }\n', ""
        )
    )
    return path


@pytest.mark.parametrize(("trace", "words"), TRACES)
def test_bad_traces_are_refused_like_explicit_messages(tmp_path, trace, words):
    path = _trace_scenario(tmp_path, trace)
    proc = run_cli("run", str(path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"mailnet: error: {path}: senders.users.trace: "), lines[0]
    assert words in lines[0]
    assert not (tmp_path / "o").exists()


def test_good_trace_matches_domains_without_regard_to_case(tmp_path):
    from mailnet import simulate

    path = _trace_scenario(tmp_path, TRACE_GOOD)
    result = simulate(load_scenario(path), base_dir=tmp_path)
    m = result.messages
    assert sorted(m["recipient"]) == ["a@dest.example", "b@dest.example", "c@dest.example"]
    assert (m["status"] == "delivered").all()  # routed to dest.example's MX
    assert sorted(m["sender"].unique()) == ["users0@isp.example", "users3@isp.example"]


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
            "unknown key (known: connect_timeout, delay_warning, hosts_max_try, queue_run_interval, ",
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


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("senders.users.count=1000000000", "senders.users.count", "at most 10,000,000"),
        ("senders.users.recipients=1e9", "senders.users.recipients", "at most 1,000, not 1e+09"),
        (
            'senders.users.campaigns={ every = "1h", size = 1000000000 }',
            "senders.users.campaigns.size",
            "at most 10,000,000",
        ),
        (
            'servers."mx1.dest.example".backlog=1000000000000',
            'servers."mx1.dest.example".backlog',
            "at most 1,000,000,000",
        ),
        ("providers.isp.max_connections=10000000", "providers.isp.max_connections", "at most"),
        ("simulation.seed=-1", "simulation.seed", "greater than or equal to 0"),
        ("simulation.sample_interval=0", "simulation.sample_interval", "must be positive"),
        ("senders.users.recipients=inf", "senders.users.recipients", "finite"),
        ("senders.users.rate=nan/s", "senders.users.rate", ""),
        ('domains."dest.example".weight=1', 'domains."dest.example".weight', "unknown key"),
    ],
)
def test_field_ceilings_and_ranges(tmp_path, override, key, words):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=[override])
    assert info.value.key == key
    assert words in info.value.problem


def test_long_names_and_deep_nesting_are_refused_in_short_lines(tmp_path):
    path = tmp_path / "long.toml"
    name = "a" * 100_000
    path.write_text(GOOD.replace("[senders.users]", f"[senders.{name}]"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problem == "name longer than 253 characters"
    assert len(str(info.value)) < 2 * 300 + len(str(path))
    path.write_text(GOOD + "[" + ".".join(["x"] * 5000) + "]\ny = 1\n")
    with pytest.raises(ScenarioError, match="nested more than 32 tables or lists deep"):
        load_scenario(path)
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ScenarioError, match="nested too deeply"):
        load_scenario(path)
    path.write_text(GOOD)
    with pytest.raises(ScenarioError, match="unknown key"):
        load_scenario(path, overrides=["simulation.x=" + "[" * 5000 + "]" * 5000])
