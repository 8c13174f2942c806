"""Reproduction: a short sweep's committed result regenerates bit for bit.

``tests/reproduce/result/`` holds ``runs.parquet``, ``points.parquet`` and ``manifest.json``
of ``tests/reproduce/experiment.toml``, made under the versions pinned in ``uv.lock``.
Running the sweep again must give the same tables, wall times aside. After a deliberate
change in behaviour, or a new lock, regenerate them with ``make reproduce`` (``python
tests/test_reproduce.py``) and commit them with the change that explains them.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from mailnet.environment import describe, differences, recorded_in

HERE = Path(__file__).resolve().parent / "reproduce"
EXPERIMENT = HERE / "experiment.toml"
RESULT = HERE / "result"
TABLES = ("runs", "points")
KEPT = (*(f"{name}.parquet" for name in TABLES), "manifest.json")


def regenerate(out: Path, experiment: Path = EXPERIMENT) -> Path:
    """Run the reproduction sweep into ``out`` (in this process, so in any test worker)."""
    from mailnet.sweep import sweep

    sweep(experiment, workers=1, out=out, progress=False)
    return out


def _without_wall_times(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame.drop(columns=[c for c in frame.columns if c.startswith("wall_time_s")])


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    return regenerate(tmp_path_factory.mktemp("reproduce") / "result")


@pytest.mark.parametrize("table", TABLES)
def test_committed_sweep_regenerates_bit_for_bit(fresh, table):
    changed = differences(recorded_in(RESULT))
    why = f"; it was made under other versions: {describe(changed)}" if changed else ""
    committed = _without_wall_times(RESULT / f"{table}.parquet")
    again = _without_wall_times(fresh / f"{table}.parquet")
    pd.testing.assert_frame_equal(again, committed, check_exact=True, obj=f"{table}.parquet{why}")
    # equal values could still differ in the bits (-0.0 and 0.0, NaN payloads): compare those
    assert _parquet_bytes(again) == _parquet_bytes(committed), f"{table}.parquet{why}"


def test_committed_result_records_the_locked_environment():
    assert differences(recorded_in(RESULT)) == {}, (
        "tests/reproduce/result was made under other versions than this environment: "
        f"{describe(differences(recorded_in(RESULT)))}"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="reproduce_") as tmp:
        # the manifest records the experiment path as given: keep it relative
        out = regenerate(Path(tmp) / "result", Path(os.path.relpath(EXPERIMENT)))
        RESULT.mkdir(exist_ok=True)
        for name in KEPT:
            shutil.copyfile(out / name, RESULT / name)
            print(f"wrote {RESULT / name}")
    sys.exit(0)
