"""Global sensitivity analysis on the sweep machinery: Morris screening or Sobol' indices.

A sensitivity file is an experiment file whose ``[ranges]`` give each uncertain key its
interval instead of listing values, with the design in ``[sensitivity]``::

    base = "../scenarios/shared_ip_spam.toml"
    replications = 2                      # runs per design point, averaged
    seed = 1
    [grid]                                # optional: keys fixed at one value
    "simulation.duration" = ["1d"]
    [ranges]
    "senders.spammer.rate" = ["500/d", "4000/d"]
    "blocklists.spamcop.trap_hits" = [1, 5]
    [sensitivity]
    method = "morris"                     # or "sobol"
    trajectories = 10                     # morris: r(D+1) design points
    levels = 4
    # samples = 64                        # sobol: N(2D+2) design points, N a power of 2
    # metrics = ["collateral.rate"]       # what to analyse (default: the headline metrics)

SALib draws the design (Morris 1991 with Campolongo's mu*; Saltelli's scheme for Sobol'),
each design point becomes a point of an ordinary sweep (run locally or on Dask, resumable,
replication r sharing a seed at every point, so each elementary effect is a difference
under common random numbers: output-analysis.md §9), and SALib analyses the mean over
replications of each metric. Durations and rates in ranges are written as in a scenario
(``"1h"``, ``"20/h"``) and sampled in seconds and events per second; an integer key's
range gives integers (rounded, so the design is slightly coarser).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mailnet.errors import ScenarioError
from mailnet.scenario.loading import read_toml
from mailnet.sweep.experiment import Experiment
from mailnet.units import parse_duration, parse_rate

METHODS = ("morris", "sobol")
MAX_DESIGN_POINTS = 100_000


@dataclass(frozen=True)
class Design:
    """A sensitivity design: the SALib ``problem``, the sample matrix (one row per design
    point, in the keys' units) and the settings the analysis must repeat."""

    method: str
    keys: tuple[str, ...]
    integer: tuple[bool, ...]
    problem: dict[str, Any]
    sample: np.ndarray
    levels: int
    seed: int
    metrics: tuple[str, ...] = ()
    """The metrics the file names for the analysis (``[sensitivity] metrics``); empty:
    the headline metrics."""

    def values(self) -> dict[str, list[Any]]:
        """The value of each key at every design point, as the scenario takes it."""
        return {
            key: [round(float(v)) if whole else float(v) for v in self.sample[:, i]]
            for i, (key, whole) in enumerate(zip(self.keys, self.integer, strict=True))
        }


def load_sensitivity(path: str | Path) -> tuple[Experiment, Design]:
    """Read a sensitivity file: the experiment of its design points, and the design.
    Raises ``ScenarioError`` naming the file and key of anything wrong."""
    path = Path(path)
    raw = read_toml(path)
    source = str(path)
    ranges = raw.pop("ranges", None)
    settings = raw.pop("sensitivity", {})
    if not isinstance(ranges, dict) or not ranges:
        raise ScenarioError(source, "ranges", "give each uncertain key its [low, high] range")
    grid = raw.get("grid") or {}
    fixed = isinstance(grid, dict) and all(
        isinstance(v, list) and len(v) == 1 for v in grid.values()
    )
    if not fixed or raw.get("linked") or "labels" in raw:
        raise ScenarioError(
            source,
            "grid",
            "a sensitivity file varies keys by [ranges] only ([grid] may fix keys at one value)",
        )
    if not isinstance(settings, dict):
        raise ScenarioError(source, "sensitivity", "must be a table")
    design = _design(ranges, settings, source)
    raw["linked"] = design.values()
    experiment = Experiment.from_dict(raw, source=source, base_dir=path.parent, name=path.stem)
    return experiment, design


def _design(ranges: dict[str, Any], settings: dict[str, Any], source: str) -> Design:
    unknown = set(settings) - {"method", "trajectories", "levels", "samples", "seed", "metrics"}
    if unknown:
        raise ScenarioError(source, f"sensitivity.{sorted(unknown)[0]}", "unknown key")
    method = settings.get("method", "morris")
    if method not in METHODS:
        raise ScenarioError(source, "sensitivity.method", f"must be one of {', '.join(METHODS)}")
    seed = _whole(settings.get("seed", 1), source, "sensitivity.seed", 0)
    keys, bounds, integer = [], [], []
    for key, pair in ranges.items():
        low, high, whole = _bounds(pair, source, f"ranges.{key}")
        keys.append(key)
        bounds.append([low, high])
        integer.append(whole)
    problem = {"num_vars": len(keys), "names": keys, "bounds": bounds}
    levels = _whole(settings.get("levels", 4), source, "sensitivity.levels", 2)
    if method == "morris":
        from SALib.sample import morris  # noqa: PLC0415 - loads only for an analysis

        r = _whole(settings.get("trajectories", 10), source, "sensitivity.trajectories", 2)
        _check_size(r * (len(keys) + 1), source, "sensitivity.trajectories")
        sample = morris.sample(problem, N=r, num_levels=levels, seed=seed)
    else:
        from SALib.sample import sobol  # noqa: PLC0415

        n = _whole(settings.get("samples", 64), source, "sensitivity.samples", 2)
        if n & (n - 1):
            raise ScenarioError(source, "sensitivity.samples", "must be a power of 2")
        _check_size(n * (2 * len(keys) + 2), source, "sensitivity.samples")
        sample = sobol.sample(problem, n, calc_second_order=True, scramble=True, seed=seed)
    metrics = _metrics(settings.get("metrics", []), source)
    return Design(method, tuple(keys), tuple(integer), problem, sample, levels, seed, metrics)


def _metrics(value: Any, source: str) -> tuple[str, ...]:
    """``[sensitivity] metrics``: summary metrics the catalogue declares."""
    from mailnet.metric_catalog import lookup  # noqa: PLC0415

    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise ScenarioError(source, "sensitivity.metrics", "must be a list of metric names")
    for name in value:
        if lookup(name) is None:
            raise ScenarioError(source, "sensitivity.metrics", f"unknown metric {name!r}")
    return tuple(value)


def _bounds(pair: Any, source: str, key: str) -> tuple[float, float, bool]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ScenarioError(source, key, "must be a list [low, high]")
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    try:
        low, high = (_number(v) for v in pair)
    except ValueError as error:
        raise ScenarioError(source, key, str(error)) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ScenarioError(source, key, "needs finite bounds with low < high")
    return low, high, whole


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, a duration or a rate, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_rate(value) if "/" in value else parse_duration(value)
    raise ValueError(f"expected a number, a duration or a rate, got {value!r}")


def _whole(value: Any, source: str, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(source, key, f"must be a whole number of at least {minimum}")
    return value


def _check_size(points: int, source: str, key: str) -> None:
    if points > MAX_DESIGN_POINTS:
        raise ScenarioError(
            source, key, f"gives {points} design points, more than {MAX_DESIGN_POINTS}"
        )


def analyse(design: Design, runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The indices of every metric: one row per (metric, key).

    Morris: ``mu_star`` (mean absolute elementary effect, in the metric's units per unit
    of the key's normalised range), its ``mu_star_conf`` and ``sigma`` (nonlinearity or
    interaction). Sobol': ``S1``, ``ST`` and their ``_conf`` half-widths. A metric must be
    defined at every design point (its mean over ok replications); others are skipped.
    """
    from SALib.analyze import morris, sobol  # noqa: PLC0415

    ok = runs[runs["status"] == "ok"]
    means = ok.groupby("point")[[m for m in metrics if m in ok.columns]].mean()
    means = means.reindex(range(len(design.sample)))
    rows = []
    for metric in means.columns:
        y = means[metric].to_numpy(dtype=float)
        if np.isnan(y).any():
            continue
        if design.method == "morris":
            result = morris.analyze(
                design.problem, design.sample, y, num_levels=design.levels, seed=design.seed
            )
            fields = ("mu_star", "mu_star_conf", "sigma", "mu")
        else:
            result = sobol.analyze(
                design.problem, y, calc_second_order=True, seed=design.seed, print_to_console=False
            )
            fields = ("S1", "S1_conf", "ST", "ST_conf")
        for i, key in enumerate(design.keys):
            rows.append({"metric": metric, "key": key, **{f: float(result[f][i]) for f in fields}})
    return pd.DataFrame(rows)


def run_sensitivity(
    path: str | Path,
    *,
    out: str | Path | None = None,
    metrics: list[str] | None = None,
    **sweep_options: Any,
) -> tuple[pd.DataFrame, Path]:
    """Run the design of sensitivity file ``path`` as a sweep into ``out`` (default
    ``results/<file name>``), analyse it, and write ``sensitivity.parquet`` and
    ``sensitivity.png`` there; return the indices and the directory. ``sweep_options``
    go to ``sweep`` (workers, scheduler, resume...); ``metrics`` default to the file's
    ``[sensitivity] metrics``, else the headline metrics."""
    # the sweep machinery and the metric catalogue load only when an analysis runs
    from mailnet.metric_catalog import members  # noqa: PLC0415
    from mailnet.output import atomic_path, atomic_write_parquet  # noqa: PLC0415
    from mailnet.sweep.runner import sweep  # noqa: PLC0415

    experiment, design = load_sensitivity(path)
    directory = Path(out) if out is not None else Path("results") / experiment.name
    result = sweep(experiment, out=directory, **sweep_options)
    chosen = metrics or list(design.metrics) or members(result.runs.columns, headline=True)
    indices = analyse(design, result.runs, chosen)
    atomic_write_parquet(indices, directory / "sensitivity.parquet")
    if len(indices):
        from mailnet.report.sensitivity import indices_figure  # noqa: PLC0415

        figure = indices_figure(
            indices, design.method, points=len(design.sample), replications=experiment.replications
        )
        with atomic_path(directory / "sensitivity.png") as tmp:
            figure.savefig(tmp, format="png", dpi=110)
    return indices, directory
