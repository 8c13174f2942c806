"""Hostile input through the real command line: always exit code 2 with one line naming
the file (or option), the key path or row, and the problem; never a traceback, never a
hang.

The corpus in ``tests/fuzz/`` keeps each hostile file as a fixture (scenario files,
experiment files, trace CSVs, run directories); ``CORPUS`` lists the command for each
and a fragment its message must contain. Hypothesis then mutates valid inputs (scenario
files, ``--set`` values, experiment files, trace CSVs) the same way. Every command runs
in this process (``CliRunner``) under a ``CASE_TIMEOUT_S`` alarm, so a hang fails the test
instead of stalling the suite. Runs that pass validation are stopped by
``--max-memory 1KB`` before they simulate, so every generated case ends in one line.
"""

from __future__ import annotations

import os
import signal
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mailnet.cli import app

FUZZ = Path(__file__).parent / "fuzz"
CASE_TIMEOUT_S = 20
"""A bound, not a measurement: a case that takes this long is hanging."""

SCENARIO_CASES = {
    # file under fuzz/scenario/: fragment of the message after "FILE: "
    "a_directory.toml": "is a directory, not a TOML file",
    "bad_ip.toml": "providers.isp.ips: not an IPv4 address",
    "binary.toml": "not a UTF-8 text file",
    "blocklist_window_text.toml": "receivers.r.blocklists",
    "campaign_1e9.toml": "senders.users.campaigns.size: at most 10,000,000",
    "campaign_every_1ms.toml": "too large to run: about 3.6e+09 messages",
    "count_1e9.toml": "senders.users.count: at most 10,000,000, not 1,000,000,000",
    "deep_array.toml": "arrays or tables nested too deeply",
    "deep_tables.toml": "nested more than 32 tables or lists deep",
    "duration_1e8d.toml": "too large to run: about 2e+10 messages",
    "duration_zero.toml": "simulation.duration: duration must be positive",
    "empty.toml": "providers: required key is missing",
    "half_life_zero.toml": "receivers.r.reputation.half_life: must be positive",
    "huge_integer.toml": "senders.users.count: integer out of range",
    "long_name.toml": "name longer than 253 characters",
    "long_server_name.toml": "name longer than 253 characters",
    "mx_missing_server.toml": "mx[0].host: MX host 'mx9.dest.example' has no [servers] entry",
    "non_utf8.toml": "not a UTF-8 text file",
    "not_toml.toml": "not valid TOML",
    "providers_string.toml": "simulation.providers: unknown key",
    "queue_run_1ms.toml": "to run: about 200,000 messages",  # too large or too long
    "rate_1e12.toml": "too large to run: about 3.6e+16 messages",
    "rate_huge.toml": "senders.users.rate: rate must be finite",
    "rate_limit_zero.toml": "providers.isp.rate_limit.rate: must be positive",
    "recipients_1e9.toml": "senders.users.recipients: at most 1,000",
    "recipients_inf.toml": "senders.users.recipients: Input should be a finite number",
    "relay_cycle.toml": "loops: mx1.dest.example -> relay.example -> mx1.dest.example",
    "relay_self.toml": "a relay cannot relay to itself",
    "sample_interval_1ms.toml": "to run: about 200,000 messages",  # too large or too long
    "sample_interval_zero.toml": "simulation.sample_interval: must be positive",
    "seed_float.toml": "simulation.seed: Input should be a valid integer",
    "seed_negative.toml": "simulation.seed: Input should be greater than or equal to 0",
    "sessions_1e12.toml": 'servers."mx1.dest.example".sessions: at most 1,000,000',
    "sessions_zero.toml": 'servers."mx1.dest.example".sessions: Input should be greater',
    "suspension_window_zero.toml": "providers.isp.suspension.window: must be positive",
    "unknown_section.toml": "bogus: unknown key",
    "warmup_after_end.toml": "simulation.warmup: warmup (2h) must be shorter",
    "weights_inf.toml": 'senders.users.domains."dest.example": Input should be a finite',
    "weights_nan.toml": 'senders.users.domains."dest.example": Input should be a finite',
    "weights_zero.toml": "senders.users.domains: weights sum to zero",
}

EXPERIMENT_CASES = {
    # file under fuzz/experiment/: (the file the message names, fragment)
    "base_absent_key.toml": (None, "base: missing: name the base scenario file"),
    "base_broken.toml": ("count_1e9.toml", "senders.users.count: at most 10,000,000"),
    "base_directory.toml": (None, "base: scenario file"),
    "base_missing.toml": (None, "nowhere.toml' does not exist"),
    "base_non_utf8.toml": ("non_utf8.toml", "not a UTF-8 text file"),
    "deep.toml": (None, "arrays or tables nested too deeply"),
    "grid_bad_key.toml": (None, 'grid."senders..count": not a TOML dotted key'),
    "grid_empty.toml": (None, "the list of values is empty"),
    "grid_inf.toml": (None, "Input should be a finite number (at grid point"),
    "grid_int64.toml": (None, "integer out of range"),
    "grid_million.toml": (None, "grid: 1,000,000 grid points; at most 10,000"),
    "grid_not_list.toml": (None, "must be a list of values"),
    "grid_phantom.toml": (None, "no server named 'mx1.dest.exmaple' in the scenario"),
    "grid_point_rate_1e12.toml": (None, "too large to run: 2 points, 2 runs"),
    "grid_seed.toml": (None, "each run's seed comes from the experiment's seed"),
    "linked_unequal.toml": (None, "linked: lists must have equal lengths"),
    "non_utf8.toml": (None, "not a UTF-8 text file"),
    "replications_1e9.toml": (None, "replications: must be at most 100,000"),
    "replications_float.toml": (None, "replications: must be an integer"),
    "replications_zero.toml": (None, "replications: must be at least 1, not 0"),
    "runs_too_many.toml": (None, "replications: 1,100,000 runs in all; at most 1,000,000"),
    "seed_huge.toml": (None, "seed: must be at most 9,223,372,036,854,775,807"),
    "seed_negative.toml": (None, "seed: must be at least 0, not -1"),
    "unknown_key.toml": (None, "replication: unknown key"),
}

TRACE_CASES = {
    # file under fuzz/trace/: fragment after "traced.toml: senders.users.trace: <csv>"
    "at_huge.csv": " row 2: at: duration must be finite",
    "at_inf.csv": " row 2: at: not a duration: 'inf'",
    "at_negative.csv": " row 2: at: not a duration: '-5s'",
    "bad_address.csv": " row 2: not a mail address: 'alice'",
    "bad_address_space.csv": " row 2: not a mail address: 'al'",
    "bad_header.csv": ": the header must be at,sender,recipients",
    "empty.csv": ": the header must be at,sender,recipients",
    "empty_recipient.csv": " row 2: no recipients",
    "extra_field.csv": " row 2: 4 fields, expected 3",
    "missing_field.csv": " row 2: 2 fields, expected 3",
    "non_utf8.csv": ": cannot read: 'utf-8' codec can't decode",
    "nul_byte.csv": " row 2: no domain named 'dest\\x00.example'",
    "second_row_bad.csv": " row 3: not a mail address: 'b@'",
    "sender_bad_address.csv": " row 2: not a mail address: '@'",
    "sender_negative.csv": " row 2: sender '-1' is not a client index below count 10",
    "sender_out_of_range.csv": " row 2: sender '10' is not a client index below count 10",
    "unknown_domain.csv": " row 2: no domain named 'nowhere.example' in [domains]",
    "unterminated_quote.csv": " row 2: not CSV: unexpected end of data",
}

RUNDIR_CASES = {
    # directory under fuzz/rundir/: (command, fragment)
    "a_file": ("report", "not a directory"),
    "empty": ("report", "neither a run directory"),
    "junk_parquet": ("report", "messages.parquet: cannot read this table"),
    "wrong_schema": ("report", "not a mailnet messages table: no column message_id"),
    "manifest_not_json": ("qshape", "messages.parquet is missing"),
    "summary_infinity": ("qshape", "messages.parquet is missing"),
    "summary_wrong_types": ("qshape", "messages.parquet is missing"),
}


class Hang(Exception):
    """A case ran past ``CASE_TIMEOUT_S``."""


@contextmanager
def bounded(seconds: int = CASE_TIMEOUT_S):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def mailnet(*args: str | Path, cwd: Path = FUZZ) -> str:
    """Run ``mailnet ARGS`` in this process from ``cwd``; check the bad-input contract
    (exit code 2, one line, no traceback) and return that line."""
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with bounded():
            result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: {type(result.exception).__name__}: {result.exception}")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, (args, result.output)
    assert len(lines) == 1, (args, result.output)
    assert lines[0].startswith("mailnet: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0].removeprefix("mailnet: error: ")


def test_the_corpus_is_listed_whole():
    listed = {
        "scenario": SCENARIO_CASES,
        "experiment": EXPERIMENT_CASES,
        "trace": {**TRACE_CASES, "good.csv": ""},
        "rundir": RUNDIR_CASES,
    }
    for folder, cases in listed.items():
        assert sorted(p.name for p in (FUZZ / folder).iterdir()) == sorted(cases), folder


@pytest.mark.parametrize("name", sorted(SCENARIO_CASES))
def test_hostile_scenario_files(name, tmp_path):
    path = f"scenario/{name}"
    line = mailnet("run", path, "--out", tmp_path / "out", "--quiet")
    assert line.startswith(f"{path}: "), line
    assert SCENARIO_CASES[name] in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(EXPERIMENT_CASES))
def test_hostile_experiment_files(name, tmp_path):
    path = f"experiment/{name}"
    named, fragment = EXPERIMENT_CASES[name]
    line = mailnet("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert line.split(": ")[0].endswith(named or path), line
    assert fragment in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(TRACE_CASES))
def test_hostile_trace_files(name, tmp_path):
    trace = f"trace/{name}"
    line = mailnet(
        "run", "traced.toml", "--set", f'senders.users.trace="{trace}"', "--out", tmp_path / "o"
    )
    assert line.startswith(f"traced.toml: senders.users.trace: {trace}{TRACE_CASES[name]}"), line


@pytest.mark.parametrize("name", sorted(RUNDIR_CASES))
def test_hostile_run_directories(name, tmp_path):
    command, fragment = RUNDIR_CASES[name]
    extra = ["--out", str(tmp_path / "report")] if command == "report" else []
    line = mailnet(command, f"rundir/{name}", *extra)
    assert line.startswith(f"rundir/{name}"), line
    assert fragment in line


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seed", "-5"], "--seed: a seed is a whole number from 0 to"),
        (["--set", "novalue"], "KEY=VALUE"),
        (["--set", "senders.users.count=" + "9" * 400], "integer out of range"),
        (["--set", 'servers."mx1.dest.exmaple".sessions=5'], "no server named"),
        (["--set", "senders.users.rate=" + "[" * 3000 + "]" * 3000], "senders.users.rate"),
        (["--set", "simulation.x." * 40 + "y=1"], "nested more than 32"),
        (["--set", "blocklists.bl.duration=1h"], "no blocklist named 'bl'"),
        (["--max-memory", "lots"], "--max-memory: not a size"),
    ],
)
def test_hostile_command_line_values(args, fragment, tmp_path):
    line = mailnet("run", "good.toml", "--out", tmp_path / "o", "--quiet", *args)
    assert fragment in line, line


# ------------------------------------------------------------------ mutations
HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["0s", "-1s", "1e400s", "0/s", "1e12/s", "nan", "", "🙂", "x" * 400]),
    st.booleans(),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

GOOD = tomllib.loads((FUZZ / "good.toml").read_text())


def _paths(tree, at=()):
    """Every key path in ``tree`` (tables and list items)."""
    yield at
    if isinstance(tree, dict | list):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        for key, value in items:
            yield from _paths(value, (*at, key))


PATHS = [p for p in _paths(GOOD) if p]

FUZZ_SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutate(tree, path, value, delete):
    import copy

    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(PATHS),
    value=HOSTILE_VALUES,
    delete=st.booleans(),
    junk=st.one_of(st.none(), st.binary(max_size=20)),
)
def test_mutated_scenario_files(tmp_path, path, value, delete, junk):
    tree = _mutate(GOOD, path, value, delete)
    data = tomli_w.dumps(tree).encode()
    if junk is not None:
        data = data[: len(data) // 2] + junk + data[len(data) // 2 :]
    scenario = tmp_path / "mutant.toml"
    scenario.write_bytes(data)
    line = mailnet("run", scenario, "--out", tmp_path / "o", "--max-memory", "1KB", "--quiet")
    assert line.startswith(f"{scenario}: "), line


@FUZZ_SETTINGS
@given(
    key=st.one_of(
        st.sampled_from(PATHS).map(lambda p: ".".join(f'"{k}"' for k in p if isinstance(k, str))),
        st.text(max_size=40),
    ),
    value=st.one_of(st.text(max_size=40), st.sampled_from(["1e999", "-0", "[[[", "{a=", "inf"])),
)
def test_mutated_overrides(tmp_path, key, value):
    line = mailnet(
        "run",
        FUZZ / "good.toml",
        "--set",
        f"{key}={value}",
        "--out",
        tmp_path / "o",
        "--max-memory",
        "1KB",
        "--quiet",
    )
    assert line.startswith((f"{FUZZ / 'good.toml'}: ", "--set: ")), line


EXPERIMENT_KEYS = ["base", "replications", "seed", "grid", "linked", "labels", "description"]


@FUZZ_SETTINGS
@given(
    replications=st.one_of(st.integers(min_value=-5, max_value=2**66), HOSTILE_VALUES),
    key=st.one_of(
        st.sampled_from(PATHS).map(lambda p: ".".join(f'"{k}"' for k in p if isinstance(k, str))),
        st.text(max_size=20),
    ),
    values=st.one_of(st.lists(HOSTILE_VALUES, max_size=4), HOSTILE_VALUES),
    extra=st.sampled_from([*EXPERIMENT_KEYS, "bogus"]),
)
def test_mutated_experiment_files(tmp_path, replications, key, values, extra):
    experiment = {"base": str(FUZZ / "good.toml"), "replications": replications}
    experiment["grid"] = {key: values}
    experiment.setdefault(extra, "x")
    path = tmp_path / "exp.toml"
    try:
        path.write_text(tomli_w.dumps(experiment))
    except (TypeError, ValueError):
        return  # not writable as TOML (a NaN key, ...): nothing to read
    line = mailnet("sweep", path, "--out", tmp_path / "o", "--workers", "1", "--max-memory", "1KB")
    assert line.startswith((f"{path}: ", f"{FUZZ / 'good.toml'}: ")), line
    assert not (tmp_path / "o").exists()


CSV_FIELD = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["10s", "0", "a@dest.example", "b@DEST.EXAMPLE;c@dest.example", "@", ""]),
)


@FUZZ_SETTINGS
@given(
    rows=st.lists(st.lists(CSV_FIELD, min_size=0, max_size=4), min_size=0, max_size=4),
    header=st.sampled_from(["at,sender,recipients", "at,sender", "", "at,sender,recipients,x"]),
)
def test_mutated_trace_files(tmp_path, rows, header):
    import csv

    trace = tmp_path / "trace.csv"
    with trace.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        handle.write(header + "\n")
        csv.writer(handle).writerows(rows)
    scenario = tmp_path / "traced.toml"
    scenario.write_text((FUZZ / "traced.toml").read_text().replace("trace/good.csv", "trace.csv"))
    line = mailnet("run", scenario, "--out", tmp_path / "o", "--max-memory", "1KB", "--quiet")
    assert line.startswith(f"{scenario}: "), line
