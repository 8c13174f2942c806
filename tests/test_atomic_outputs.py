"""Outputs are safe: every file is written through a temporary file and a rename, a write
that fails (a full disk) leaves the previous result whole and no temporary file behind,
and nothing is written over files that are not mailnet's."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mailnet.cli import app
from mailnet.output import atomic_write_bytes, atomic_write_parquet
from tests.test_bad_input import GOOD


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _litter(folder: Path) -> list[str]:
    """Temporary files or staged directories left anywhere under ``folder``."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if ".tmp" in p.name or ".new" in p.name or ".old" in p.name
    )


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    atomic_write_bytes(path, b"old")

    def write_half(self: Path, data: bytes) -> int:
        with self.open("wb") as handle:
            handle.write(data[:1])
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "write_bytes", write_half)
        with pytest.raises(OSError, match="No space left"):
            atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"old"
    assert _litter(tmp_path) == []

    frame = pd.DataFrame({"a": [1, 2]})
    atomic_write_parquet(frame, tmp_path / "t.parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pd.DataFrame, "to_parquet", _disk_full)
        with pytest.raises(OSError, match="No space left"):
            atomic_write_parquet(pd.DataFrame({"a": [3]}), tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    assert _litter(tmp_path) == []


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(GOOD.replace('duration = "1h"', 'duration = "20m"'))
    return path


def test_run_on_a_full_disk_is_one_line_and_keeps_the_previous_run(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    monkeypatch.setattr(pd.DataFrame, "to_parquet", _disk_full)
    again = CliRunner().invoke(
        app, ["run", str(scenario), "--out", str(out), "--force", "--seed", "9", "--quiet"]
    )
    assert again.exit_code == 2
    lines = [line for line in again.output.splitlines() if line.strip()]
    assert lines == [f"mailnet: error: {out}: cannot write the run (No space left on device)"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _litter(tmp_path) == []


def test_report_never_writes_over_a_foreign_directory(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"]).exit_code == 0
    )
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "figure.png").write_bytes(b"my own figure")
    result = CliRunner().invoke(app, ["report", str(out), "--out", str(mine)])
    assert result.exit_code == 2
    assert "not empty and holds no report.html" in result.output
    assert [p.name for p in mine.iterdir()] == ["figure.png"]
    assert (mine / "figure.png").read_bytes() == b"my own figure"
    # its own report directory is rewritten freely
    for _ in range(2):
        done = CliRunner().invoke(app, ["report", str(out)])
        assert done.exit_code == 0, done.output
    assert json.loads((out / "manifest.json").read_text())["seed"] is not None
