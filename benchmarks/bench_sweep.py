"""Sweep throughput: serial runs, a local process pool and a Dask LocalCluster.

A 200-run sweep of short runs (about 50-100 ms each: one provider sending to one MX with
random outages for three simulated hours), run through ``mailnet.sweep.sweep`` end to end,
part files and tables included. Backends run interleaved, round by round, so the noise of
a shared host spreads over all of them; the table gives medians (and min-max) of the
rounds. Dask cluster start-up is timed separately; process-pool start-up is part of each
sweep, as it is for users.

    .venv/bin/python benchmarks/bench_sweep.py [--runs 200] [--rounds 3] [--workers 2]

Columns: ``speedup`` is serial / backend; ``efficiency`` is speedup / workers (ideal 1.0);
``overhead per run`` is (backend - process pool) / runs, the cost Dask adds to each run.
The script also checks that every backend produced identical ``runs.parquet`` tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
from distributed import Client, LocalCluster

from mailnet.environment import environment
from mailnet.sweep import sweep

BASE = textwrap.dedent("""
    [simulation]
    duration = "3h"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 20
    rate = "30/h"
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx.dest.example", preference = 10 } ]
    [servers."mx.dest.example"]
    sessions = 2
    backlog = 10
    service_time = { dist = "exponential", mean = "5s" }
    outages = { mtbf = "2h", mttr = "20m" }
""")

EXPERIMENT = """
base = "base.toml"
replications = {replications}
seed = 1
[grid]
'servers."mx.dest.example".sessions' = [2, 3]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per sweep (even)")
    parser.add_argument(
        "--rounds", type=int, default=1 if os.environ.get("BENCH_QUICK") == "1" else 3
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        folder = Path(tmp)
        (folder / "base.toml").write_text(BASE)
        experiment = folder / "exp.toml"
        experiment.write_text(EXPERIMENT.format(replications=args.runs // 2))
        n_runs = 2 * (args.runs // 2)

        # the first pool of a process starts the forkserver, which imports the model once;
        # time that apart, as Dask's start-up, so the rounds compare steady states
        started = time.perf_counter()
        sweep(experiment, workers=args.workers, out=folder / "warm-up", progress=False)
        pool_cold = time.perf_counter() - started

        started = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(folder / "dask"),
            silence_logs=40,
        )
        client = Client(cluster)
        client.wait_for_workers(args.workers)
        dask_startup = time.perf_counter() - started

        backends = {
            "serial (this process)": {"workers": 1},
            f"process pool, {args.workers} workers": {"workers": args.workers},
            f"Dask LocalCluster, {args.workers}x1 thread": {"client": client},
            f"Dask LocalCluster, {args.workers}x1, 1 run/task": {"client": client, "chunk_size": 1},
        }
        times: dict[str, list[float]] = {name: [] for name in backends}
        run_times: list[float] = []
        reference = None
        for round_ in range(args.rounds):
            for i, (name, options) in enumerate(backends.items()):
                out = folder / f"out-{round_}-{i}"
                t0 = time.perf_counter()
                result = sweep(experiment, out=out, progress=False, **options)
                times[name].append(time.perf_counter() - t0)
                runs = result.runs.drop(columns="wall_time_s")
                if reference is None:
                    reference = runs
                    run_times.extend(result.runs["wall_time_s"])
                pd.testing.assert_frame_equal(runs, reference)
                print(f"round {round_ + 1}: {name}: {times[name][-1]:.2f} s", flush=True)
        client.close()
        cluster.close()

    _report(
        times,
        n_runs=n_runs,
        workers=args.workers,
        pool_cold=pool_cold,
        dask_startup=dask_startup,
        run_times=run_times,
    )


def _report(
    times: dict[str, list[float]],
    *,
    n_runs: int,
    workers: int,
    pool_cold: float,
    dask_startup: float,
    run_times: list[float],
) -> None:
    names = list(times)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    serial, pool = median[names[0]], median[names[1]]
    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    print(", ".join(f"{name} {version}" for name, version in environment().items()))
    print(
        f"{n_runs} runs, median run {1000 * statistics.median(run_times):.0f} ms "
        f"(serial, in-process); {len(times[names[0]])} rounds"
    )
    print(
        f"not included below: first process-pool sweep of the process {pool_cold:.2f} s "
        f"(forkserver start, imports, {n_runs} runs); Dask LocalCluster start-up "
        f"{dask_startup:.2f} s"
    )
    header = (
        f"{'backend':<40} {'median s':>9} {'min-max s':>12} {'speedup':>8} "
        f"{'efficiency':>10} {'overhead/run vs pool':>21}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        ts = times[name]
        speedup = serial / median[name]
        is_parallel = name != names[0]
        efficiency = f"{speedup / workers:.2f}" if is_parallel else "-"
        overhead = (
            f"{1000 * (median[name] - pool) / n_runs:+.2f} ms" if name not in names[:2] else "-"
        )
        print(
            f"{name:<40} {median[name]:>9.2f} {min(ts):>5.2f}-{max(ts):<6.2f} "
            f"{speedup:>8.2f} {efficiency:>10} {overhead:>21}"
        )
    print(
        f"\nDask / process pool: {median[names[2]] / pool:.2f}x (adaptive chunks), "
        f"{median[names[3]] / pool:.2f}x (one run per task)"
    )


if __name__ == "__main__":
    main()
