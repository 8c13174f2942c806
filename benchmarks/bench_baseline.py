"""Time the baseline scenario: wall time, messages per second and peak memory.

Each round runs in a fresh process (so peak RSS is that run's own), rounds are repeated
and the median reported. The number of SimPy events comes from one more, untimed run in an
environment that counts what it schedules, so counting never slows the timed runs. Where
the compiled model is built (``make compiled``), each round also runs the model from its
sources (``MAILNET_PURE=1``), alternating, and the ratio of the medians is reported. Usage::

    .venv/bin/python benchmarks/bench_baseline.py [--rounds 5] [--scenario PATH] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
# the modules a run needs, imported before the clock starts: the run alone is timed
from mailnet import compiled
from mailnet.scenario import load_scenario
from mailnet.simulate import simulate
t0 = time.perf_counter()
scenario = load_scenario(sys.argv[1], overrides=sys.argv[2:])
result = simulate(scenario)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": wall,
    "messages": result.summary["messages"] + result.summary["dsn"]["messages"],
    "recipient_rows": len(result.messages),
    "attempts": len(result.attempts),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "compiled": compiled.active(),
}))
"""

COUNT_EVENTS = r"""
import json, sys
import simpy
import mailnet

class CountingEnvironment(simpy.Environment):
    # counts every event scheduled: what the run processes

    def __init__(self):
        super().__init__()
        self.scheduled = 0

    def schedule(self, event, priority=simpy.core.NORMAL, delay=0):
        self.scheduled += 1
        super().schedule(event, priority, delay)

env = CountingEnvironment()
mailnet.simulate(mailnet.load_scenario(sys.argv[1], overrides=sys.argv[2:]), environment=env)
print(json.dumps({"events": env.scheduled}))
"""


BUILT = "import json; from mailnet import compiled; print(json.dumps(compiled.built()))"
"""Whether the compiled model is built (``make compiled``): then the sources run too."""


def _child(code: str, args: list[str], *, pure: bool = False) -> dict:
    """Run ``code`` in a fresh interpreter (``pure``: the model from its sources) and
    return the JSON of its last line."""
    env = {k: v for k, v in os.environ.items() if k != "MAILNET_PURE"}
    if pure:
        env["MAILNET_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _compiled_built() -> bool:
    return _child(BUILT, []) is True


def _report(name: str, rows: list[dict], events: int) -> float:
    walls = [r["wall_s"] for r in rows]
    median = statistics.median(walls)
    first = rows[0]
    print(f"{name}")
    print(f"  wall s         median {median:.2f} (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  messages       {first['messages']:,} ({first['recipient_rows']:,} recipient rows)")
    print(f"  messages/s     {first['messages'] / median:,.0f}")
    print(f"  attempts       {first['attempts']:,}")
    print(
        f"  SimPy events   {events:,} ({events / median:,.0f}/s, "
        f"{median / events * 1e6:.2f} us each)"
    )
    rss = [r["peak_rss_mb"] for r in rows]
    print(f"  peak RSS MB    median {statistics.median(rss):.0f}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=2 if os.environ.get("BENCH_QUICK") == "1" else 5
    )
    parser.add_argument("--scenario", default="experiments/scenarios/baseline.toml")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    child_args = [args.scenario, *args.overrides]
    both = _compiled_built()
    rows: list[dict] = []
    pure_rows: list[dict] = []
    for _ in range(args.rounds):
        rows.append(_child(CHILD, child_args))
        if both:
            pure_rows.append(_child(CHILD, child_args, pure=True))
    events = _child(COUNT_EVENTS, child_args)["events"]
    print(f"scenario         {args.scenario} {' '.join(args.overrides)}")
    print(f"rounds           {args.rounds}{', alternating' if both else ''}")
    median = _report(
        "compiled model" if rows[0]["compiled"] else "model from its sources", rows, events
    )
    if both:
        pure = _report("model from its sources (MAILNET_PURE=1)", pure_rows, events)
        print(f"sources / compiled, median wall: {pure / median:.2f}")


if __name__ == "__main__":
    main()
