"""Time the command line's start: help, presets and argument errors against bare Python
and ``python -c "import pandas"``.

Every case runs in a fresh process, as a user's shell starts it; the cases run
interleaved, round by round (the order rotating each round), so the noise of a shared host
spreads over all of them. The table gives the median wall time of the rounds (and min-max),
the median peak RSS of the process, and ``x pandas``: the median over rounds of the case's
time divided by ``import pandas`` in the same round, a ratio that holds up under load where
the absolute times do not. The goal is at most 1.5x ``import pandas`` for the mailnet
cases. Usage::

    .venv/bin/python benchmarks/bench_cli.py [--rounds 20]

``BENCH_QUICK=1`` in the environment makes 5 rounds the default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.5
"""The most a mailnet case may take, as a multiple of ``import pandas``."""

MAILNET = str(Path(sys.executable).with_name("mailnet"))
"""The console script installed beside this interpreter."""

CASES: dict[str, tuple[list[str], int]] = {
    "python -c pass": ([sys.executable, "-c", "pass"], 0),
    "python -c 'import pandas'": ([sys.executable, "-c", "import pandas"], 0),
    "mailnet --help": ([MAILNET, "--help"], 0),
    "mailnet presets": ([MAILNET, "presets"], 0),
    "mailnet run --help": ([MAILNET, "run", "--help"], 0),
    "mailnet run missing.toml": ([MAILNET, "run", "no-such-scenario.toml"], 2),
    "mailnet run --bad-option": ([MAILNET, "run", "--no-such-option", "x.toml"], 2),
}
"""Each case: its command and the exit status it must end with (else the bench stops)."""

PANDAS = "python -c 'import pandas'"


def once(command: list[str], expected: int) -> tuple[float, float]:
    """Run ``command`` once in a fresh process: wall seconds and peak RSS in MB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != expected:
        sys.exit(f"{' '.join(command)}: exit status {process.returncode}, not {expected}")
    return wall, usage.ru_maxrss / 1024


def measure(rounds: int) -> dict[str, list[tuple[float, float]]]:
    """``rounds`` interleaved rounds of every case: (wall s, peak RSS MB) per round."""
    names = list(CASES)
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seen[name].append(once(*CASES[name]))
    return seen


def report(seen: dict[str, list[tuple[float, float]]]) -> None:
    """Print the table: medians, min-max, peak RSS and the ratio to ``import pandas``."""
    pandas = [wall for wall, _ in seen[PANDAS]]
    print(f"{'case':<28} {'median ms':>9} {'min-max ms':>13} {'peak MB':>8} {'x pandas':>8}")
    worst = 0.0
    for name, rows in seen.items():
        walls = [wall for wall, _ in rows]
        ratio = statistics.median(w / p for w, p in zip(walls, pandas, strict=True))
        if name.startswith("mailnet"):
            worst = max(worst, ratio)
        print(
            f"{name:<28} {statistics.median(walls) * 1e3:>9.0f} "
            f"{min(walls) * 1e3:>6.0f}-{max(walls) * 1e3:<6.0f} "
            f"{statistics.median(rss for _, rss in rows):>8.0f} {ratio:>8.2f}"
        )
    verdict = "met" if worst <= GOAL else "NOT met"
    print(f"slowest mailnet case: {worst:.2f}x import pandas (goal <= {GOAL}x: {verdict})")


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5 if quick else 20)
    args = parser.parse_args()
    print(f"rounds           {args.rounds}, interleaved; {sys.executable}")
    report(measure(args.rounds))


if __name__ == "__main__":
    main()
