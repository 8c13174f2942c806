"""A run makes no cyclic garbage, so pausing the collector while it runs loses nothing.

``mailnet.collector.paused`` turns Python's cyclic collector off while a world is built
and run: everything a run drops must be freed by reference counting alone. Each world
here (the golden world, which crosses the whole mail path, the baseline, a small
generated internet) is run with every way of keeping its rows, in a fresh interpreter
(garbage a test runner leaves behind would be counted too); at the end of the run, before
the world is dropped, a full collection must find nothing unreachable.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailnet import load_scenario, simulate

ROOT = Path(__file__).resolve().parent.parent
WORLDS = {
    "golden": (ROOT / "tests" / "golden" / "scenario.toml", []),
    "baseline": (
        ROOT / "experiments" / "scenarios" / "baseline.toml",
        ["simulation.duration=2h", "simulation.warmup=0s"],
    ),
    "internet": (
        ROOT / "experiments" / "scenarios" / "internet.toml",
        ["internet.domains=300", "internet.users=3000", "simulation.duration=6h"],
    ),
}

COUNT = r"""
import gc, json, sys, tempfile
import simpy
from mailnet import load_scenario, simulate

class Counting(simpy.Environment):
    def run(self, until=None):
        gc.collect()
        out = super().run(until)
        self.paused = not gc.isenabled()
        self.unreachable = gc.collect()
        return out

found = {}
for mode in ("tables", "summary-only", "streamed"):
    env = Counting()
    with tempfile.TemporaryDirectory() as tables:
        simulate(
            load_scenario(sys.argv[1], overrides=sys.argv[2:]),
            environment=env,
            summary_only=mode == "summary-only",
            tables_dir=tables if mode == "streamed" else None,
        )
    found[mode] = [env.unreachable, env.paused]
    del env
    gc.collect()
print(json.dumps(found))
"""


@pytest.mark.parametrize("world", list(WORLDS))
def test_a_run_makes_no_cyclic_garbage(world) -> None:
    path, overrides = WORLDS[world]
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", COUNT, str(path), *overrides],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found == {mode: [0, True] for mode in ("tables", "summary-only", "streamed")}


def test_the_collector_is_restored_after_a_run() -> None:
    path, overrides = WORLDS["golden"]
    assert gc.isenabled()
    simulate(load_scenario(path, overrides=overrides))
    assert gc.isenabled()
    gc.disable()
    try:
        simulate(load_scenario(path, overrides=overrides))
        assert not gc.isenabled()
    finally:
        gc.enable()


FROZEN = r"""
import gc, sys
from typer.testing import CliRunner
from mailnet import cli
args = ["run", sys.argv[1], "--quiet", "--summary-only", "--force", "--out", sys.argv[2]]
for obj in (None, cli.ENDS_PROCESS):
    result = CliRunner().invoke(cli.app, args, obj=obj)
    assert result.exit_code == 0, result.output
    print(gc.get_freeze_count() > 0, gc.isenabled())
"""


def test_only_a_run_that_ends_its_process_leaves_its_world_uncollected(tmp_path) -> None:
    # a test or a notebook calling the command keeps collecting; the console script,
    # whose process ends with the run, freezes the collector instead of walking the world
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", FROZEN, str(WORLDS["golden"][0]), str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    assert out.split() == ["False", "True", "True", "True"]
