"""Experiment files: expansion into points and seeds, and one-line errors for bad files."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from mailnet.errors import ScenarioError
from mailnet.sweep import Experiment, confidence_interval, load_experiment, replication_seed
from mailnet.sweep.experiment import ExperimentFile
from tests.conftest import sweep_app

BASE = textwrap.dedent("""
    [simulation]
    duration = "1h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 5
    rate = "20/h"
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx.dest.example", preference = 10 } ]
    [servers."mx.dest.example"]
    sessions = 2
    outages = { mtbf = "1h", mttr = "10m" }
""")

EXPERIMENT = textwrap.dedent("""
    base = "base.toml"
    replications = 3
    seed = 5
    [grid]
    'servers."mx.dest.example".sessions' = [1, 2, 4]
    "providers.isp.ip_selection" = ["round-robin", "random"]
    [linked]
    'servers."mx.dest.example".outages.mttr' = ["5m", "1h"]
    "senders.users.rate" = ["10/h", "30/h"]
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    return tmp_path


def test_points_are_the_grid_product_times_the_linked_rows(files):
    experiment = load_experiment(files / "exp.toml")
    assert len(experiment.points) == 3 * 2 * 2
    assert experiment.n_runs == 36
    keys = [f.key for f in experiment.factors]
    assert keys == [
        'servers."mx.dest.example".sessions',
        "providers.isp.ip_selection",
        'servers."mx.dest.example".outages.mttr',
        "senders.users.rate",
    ]
    # first grid key varies slowest, the linked group fastest; linked values move together
    combos = [tuple(p.params.values()) for p in experiment.points]
    assert combos[:3] == [
        (1, "round-robin", "5m", "10/h"),
        (1, "round-robin", "1h", "30/h"),
        (1, "random", "5m", "10/h"),
    ]
    assert combos[-1] == (4, "random", "1h", "30/h")
    last = experiment.points[-1].scenario
    assert last["servers"]["mx.dest.example"] == {
        "sessions": 4,
        "outages": {"mtbf": "1h", "mttr": "1h"},
    }
    assert last["senders"]["users"]["rate"] == "30/h"
    # the base mapping is never changed
    assert experiment.base["servers"]["mx.dest.example"]["sessions"] == 2


def test_replication_seeds_are_shared_by_points_and_pure(files):
    experiment = load_experiment(files / "exp.toml")
    seeds = [replication_seed(5, r) for r in range(3)]
    assert experiment.seeds == seeds
    assert len(set(seeds)) == 3
    by_replication = {}
    for _point, r, seed in experiment.runs():
        by_replication.setdefault(r, set()).add(seed)
    assert by_replication == {r: {s} for r, s in enumerate(seeds)}
    assert replication_seed(5, 0) == replication_seed(5, 0) != replication_seed(6, 0)


def test_confidence_interval_matches_scipy():
    rng = np.random.default_rng(3)
    for n in (2, 3, 10, 40):
        x = rng.lognormal(size=n)
        mean, low, high = confidence_interval(x)
        expected = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
        assert mean == pytest.approx(x.mean(), rel=1e-12)
        assert (low, high) == pytest.approx(expected, rel=1e-12)
    assert confidence_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)
    mean, low, high = confidence_interval([2.0, np.nan])
    assert mean == 2.0
    assert np.isnan(low)
    assert np.isnan(high)
    assert all(np.isnan(v) for v in confidence_interval([]))


# ------------------------------------------------------------------ bad files
BAD = [
    # (replace this, with this, key named in the message, words in the message)
    ("seed = 5", "seed = 5\nreplicates = 3", "replicates", "unknown key"),
    ('base = "base.toml"', "", "base", "missing"),
    ('base = "base.toml"', 'base = "nope.toml"', "base", "does not exist"),
    ("replications = 3", "replications = 0", "replications", "at least 1"),
    ("replications = 3", 'replications = "many"', "replications", "integer"),
    ("seed = 5", "seed = -1", "seed", "at least 0"),
    (
        '"senders.users.rate" = ["10/h", "30/h"]',
        '"senders.users.rate" = ["10/h"]',
        "linked",
        "equal lengths",
    ),
    (
        "'servers.\"mx.dest.example\".sessions' = [1, 2, 4]",
        "'servers.\"mx.dest.example\".sesions' = [1, 2, 4]",
        'servers."mx.dest.example".sesions',
        "unknown key",
    ),
    (
        "[1, 2, 4]",
        "[1, 0, 4]",
        'servers."mx.dest.example".sessions',
        'greater than or equal to 1 (at grid point servers."mx.dest.example".sessions = 0',
    ),
    ("[1, 2, 4]", "3", "grid.'servers.\"mx.dest.example\".sessions'", "list of values"),
    ("[1, 2, 4]", "[]", "grid.'servers.\"mx.dest.example\".sessions'", "empty"),
    (
        '["round-robin", "random"]',
        '["round-robin", "by-moon-phase"]',
        "providers.isp.ip_selection",
        "by-moon-phase",
    ),
    (
        '"providers.isp.ip_selection"',
        '"senders.spammer.count"',
        'grid."senders.spammer.count"',
        "no sender named 'spammer' in the scenario",
    ),
    (
        "'servers.\"mx.dest.example\".sessions' = [1, 2, 4]",
        "'servers.\"mx.dest.exmaple\".sessions' = [1, 2, 4]",
        "grid.'servers.\"mx.dest.exmaple\".sessions'",
        "no server named 'mx.dest.exmaple' in the scenario; to add one, give its whole table",
    ),
    (
        '"senders.users.rate" = ["10/h", "30/h"]',
        '"receivers.strict.greylisting.delay" = ["1m", "5m"]',
        'linked."receivers.strict.greylisting.delay"',
        "no receiver named 'strict'",
    ),
    (
        '"providers.isp.ip_selection" = ["round-robin", "random"]',
        '"simulation.seed" = [1, 2]',
        'grid."simulation.seed"',
        "experiment's seed",
    ),
    (
        '"providers.isp.ip_selection" = ["round-robin", "random"]',
        '\'servers."mx.dest.example".outages\' = [{ mtbf = "2h", mttr = "5m" }]',
        'servers."mx.dest.example".outages.mttr',
        "also set by",
    ),
    (
        '"providers.isp.ip_selection"',
        '"providers..ip_selection"',
        'grid."providers..ip_selection"',
        "not a TOML dotted key",
    ),
    ("[grid]", "[grid\n", "", "not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD)
def test_bad_experiment_is_one_line_and_exit_2(files, old, new, key, words):
    assert old in EXPERIMENT
    path = files / "exp.toml"
    path.write_text(EXPERIMENT.replace(old, new, 1))
    result = CliRunner().invoke(
        sweep_app(), ["sweep", str(path), "--out", str(files / "out"), "--workers", "1"]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mailnet: error: {path}: {key}"), lines[0]
    assert words in lines[0]
    assert not (files / "out").exists()  # nothing ran, nothing was written
    with pytest.raises(ScenarioError):
        load_experiment(path)


def test_factor_sections_must_be_tables(files):
    for section in ("grid", "linked"):
        with pytest.raises(ScenarioError, match=f"^exp: {section}: must be a table"):
            Experiment.from_dict(
                {"base": "base.toml", section: [1, 2]}, source="exp", base_dir=files
            )


def test_broken_base_names_the_base_file(files):
    (files / "base.toml").write_text(BASE.replace("sessions = 2", "sessions = -2"))
    with pytest.raises(ScenarioError) as caught:
        load_experiment(files / "exp.toml")
    assert str(caught.value).startswith(f'{files / "base.toml"}: servers."mx.dest.example"')


def test_entry_point_reports_bad_experiment_without_traceback(files):
    path = files / "exp.toml"
    path.write_text(EXPERIMENT.replace("replications = 3", "replications = 0"))
    done = subprocess.run(
        [sys.executable, "-m", "mailnet.cli", "sweep", str(path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=files,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mailnet: error: {path}: replications: must be at least 1, not 0"
    )
    assert "Traceback" not in done.stderr


def test_labels_name_the_linked_rows(tmp_path):
    from mailnet.sweep.store import params_frame

    base = tmp_path / "base.toml"
    base.write_text(
        textwrap.dedent("""
        [providers.isp]
        ips = ["198.51.100.1"]
        local_domains = ["isp.example"]
        [senders.users]
        provider = "isp"
        rate = "1/h"
        domains = { "isp.example" = 1.0 }
    """)
    )
    raw = {
        "base": "base.toml",
        "grid": {"simulation.duration": ["1h", "2h"]},
        "linked": {"senders.users.count": [1, 2], "senders.users.rate": ["1/h", "2/h"]},
        "labels": ["small", "large"],
    }
    experiment = Experiment.from_dict(raw, base_dir=tmp_path)
    assert [p.label for p in experiment.points] == ["small", "large", "small", "large"]
    frame = params_frame(experiment)
    assert list(frame["label"]) == ["small", "large", "small", "large"]
    assert experiment.to_dict()["labels"] == ["small", "large"]
    for labels, words in (
        (["a"], "1 names for 2 rows"),
        (["a", "a"], "must differ"),
        ("a", "list of strings"),
    ):
        with pytest.raises(ScenarioError, match=words):
            Experiment.from_dict({**raw, "labels": labels}, base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="linked"):
        Experiment.from_dict({k: v for k, v in raw.items() if k != "linked"}, base_dir=tmp_path)


def test_experiment_file_model_reports_an_unknown_key_first(files):
    raw = {"base": "nope.toml", "replicates": 2, "seed": -1}
    with pytest.raises(ScenarioError) as caught:
        Experiment.from_dict(raw, source="exp", base_dir=files)
    assert str(caught.value) == (
        "exp: replicates: unknown key "
        "(expected one of base, replications, seed, grid, linked, labels, baseline, description, "
        "precision)"
    )
    spec = ExperimentFile.model_validate(
        {"base": "base.toml", "grid": {'servers."mx.dest.example".sessions': [1, 2]}},
        context={"base_dir": files},
    )
    assert spec.base == files / "base.toml"
    (factor,) = spec.factors("grid")
    assert factor.parts == ("servers", "mx.dest.example", "sessions")
    assert factor.values == (1, 2)
