"""mailnet against a bare SimPy M/M/4 model: customers per second of each, and the ratio.

The bare model is des-performance.md §1's: lambda = 3.2/s, mu = 1/s, c = 4 (rho = 0.8),
one SimPy process per customer holding a ``simpy.Resource`` slot, every wait recorded.
mailnet's is the equivalent world of ``experiments/scenarios/mmc.toml`` (one sender
population, one MX with 4 sessions, exponential service, no outages), run for as long as
the customers take to arrive. Each run is a fresh process (so peak RSS is that run's own);
the two models alternate round by round, so the host's noise spreads over both, and the
medians are reported. Wall time covers building and running a model, not the imports.
Where the compiled model is built (``make compiled``), mailnet also runs from its sources
(``MAILNET_PURE=1``) in each round, and both ratios are reported.
Usage::

    .venv/bin/python benchmarks/bench_mmc.py [--customers 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

QUICK = os.environ.get("BENCH_QUICK") == "1"
"""Fewer and smaller runs (``BENCH_QUICK=1 make bench``): a first look."""

LAMBDA = 3.2  # arrivals per second
SCENARIO = "experiments/scenarios/mmc.toml"

SIMPY = r"""
import json, random, resource, sys, time
import simpy

def run(n, lam=3.2, mu=1.0, c=4, seed=12345):
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    arrivals, services = random.Random(seed), random.Random(seed + 1)
    waits = []

    def customer():
        arrived = env.now
        with servers.request() as request:
            yield request
            waits.append(env.now - arrived)
            yield env.timeout(services.expovariate(mu))

    def source():
        for _ in range(n):
            yield env.timeout(arrivals.expovariate(lam))
            env.process(customer())

    env.process(source())
    env.run()
    return waits

n = int(sys.argv[1])
t0 = time.perf_counter()
waits = run(n)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": wall,
    "customers": len(waits),
    "mean_wait_s": sum(waits) / len(waits),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

MAILNET = r"""
import json, resource, sys, time, warnings
import mailnet

from mailnet import compiled
warnings.simplefilter("ignore")  # the scaled warm-up notice
# the imports mailnet makes on first use (pandas, pydantic, the model), outside the timing
# as the bare model's ``import simpy`` is: a run of one simulated second loads them all
mailnet.simulate(mailnet.load_scenario(sys.argv[1], overrides=["simulation.duration=1s"]))
t0 = time.perf_counter()
scenario = mailnet.load_scenario(sys.argv[1], overrides=[f"simulation.duration={sys.argv[2]}s"])
result = mailnet.simulate(scenario)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": wall,
    "customers": result.summary["messages"],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "compiled": compiled.active(),
}))
"""


BUILT = "import json; from mailnet import compiled; print(json.dumps(compiled.built()))"
"""Whether the compiled model is built (``make compiled``): then the sources run too."""


def _child(code: str, args: list[str], *, pure: bool = False) -> dict:
    """Run ``code`` in a fresh interpreter (``pure``: mailnet's model from its sources)
    and return the JSON of its last line."""
    env = {k: v for k, v in os.environ.items() if k != "MAILNET_PURE"}
    if pure:
        env["MAILNET_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _line(name: str, rows: list[dict]) -> tuple[str, float]:
    walls = [r["wall_s"] for r in rows]
    rates = sorted(r["customers"] / r["wall_s"] for r in rows)
    rate = statistics.median(rates)
    rss = statistics.median(r["peak_rss_mb"] for r in rows)
    text = (
        f"{name:<8} {rows[0]['customers']:>9,} customers  wall s median "
        f"{statistics.median(walls):6.2f} (min {min(walls):.2f}, max {max(walls):.2f})  "
        f"{rate:>9,.0f} customers/s  peak RSS {rss:4.0f} MB"
    )
    return text, rate


def _paired(simpy_rows: list[dict], mailnet_rows: list[dict]) -> list[float]:
    """mailnet's customers per second over bare SimPy's, in each round."""
    return [
        (m["customers"] / m["wall_s"]) / (b["customers"] / b["wall_s"])
        for b, m in zip(simpy_rows, mailnet_rows, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000 if QUICK else 100_000)
    parser.add_argument("--rounds", type=int, default=1 if QUICK else 3)
    parser.add_argument("--scenario", default=SCENARIO)
    args = parser.parse_args()
    duration = args.customers / LAMBDA
    both = _child(BUILT, []) is True
    simpy_rows, mailnet_rows, pure_rows = [], [], []
    for _ in range(args.rounds):
        simpy_rows.append(_child(SIMPY, [str(args.customers)]))
        mailnet_rows.append(_child(MAILNET, [args.scenario, repr(duration)]))
        if both:
            pure_rows.append(_child(MAILNET, [args.scenario, repr(duration)], pure=True))
    print(f"M/M/4, lambda {LAMBDA}/s, mu 1/s, {args.rounds} interleaved rounds, medians")
    simpy_text, simpy_rate = _line("simpy", simpy_rows)
    name = "mailnet" if mailnet_rows[0]["compiled"] else "mailnet (model from its sources)"
    mailnet_text, mailnet_rate = _line(name, mailnet_rows)
    print(simpy_text)
    print(mailnet_text)
    print(f"ratio    mailnet/simpy customers per second {mailnet_rate / simpy_rate:.2f}")
    # each round's own ratio: the two models ran back to back, so a slower spell of the
    # host slows both, where the medians above may come from different spells
    paired = _paired(simpy_rows, mailnet_rows)
    print(
        f"ratio    round by round: median {statistics.median(paired):.2f} "
        f"(min {min(paired):.2f}, max {max(paired):.2f})"
    )
    if both:
        pure_text, pure_rate = _line("sources", pure_rows)
        print(pure_text)
        print(f"ratio    mailnet from its sources/simpy {pure_rate / simpy_rate:.2f}")
        print(f"ratio    compiled/sources {mailnet_rate / pure_rate:.2f}")
    print(f"simpy mean wait {simpy_rows[0]['mean_wait_s']:.4f} s (Erlang C: 0.7455 s)")


if __name__ == "__main__":
    main()
