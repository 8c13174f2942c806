"""Peak memory of summary-only and streamed runs against their number of messages.

Runs a scenario (default: the baseline) in summary-only mode for each duration given, each
in a fresh process so its peak RSS is its own, and prints messages created, peak RSS and
wall time, then the largest peak over the smallest and the growth per message between
the smallest and the largest run. The baseline makes about 65,000 messages a day, so the
default durations give about 1 M and 5 M messages (a long run: the 5 M one takes tens of
minutes). ``--users`` varies ``internet.users`` instead, for the generated internet
(``--scenario experiments/scenarios/internet.toml``: 50,000 users make 75,283 messages in
its day, spam and notifications included). Usage::

    .venv/bin/python benchmarks/bench_memory.py [--durations 16d 78d] [--full]
        [--scenario PATH] [--set K=V ...] [--users N ...]

``--full`` runs with the tables kept in memory instead, to compare; ``--streamed`` streams
them to Parquet files in a temporary directory as ``mailnet run`` does, and also prints
the peak RSS sampled while the model ran (``run_rss_mb``: before the tables are read
back for the summary), which should not grow with the run.

A summary-only run holds the messages still in flight (queued, in a session, or settled
and awaiting their fold), about 1.8 KB each, and keeps no row of a finished one; so its
peak follows the largest backlog the run meets (``peak_in_flight``, sampled at each of the
run's 500 progress steps), not its length. The baseline's random outages give a longer
run a longer worst outage: ``mx.corp.example`` refuses for 3 hours on average once a day,
and the 78-day run meets one on day 38 that queues about 11,500 messages for
``corp.example``, which the 16-day run does not. ``--set`` takes the random outages out,
to compare runs of the same worst backlog::

    --set 'servers."mx1.bigmail.example".outages=[]'
    --set 'servers."mx2.bigmail.example".outages=[]'
    --set 'servers."mx.corp.example".outages=[]'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

QUICK = os.environ.get("BENCH_QUICK") == "1"
"""Fewer and smaller runs (``BENCH_QUICK=1 make bench``): a first look."""

CHILD = r"""
import importlib, json, os, resource, sys, tempfile, time
import mailnet

mode = sys.argv[1]
page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
run_rss = [0.0]
in_flight = [0]
logs = []
simulation = importlib.import_module("mailnet.simulate")
world = simulation.World

def made(scenario, env, streams, log, **options):
    # the event log ``simulate`` gives the world: its messages table (a folding table in a
    # summary-only or streamed run, a compiled class) counts the messages it holds
    logs.append(log)
    return world(scenario, env, streams, log, **options)

simulation.World = made

def sample(now, created):
    with open("/proc/self/statm") as statm:
        run_rss[0] = max(run_rss[0], int(statm.read().split()[1]) * page_mb)
    count = getattr(logs[-1].messages, "in_flight", None) if logs else None
    if count is not None:  # a folding table: not the tables kept in memory (--full)
        in_flight[0] = max(in_flight[0], count())

t0 = time.perf_counter()
scenario = mailnet.load_scenario(sys.argv[2], overrides=sys.argv[3:])
with tempfile.TemporaryDirectory() as tables:
    result = mailnet.simulate(
        scenario,
        summary_only=mode == "summary",
        tables_dir=tables if mode == "streamed" else None,
        progress=sample,
    )
print(json.dumps({
    "wall_s": round(time.perf_counter() - t0, 1),
    "messages": result.summary["messages"] + result.summary["dsn"]["messages"],
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "run_rss_mb": round(run_rss[0], 1),
    "peak_in_flight": in_flight[0] if mode != "full" else None,
}))
"""


def run(scenario: str, overrides: list[str], mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, scenario, *overrides],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"the {mode} run failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="experiments/scenarios/baseline.toml")
    parser.add_argument("--durations", nargs="+", default=["2d", "8d"] if QUICK else ["16d", "78d"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--users", nargs="+", help="vary internet.users, not the duration")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--full", action="store_true", help="keep the tables in memory instead")
    kept.add_argument("--streamed", action="store_true", help="stream the tables to Parquet")
    args = parser.parse_args()
    mode = "full" if args.full else "streamed" if args.streamed else "summary"
    key, values = (
        ("internet.users", args.users) if args.users else ("simulation.duration", args.durations)
    )
    sizes = []
    for value in values:
        figures = run(args.scenario, [*args.overrides, f"{key}={value}"], mode)
        sizes.append((figures["messages"], figures["peak_rss_mb"]))
        print(json.dumps({"mode": mode, key: value, **figures}), flush=True)
    peaks = [peak for _, peak in sizes]
    print(f"largest peak / smallest: {max(peaks) / min(peaks):.3f}")
    (few, low), (many, high) = min(sizes), max(sizes)
    if many > few:
        print(f"growth: {(high - low) * 2**20 / (many - few):.0f} bytes per message")


if __name__ == "__main__":
    main()
