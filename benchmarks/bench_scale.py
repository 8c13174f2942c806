"""The generated internet at scale: wall time and peak memory per message.

Runs ``experiments/scenarios/internet.toml`` (10,000 domains, one simulated day) with its
users scaled so that the run submits about 100 k, 1 M and 5 M messages, each through
``mailnet run`` in a fresh process: once with every table, and once with
``--summary-only`` where this mailnet has that flag (otherwise that mode is skipped with a
note). Peak RSS and CPU time (user and system: on a loaded machine the wall time mostly
counts the wait for a core) are the child's own (``wait4``). A run that ``mailnet run``
refuses as too large for this machine is reported with its one-line reason. Usage::

    .venv/bin/python benchmarks/bench_scale.py [--sizes 100k,1M,5M]
        [--modes summary-only,tables] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mailnet
from mailnet.estimate import estimate_run

QUICK = os.environ.get("BENCH_QUICK") == "1"
"""Fewer and smaller runs (``BENCH_QUICK=1 make bench``): a first look."""

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "experiments" / "scenarios" / "internet.toml"
SCRIPT = Path(sys.executable).parent / "mailnet"
MAILNET = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mailnet.cli"]
"""The ``mailnet`` command of this interpreter's environment."""
SUFFIXES = {"k": 1e3, "m": 1e6}


def parse_size(text: str) -> int:
    """``"100k"`` -> 100000, ``"5M"`` -> 5000000."""
    text = text.strip().lower()
    scale = SUFFIXES.get(text[-1:], 1.0)
    return int(float(text.rstrip("km")) * scale)


def users_for(messages: int, scenario: Path, overrides: list[str]) -> int:
    """Users that make the scenario submit about ``messages`` messages, from the run
    estimate (linear in users: a fixed spam volume plus the users' mail)."""
    counts = []
    for users in (100_000, 200_000):
        loaded = mailnet.load_scenario(scenario, overrides=[*overrides, f"internet.users={users}"])
        counts.append(estimate_run(loaded, scenario.parent).messages)
    per_user = (counts[1] - counts[0]) / 100_000
    fixed = counts[0] - per_user * 100_000
    return max(1, round((messages - fixed) / per_user))


def has_summary_only() -> bool:
    """Whether ``mailnet run`` takes ``--summary-only``."""
    done = subprocess.run(
        [*MAILNET, "run", "--help"], capture_output=True, text=True, check=False, env=_env()
    )
    return "--summary-only" in done.stdout


def _env() -> dict[str, str]:
    return dict(os.environ, COLUMNS="200")


def run_once(scenario: Path, overrides: list[str], mode: str, out: Path) -> dict:
    """One ``mailnet run`` in a fresh process: wall seconds, peak RSS (bytes), messages
    (DSNs included) or the reason it was refused."""
    command = [*MAILNET, "run", str(scenario), "--out", str(out), "--force", "--quiet"]
    for item in overrides:
        command += ["--set", item]
    if mode == "summary-only":
        command.append("--summary-only")
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env()
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    row: dict = {"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": usage.ru_maxrss * 1024}
    if child.returncode != 0:
        row["error"] = (errors.strip().splitlines() or ["exit " + str(child.returncode)])[-1]
        return row
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    row["messages"] = summary["messages"] + summary["dsn"]["messages"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k" if QUICK else "100k,1M,5M")
    parser.add_argument("--modes", default="summary-only,tables")
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "summary-only" in modes and not has_summary_only():
        print("note: this mailnet run has no --summary-only; that mode is skipped")
        modes.remove("summary-only")
    header = f"{'target':>8} {'mode':<13} {'users':>10} {'messages':>10} {'wall s':>8}"
    print(f"{header} {'CPU s':>8} {'CPU us/msg':>10} {'peak RSS MB':>12} {'RSS KB/msg':>10}")
    with tempfile.TemporaryDirectory(prefix="bench_scale.") as tmp:
        for size in [parse_size(s) for s in args.sizes.split(",") if s.strip()]:
            users = users_for(size, args.scenario, args.overrides)
            overrides = [*args.overrides, f"internet.users={users}"]
            for mode in modes:
                row = run_once(args.scenario, overrides, mode, Path(tmp) / "run")
                _print(size, mode, users, row)


def _print(size: int, mode: str, users: int, row: dict) -> None:
    lead = f"{size:>8,} {mode:<13} {users:>10,}"
    rss = row["peak_rss_bytes"]
    if "error" in row:
        print(f"{lead} refused or failed after {row['wall_s']:.1f} s: {row['error']}")
        return
    messages = row["messages"]
    per = row["cpu_s"] / messages * 1e6
    print(
        f"{lead} {messages:>10,} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} {per:>10.0f} "
        f"{rss / 2**20:>12,.0f} {rss / messages / 1024:>10.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
