"""Peak memory of a sweep that keeps its runs' tables (``--keep-tables``).

Runs, in a fresh process, a sweep of a scenario (default: the baseline) for each duration
given, ``--replications`` runs each on ``--workers`` processes, keeping every run's
tables under a temporary results directory. While it runs, the process tree (the sweep,
the fork server and the workers) is sampled every ``SAMPLE_S`` seconds from outside: the
sum of their resident memory (``VmRSS``) and each process's own peak (``VmHWM``). Prints,
per duration, messages per run, the sweep process's peak RSS, the largest worker's, the
sampled peak of the whole tree, and wall time. Usage::

    .venv/bin/python benchmarks/bench_sweep_memory.py [--durations 1d 4d]
        [--replications 2] [--workers 2] [--scenario PATH]

To compare with another tree, put it first on ``PYTHONPATH`` (the workers inherit it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

QUICK = os.environ.get("BENCH_QUICK") == "1"
"""Fewer and smaller runs (``BENCH_QUICK=1 make bench``): a first look."""

ROOT = Path(__file__).resolve().parent.parent

SAMPLE_S = 0.1
"""Seconds between two samples of the process tree."""

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path

import mailnet
from mailnet.sweep import sweep

scenario, duration, replications, workers = sys.argv[1:5]
with tempfile.TemporaryDirectory(prefix="bench_sweep_memory_") as tmp:
    folder = Path(tmp)
    (folder / "exp.toml").write_text(
        f'base = "{Path(scenario).resolve()}"\nreplications = {replications}\n'
        f'[grid]\n"simulation.duration" = ["{duration}"]\n'
    )
    t0 = time.perf_counter()
    result = sweep(
        folder / "exp.toml", workers=int(workers), out=folder / "out", keep_tables=True,
        progress=False,
    )
    wall = time.perf_counter() - t0
    assert result.status == "complete" and (result.runs["status"] == "ok").all()
    print(json.dumps({
        "wall_s": round(wall, 1),
        "messages_per_run": int(result.runs["messages"].mean()),
        "sweep_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "mailnet": str(Path(mailnet.__file__).parent),
    }))
"""


def _status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of process ``pid`` in kB, and its parent's pid."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM", "PPid"}:
            fields[key] = int(value.split()[0])
    return fields


def _tree(root: int) -> dict[int, dict[str, int]]:
    """The status of ``root`` and of every process descending from it."""
    statuses = {int(p): _status(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    tree = {root}
    grown = True
    while grown:
        children = {p for p, s in statuses.items() if s.get("PPid") in tree} - tree
        tree |= children
        grown = bool(children)
    return {p: statuses[p] for p in tree if statuses.get(p)}


def run(scenario: str, duration: str, replications: int, workers: int) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-P", "-c", CHILD, scenario, duration, str(replications), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    tree_peak = 0
    process_peak: dict[int, int] = {}
    while child.poll() is None:
        tree = _tree(child.pid)
        tree_peak = max(tree_peak, sum(s.get("VmRSS", 0) for s in tree.values()))
        for pid, status in tree.items():
            process_peak[pid] = max(process_peak.get(pid, 0), status.get("VmHWM", 0))
        time.sleep(SAMPLE_S)
    stdout, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"the sweep failed (exit status {child.returncode})")
    figures = json.loads(stdout.strip().splitlines()[-1])
    others = [kb for pid, kb in process_peak.items() if pid != child.pid]
    figures["largest_worker_rss_mb"] = round(max(others, default=0) / 1024, 1)
    figures["tree_rss_mb"] = round(tree_peak / 1024, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "experiments/scenarios/baseline.toml"))
    parser.add_argument("--durations", nargs="+", default=["1d"] if QUICK else ["1d", "4d"])
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for duration in args.durations:
        figures = run(args.scenario, duration, args.replications, args.workers)
        print(
            json.dumps(
                {
                    "duration": duration,
                    "replications": args.replications,
                    "workers": args.workers,
                    **figures,
                }
            ),
            flush=True,
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
