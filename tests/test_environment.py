"""The environment recorded in manifests, the checks that read it, and the lock behind it."""

from __future__ import annotations

import json
import platform
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.environment import (
    PACKAGES,
    RESULT_PACKAGES,
    differences,
    environment,
    mismatch,
    recorded_in,
)
from mailnet.output import write_run
from mailnet.report import make_report
from mailnet.scenario import Scenario
from mailnet.simulate import simulate
from mailnet.sweep import sweep
from tests.conftest import ONE_MX_TOML, one_mx_world, sweep_app

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = """
base = "base.toml"
replications = 2
seed = 5
[grid]
'servers."mx.dest.example".sessions' = [1, 2]
"""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _tamper(directory: Path, **versions: str) -> None:
    """Rewrite the versions recorded in ``directory/manifest.json``."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["environment"].update(versions)
    path.write_text(json.dumps(manifest))


@pytest.fixture
def swept(tmp_path) -> Path:
    (tmp_path / "base.toml").write_text(ONE_MX_TOML)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    sweep(tmp_path / "exp.toml", workers=1, out=tmp_path / "out", progress=False)
    return tmp_path


# ------------------------------------------------------------------ recording


def test_environment_names_python_the_packages_and_the_platform():
    env = environment()
    assert list(env) == ["python", *PACKAGES, "platform"]
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__
    assert env["platform"] == platform.platform()
    assert set(RESULT_PACKAGES) <= set(PACKAGES)
    env["numpy"] = "changed"  # a copy: the caller may keep or change it
    assert environment()["numpy"] == np.__version__


def test_run_and_sweep_manifests_record_the_environment(swept, tmp_path):
    result = simulate(Scenario.from_dict(one_mx_world()))
    assert result.manifest["environment"] == environment()
    run = write_run(result, tmp_path / "run")
    assert recorded_in(run) == environment()
    assert recorded_in(swept / "out") == environment()


# ------------------------------------------------------------------ comparing


def test_differences_name_only_the_packages_that_change_results():
    now = environment()
    assert differences(dict(now), now) == {}
    older = {**now, "numpy": "1.26.0", "pyarrow": "1.0", "platform": "elsewhere"}
    assert differences(older, now) == {"numpy": ("1.26.0", now["numpy"])}
    unknown = differences(None, now)
    assert list(unknown) == list(RESULT_PACKAGES)
    assert all(old == "unknown" for old, _ in unknown.values())


def test_mismatch_says_nothing_without_a_manifest_or_when_versions_agree(swept, tmp_path):
    assert mismatch(tmp_path / "nothing-here") is None
    assert mismatch(swept / "out") is None
    _tamper(swept / "out", simpy="3.0.0")
    warning = mismatch(swept / "out")
    assert warning is not None
    assert f"simpy 3.0.0 (now {environment()['simpy']})" in warning
    manifest = json.loads((swept / "out" / "manifest.json").read_text())
    del manifest["environment"]  # as written before manifests recorded it
    (swept / "out" / "manifest.json").write_text(json.dumps(manifest))
    warning = mismatch(swept / "out")
    assert warning is not None
    assert "does not record the versions" in warning


# ------------------------------------------------------------------ refusing and warning


def test_resume_refuses_runs_made_under_other_versions(swept):
    out = swept / "out"
    _tamper(out, numpy="1.26.0")
    result = CliRunner().invoke(
        sweep_app(),
        ["sweep", str(swept / "exp.toml"), "--workers", "1", "--out", str(out), "--resume"],
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("mailnet: error: ")
    assert f"numpy 1.26.0 (now {np.__version__})" in lines[0]
    assert "Traceback" not in result.output


def test_sweep_report_shows_the_environment(swept, tmp_path):
    html = make_report(swept / "out", tmp_path / "rep").read_text(encoding="utf-8")
    assert ">Environment</h2>" in html
    assert np.__version__ in html
    assert "Warning:" not in html


def test_report_warns_when_a_result_was_made_under_other_versions(tmp_path):
    run = write_run(simulate(Scenario.from_dict(one_mx_world())), tmp_path / "run")
    html = make_report(run, tmp_path / "same").read_text(encoding="utf-8")
    assert ">Environment</h2>" in html
    assert "Warning:" not in html
    _tamper(run, pandas="1.5.3")
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "other")])
    assert result.exit_code == 0, result.output
    assert "mailnet: warning: " in result.output
    assert "pandas 1.5.3" in result.output
    html = (tmp_path / "other" / "report.html").read_text(encoding="utf-8")
    assert "Warning:" in html
    assert "pandas 1.5.3" in html


# ------------------------------------------------------------------ the lock


def _locked() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    versions: dict[str, list[str]] = {}
    for package in lock["package"]:
        versions.setdefault(_normal(package["name"]), []).append(package["version"])
    several = {name: v for name, v in versions.items() if len(v) > 1}
    assert not several, f"one version of each package for every Python: {several}"
    return {name: v[0] for name, v in versions.items()}


def test_lock_pins_the_installed_versions_of_the_result_packages():
    locked, env = _locked(), environment()
    wrong = {
        name: (locked[name], env[name])
        for name in PACKAGES
        if name != "mailnet" and locked[name] != env[name]
    }
    assert not wrong, f"installed versions differ from uv.lock (locked, installed): {wrong}"


def test_constraints_file_holds_the_pins_of_the_lock():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        requirement = line.split(";")[0].strip()
        if requirement and not requirement.startswith("#"):
            name, version = requirement.split("==")
            pins[_normal(name)] = version
    locked = _locked()
    del locked["mailnet"]
    assert pins == locked, "constraints.txt is stale: run make lock"
