"""Parameter sweeps: an experiment file (base scenario, grid, linked factors, replications)
run on local processes or a Dask cluster, with results as Parquet tables.

>>> from mailnet.sweep import sweep
>>> result = sweep("experiments/sweeps/example.toml", workers=2)  # doctest: +SKIP
>>> result.points  # one row per grid point: means and 95 % confidence intervals
"""

from mailnet.sweep.backends import SweepError
from mailnet.sweep.experiment import Experiment, load_experiment, replication_seed
from mailnet.sweep.runner import SweepResult, sweep
from mailnet.sweep.stats import confidence_interval

__all__ = ["Experiment", "SweepError", "SweepResult", "confidence_interval", "load_experiment",
           "replication_seed", "sweep"]
