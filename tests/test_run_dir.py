"""``mailnet run`` never overwrites by surprise: a non-empty directory that is not a run is
refused, a previous run is replaced only with ``--force`` and then whole (no file of the
old run survives), and every refusal is one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailnet.cli import RUNS_DIR, app
from mailnet.output import RunDirError, check_run_dir, is_run_dir, staged_run_dir
from tests.test_bad_input import GOOD

RUN_FILES = {
    "messages.parquet",
    "attempts.parquet",
    "queues.parquet",
    "listings.parquet",
    "reputation.parquet",
    "suspensions.parquet",
    "changes.parquet",
    "summary.json",
    "scenario.toml",
    "manifest.json",
}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(GOOD.replace('duration = "1h"', 'duration = "20m"'))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, result.output


def test_a_fresh_directory_gets_exactly_the_run_files(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = run(str(scenario), "--out", str(out))
    assert code == 0, output
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert is_run_dir(out)
    # nothing staged is left beside it
    assert {p.name for p in tmp_path.iterdir()} == {"small.toml", "out"}


def test_an_empty_directory_is_used(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert run(str(scenario), "--out", str(out))[0] == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES


def test_a_foreign_directory_is_refused_even_with_force(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    for extra in ([], ["--force"]):
        code, output = run(str(scenario), "--out", str(out), *extra)
        assert code == 2
        assert len(output.strip().splitlines()) == 1, output
        assert str(out) in output
        assert "not a mailnet run directory" in output
        assert "Traceback" not in output
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_a_sweep_directory_is_not_a_run(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    manifest = {"status": "complete", "experiment": {}, "runs": {"total": 1}, "seed": 1}
    (sweep / "manifest.json").write_text(json.dumps(manifest))
    assert not is_run_dir(sweep)
    with pytest.raises(RunDirError, match="not a mailnet run directory"):
        check_run_dir(sweep, force=True)


def test_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(RunDirError, match="not a directory"):
        check_run_dir(path, force=True)


def test_a_previous_run_is_replaced_only_with_force(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(scenario), "--out", str(out), "--maillog", "--seed", "1")[0] == 0
    assert (out / "maillog").exists()
    (out / "report").mkdir()  # a report made of the old run
    first = json.loads((out / "manifest.json").read_text())
    code, output = run(str(scenario), "--out", str(out), "--seed", "2")
    assert code == 2
    assert len(output.strip().splitlines()) == 1
    assert "previous run" in output
    assert "--force" in output
    assert json.loads((out / "manifest.json").read_text()) == first  # untouched
    code, output = run(str(scenario), "--out", str(out), "--seed", "2", "--force")
    assert code == 0, output
    # the new run alone: no maillog or report of the old one survives
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    assert {p.name for p in tmp_path.iterdir()} == {"small.toml", "out"}


def test_a_failed_write_leaves_the_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"seed": 1, "simulated_seconds": 60}))

    def write_and_fail() -> None:
        with staged_run_dir(out) as stage:
            (stage / "manifest.json").write_text("{}")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_and_fail()
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_default_directory_is_the_ignored_runs_folder(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(str(scenario))[0] == 0
    assert is_run_dir(RUNS_DIR / "small")
    help_text = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert f"{RUNS_DIR}/<scenario file name>" in " ".join(help_text.replace("│", " ").split())
    root = Path(__file__).resolve().parent.parent
    assert f"{RUNS_DIR}/" in (root / ".gitignore").read_text().splitlines()
