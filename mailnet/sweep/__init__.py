"""Parameter sweeps: a base scenario, swept factors and replications, run on local
processes or a Dask cluster, with results as Parquet tables.

An experiment file (paths relative to it; keys in TOML dotted-key syntax)::

    base = "../scenarios/baseline.toml"
    replications = 20                  # runs per grid point (default 1)
    seed = 1                           # replication r runs with replication_seed(seed, r)
    [grid]                             # every combination of these lists
    "providers.isp.ip_selection" = ["round-robin", "sender-hash"]
    [linked]                           # these lists change together, value by value
    'servers."mx1.bigmail.example".outages.mttr' = ["1h", "4h"]
    'servers."mx2.bigmail.example".outages.mttr' = ["1h", "4h"]

From Python (or ``mailnet sweep EXPERIMENT`` on the command line)::

    from mailnet.sweep import sweep
    result = sweep("experiments/sweeps/example.toml", workers=2)
    result.points   # one row per grid point: means and 95 % confidence intervals
"""

from typing import TYPE_CHECKING

from mailnet.lazy import export_lazily

if TYPE_CHECKING:
    from mailnet.sweep.backends import SweepError
    from mailnet.sweep.experiment import Experiment, load_experiment, replication_seed
    from mailnet.sweep.runner import SweepResult, sweep
    from mailnet.sweep.stats import confidence_interval

__all__ = [
    "Experiment",
    "SweepError",
    "SweepResult",
    "confidence_interval",
    "load_experiment",
    "replication_seed",
    "sweep",
]

# pandas, SciPy and Dask load with the first name used, not with the package
export_lazily(
    __name__,
    {
        "mailnet.sweep.backends": ["SweepError"],
        "mailnet.sweep.experiment": ["Experiment", "load_experiment", "replication_seed"],
        "mailnet.sweep.runner": ["SweepResult", "sweep"],
        "mailnet.sweep.stats": ["confidence_interval"],
    },
)
