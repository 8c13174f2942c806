"""README.md tried by pasting: every shell command and Python snippet in it runs as written,
in a copy of the project, with ``MAILNET_DURATION`` shortening every run (as the README
says). Commands that install, rerun the suite or run sweeps for minutes are listed in
``NOT_RUN`` with the test that covers them instead; any other command must succeed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mailnet.errors import ScenarioError
from mailnet.scenario import load_scenario
from mailnet.scenario.shortening import ScenarioNotice

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)

NOT_RUN = {
    "make": "installs, the whole suite or every experiment (this test is part of make test)",
    "python3 -m venv": "an install (make INSTALL=pip is the same through the Makefile)",
    "mailnet sweep": "minutes of runs; tests/test_sweep.py runs sweeps through the command line",
}
"""Commands left out, by how they start, and why."""


def blocks(lang: str) -> list[str]:
    """The bodies of README.md's fenced code blocks in ``lang``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [m["body"] for m in BLOCK.finditer(text) if m["lang"] == lang]


def commands() -> list[str]:
    """Every shell command in the README's ``sh`` blocks, continuation lines joined,
    comment lines dropped."""
    out = []
    for body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
    return out


def _left_out(command: str) -> str | None:
    words = command.removeprefix(".venv/bin/")
    return next((why for start, why in NOT_RUN.items() if words.startswith(start)), None)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what a fresh clone has that the examples read, with this .venv."""
    copy = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "experiments", copy / "experiments")
    shutil.copytree(ROOT / "results", copy / "results", ignore=shutil.ignore_patterns("report"))
    (copy / ".venv").symlink_to(Path(sys.prefix))
    return copy


def _environment(project: Path) -> dict[str, str]:
    env = dict(os.environ, MAILNET_DURATION="1h", COLUMNS="100")
    env["PATH"] = f"{project / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def test_every_command_is_run_or_left_out_for_a_reason() -> None:
    found = commands()
    assert any("mailnet compare" in c for c in found)
    assert [c for c in found if _left_out(c)], "the README still has make targets"


@pytest.mark.slow
def test_readme_commands_run_as_written(project: Path) -> None:
    env = _environment(project)
    ran = 0
    for command in commands():
        if _left_out(command):
            continue
        done = subprocess.run(
            ["bash", "-c", command],
            check=False,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, command
        ran += 1
    assert ran >= 10
    assert (project / "runs" / "compare" / "compare_sides.png").is_file()


@pytest.mark.slow
def test_readme_python_runs_as_written(project: Path) -> None:
    snippets = blocks("python")
    assert snippets
    for code in snippets:
        done = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            cwd=project,
            env=_environment(project),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{code}\n{done.stderr[-2000:]}"


def test_a_shorter_duration_scales_the_warmup() -> None:
    """The README's Python quick-start: six hours of a scenario with a six-hour warm-up."""
    path = ROOT / "experiments" / "scenarios" / "baseline.toml"
    with pytest.warns(ScenarioNotice, match="warm-up scaled with the duration to 45m"):
        scenario = load_scenario(path, overrides=["simulation.duration=6h"])
    assert (scenario.simulation.duration, scenario.simulation.warmup) == (6 * 3600, 45 * 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a longer run, or a warm-up given, changes nothing
        assert (
            load_scenario(path, overrides=["simulation.duration=3d"]).simulation.warmup == 6 * 3600
        )
        kept = load_scenario(path, overrides=["simulation.duration=6h", "simulation.warmup=1h"])
    assert kept.simulation.warmup == 3600
    with pytest.raises(ScenarioError, match="must be shorter than duration"):
        load_scenario(path, overrides=["simulation.duration=6h", "simulation.warmup=6h"])


def test_mailnet_duration_caps_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "experiments" / "scenarios" / "baseline.toml"
    monkeypatch.setenv("MAILNET_DURATION", "1h")
    with pytest.warns(ScenarioNotice) as notices:
        scenario = load_scenario(path)
    assert [str(n.message).split(":")[0] for n in notices] == [
        "MAILNET_DURATION=1h",
        "simulation.duration 1h is not longer than the warm-up 6h",
    ]
    assert scenario.simulation.duration == 3600
    assert 0 < scenario.simulation.warmup < 3600
    monkeypatch.setenv("MAILNET_DURATION", "soon")
    with pytest.raises(ScenarioError, match="MAILNET_DURATION"):
        load_scenario(path)


def test_make_lab_installs_the_notebooks_extra_and_make_test_does_not() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    lab = subprocess.run(
        [make, "-n", "-W", "pyproject.toml", "lab"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert "--extra notebooks" in lab
    assert "jupyter lab notebooks/" in lab
    install = [line for line in lab.splitlines() if "sync" in line and "notebooks" not in line]
    assert install, "make lab first brings .venv to the locked test environment"
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "jupyterlab", marker = "extra == \'notebooks\'"' in lock
    assert 'name = "jupyterlab", marker = "extra == \'test\'"' not in lock
