"""Experiment files: a base scenario, swept factors and replications, checked before any run.

An experiment expands to grid points, the cartesian product of the ``[grid]`` lists times
the zipped ``[linked]`` lists, each a complete scenario validated like a scenario file. Every
point runs ``replications`` times; replication *r* uses the same seed at every point
(common random numbers), derived purely from the experiment seed and *r*.

The file itself is the pydantic model ``ExperimentFile``; its problems, like a scenario's,
are one-line ``ScenarioError``s naming the key. Swept keys are TOML dotted keys, read by
``mailnet.scenario.key_parts``.

An optional ``[precision]`` table makes the file say how tight its answers must be, so
that rerunning it reproduces its results without remembering flags: ``max_replications``
and ``metrics``, a table of metric = target (``"0.1"`` relative, ``"0.005abs"``
absolute; see ``mailnet.sweep.precision``). ``mailnet sweep`` then replicates each point
until every listed metric meets its target; ``--precision`` on the command line replaces
the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from mailnet.errors import ScenarioError, error_key, key_path, problem, problem_at
from mailnet.estimate import MAX_POINTS, MAX_REPLICATIONS, MAX_RUNS
from mailnet.scenario import (
    Scenario,
    key_parts,
    merge,
    parse_dotted,
    read_toml,
    undefined_entity,
)
from mailnet.scenario.schema import MAX_SEED
from mailnet.sweep.backends import SweepError
from mailnet.sweep.precision import MIN_REPLICATIONS, Precision


def replication_seed(seed: int, replication: int) -> int:
    """The simulation seed of ``replication`` (0-based) in an experiment seeded ``seed``.

    A pure function of its arguments, so every process, worker count and cluster derives
    the same seed; different replications get statistically independent streams.
    """
    return int(np.random.SeedSequence([seed, replication]).generate_state(1)[0])


@dataclass(frozen=True)
class Factor:
    """One swept key: ``key`` is its TOML dotted-key path (also its column name)."""

    key: str
    parts: tuple[str, ...]
    values: tuple


@dataclass(frozen=True, eq=False)
class Point:
    """One grid point: ``params`` maps each swept key path to its value here, and
    ``scenario`` is the raw scenario mapping (the base with those values applied)."""

    index: int
    params: dict[str, Any]
    scenario: dict
    fingerprint: str = field(repr=False)
    label: str | None = None

    def describe(self) -> str:
        """``key = value, ...`` in TOML-like notation, for messages."""
        return ", ".join(f"{k} = {_show(v)}" for k, v in self.params.items()) or "the base"


@dataclass(frozen=True)
class PrecisionPlan:
    """An experiment's ``[precision]`` table: each metric's half-width target and the most
    replications a point gets."""

    targets: dict[str, Precision]
    max_replications: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {m: p.describe() for m, p in self.targets.items()},
            "max_replications": self.max_replications,
        }


@dataclass(frozen=True, eq=False)
class Experiment:
    """A validated experiment. Build one with ``load_experiment`` or ``Experiment.from_dict``.

    ``source`` names the experiment in messages; ``base_path`` is the base scenario file
    (relative trace paths in it resolve against its directory); ``base`` is its raw
    mapping and ``base_scenario`` the validated base.
    """

    source: str
    name: str
    base_path: Path
    base: dict
    base_scenario: Scenario
    replications: int
    seed: int
    grid: tuple[Factor, ...]
    linked: tuple[Factor, ...]
    points: tuple[Point, ...]
    description: str = ""
    labels: tuple[str, ...] = ()
    baseline: int | None = None
    """The index of the point the others are compared with (paired differences), or None."""
    precision: PrecisionPlan | None = None
    """The file's ``[precision]`` table, or None: replicate a fixed ``replications``."""

    @classmethod
    def from_dict(
        cls,
        raw: dict,
        source: str = "<experiment>",
        base_dir: Path | None = None,
        name: str = "experiment",
    ) -> Experiment:
        """Validate a raw experiment mapping (as read from TOML); ``base`` resolves against
        ``base_dir`` (default: the working directory). Raises ``ScenarioError``."""
        return _build(raw, source, Path(base_dir) if base_dir is not None else Path.cwd(), name)

    @property
    def factors(self) -> tuple[Factor, ...]:
        """Grid factors, then linked factors, in file order."""
        return self.grid + self.linked

    @property
    def seeds(self) -> list[int]:
        """The simulation seed of each replication."""
        return [replication_seed(self.seed, r) for r in range(self.replications)]

    @property
    def n_runs(self) -> int:
        return len(self.points) * self.replications

    def runs(self) -> Iterator[tuple[Point, int, int]]:
        """Every run as ``(point, replication, seed)``, ordered by point then replication."""
        seeds = self.seeds
        for point in self.points:
            for r, seed in enumerate(seeds):
                yield point, r, seed

    def to_dict(self) -> dict:
        """The experiment as plain data (JSON-ready), for the results manifest."""
        return {
            "source": self.source,
            "description": self.description,
            "base": str(self.base_path),
            "replications": self.replications,
            "seed": self.seed,
            "seeds": self.seeds,
            "grid": {f.key: list(f.values) for f in self.grid},
            "linked": {f.key: list(f.values) for f in self.linked},
            "labels": list(self.labels),
            "points": len(self.points),
            "baseline": self.baseline,
            "precision": None if self.precision is None else self.precision.to_dict(),
        }


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; ``base`` is relative to the file's directory.

    Every grid point's scenario is built and validated, so a misspelt key or an invalid
    value is reported before anything runs, as a ``ScenarioError`` naming the file.
    """
    path = Path(path)
    return _build(read_toml(path), str(path), path.parent, path.stem)


# ------------------------------------------------------------------ the file
def _integer(minimum: int, maximum: int = MAX_SEED) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {_show(value)}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, not {value}")
        if value > maximum:
            raise ValueError(f"must be at most {maximum:,}, not {value}")
        return value

    return check


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _base(value: Any, info: ValidationInfo) -> Path:
    """The base scenario file, resolved against the experiment's directory."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be the path of a scenario file")
    path = Path(value)
    base_dir = Path((info.context or {}).get("base_dir", Path.cwd()))
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ValueError(f"scenario file {str(path)!r} does not exist")
    return path


def _factor_table(value: Any, info: ValidationInfo) -> dict[str, list[Any]]:
    """``[grid]`` or ``[linked]``: TOML dotted keys, each with a non-empty list of values."""
    section = info.field_name or ""
    if not isinstance(value, dict):
        raise ValueError("must be a table of key = [values]")
    for text, values in value.items():
        where = _entry_key(section, text)
        try:
            parts = key_parts(text)
        except ValueError as exc:
            raise problem_at(where, str(exc)) from None
        if not isinstance(values, list):
            raise problem_at(where, "must be a list of values")
        if not values:
            raise problem_at(where, "the list of values is empty")
        if parts == ("simulation", "seed"):
            raise problem_at(
                where,
                "each run's seed comes from the experiment's "
                "seed and replication; sweep replications instead",
            )
    return value


def _baseline(value: Any) -> int | str | dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int | str | dict):
        raise ValueError(
            "must be a point number, a label, or a table of swept keys and their values"
        )
    if isinstance(value, int) and value < 0:
        raise ValueError(f"must be a point number (0 or more), not {value}")
    return value


def _label_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError("must be a list of strings")
    return value


FactorTable = Annotated[dict[str, list[Any]], BeforeValidator(_factor_table)]


class PrecisionTable(BaseModel):
    """``[precision]``: ``metrics`` maps each metric to its target, ``"0.1"`` (relative
    half-width) or ``"0.005abs"`` (absolute, in the metric's units); ``max_replications``
    bounds each point (default 100)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: dict[str, str]
    max_replications: Annotated[
        int, BeforeValidator(_integer(MIN_REPLICATIONS, MAX_REPLICATIONS))
    ] = 100

    @model_validator(mode="after")
    def _known(self) -> PrecisionTable:
        from mailnet.metric_catalog import unit_of  # noqa: PLC0415

        if not self.metrics:
            raise problem_at("precision.metrics", "names no metric")
        for metric, text in self.metrics.items():
            where = key_path(["precision", "metrics", metric])
            if '"' in metric or "'" in metric:
                raise problem_at(where, "name the metric as runs.parquet does, without quotes")
            if unit_of(metric) is None:
                raise problem_at(where, "no summary metric has this name")
            try:
                Precision.parse(text)
            except SweepError:
                raise problem_at(
                    where, f"must be a relative (0.1) or absolute (0.005abs) target, not {text!r}"
                ) from None
        return self

    def plan(self) -> PrecisionPlan:
        targets = {m: Precision.parse(t) for m, t in self.metrics.items()}
        return PrecisionPlan(targets, self.max_replications)


class ExperimentFile(BaseModel):
    """The keys of an experiment file, as written. Each is checked alone, then how
    ``[grid]``, ``[linked]`` and ``labels`` fit together; ``Experiment`` then builds and
    validates every point. Validate with ``context={"base_dir": Path}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Annotated[Path, BeforeValidator(_base)]
    replications: Annotated[int, BeforeValidator(_integer(1, MAX_REPLICATIONS))] = 1
    seed: Annotated[int, BeforeValidator(_integer(0))] = 1
    grid: FactorTable = Field(default_factory=dict)
    linked: FactorTable = Field(default_factory=dict)
    labels: Annotated[list[str] | None, BeforeValidator(_label_list)] = None
    baseline: Annotated[int | str | dict[str, Any] | None, BeforeValidator(_baseline)] = None
    description: Annotated[str, BeforeValidator(_string)] = ""
    precision: PrecisionTable | None = None

    def factors(self, section: Literal["grid", "linked"]) -> tuple[Factor, ...]:
        """The swept keys of ``[grid]`` or ``[linked]``, in file order."""
        factors = []
        for text, values in (self.grid if section == "grid" else self.linked).items():
            parts = key_parts(text)
            factors.append(Factor(key=key_path(list(parts)), parts=parts, values=tuple(values)))
        return tuple(factors)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentFile:
        linked = self.factors("linked")
        lengths = {f.key: len(f.values) for f in linked}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise problem_at("linked", f"lists must have equal lengths: {shown}")
        # one key inside another would make the result depend on the order of application
        for a, b in itertools.permutations(self.factors("grid") + linked, 2):
            if b.parts[: len(a.parts)] == a.parts:
                raise problem_at(b.key, f"is also set by the swept key {a.key}")
        if self.labels is not None:
            _check_labels(self.labels, linked)
        check_sweep_size(self.factors("grid"), linked, self.replications)
        return self


TOP_LEVEL_KEYS = tuple(ExperimentFile.model_fields)
"""The keys an experiment file may have, in the order its errors list them."""


def check_sweep_size(
    grid: tuple[Factor, ...], linked: tuple[Factor, ...], replications: int
) -> None:
    """At most ``MAX_POINTS`` grid points and ``MAX_RUNS`` runs, counted before any
    point is built."""
    points = math.prod(len(f.values) for f in grid) * (len(linked[0].values) if linked else 1)
    if points > MAX_POINTS:
        raise problem_at("grid", f"{points:,} grid points; at most {MAX_POINTS:,}")
    if points * replications > MAX_RUNS:
        raise problem_at(
            "replications", f"{points * replications:,} runs in all; at most {MAX_RUNS:,}"
        )


def _check_labels(labels: list[str], linked: tuple[Factor, ...]) -> None:
    """Names for the ``[linked]`` rows: one per row, all different."""
    if not linked:
        raise problem_at("labels", "names the rows of [linked], which is empty")
    rows = len(linked[0].values)
    if len(labels) != rows:
        raise problem_at("labels", f"has {len(labels)} names for {rows} rows of [linked]")
    if len(set(labels)) != len(labels):
        raise problem_at("labels", "names must differ")


def _file_error(exc: ValidationError, source: str) -> ScenarioError:
    """The problem to report: an unknown key first, as the file is read top down."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    if error["type"] == "extra_forbidden":
        nested = error["loc"][0] == "precision" and len(error["loc"]) == 2
        expected = tuple(PrecisionTable.model_fields) if nested else TOP_LEVEL_KEYS
        return ScenarioError(
            source,
            key_path(list(error["loc"])),
            f"unknown key (expected one of {', '.join(expected)})",
        )
    key = error_key(error)
    if error["type"] == "missing" and key == "base":
        return ScenarioError(source, key, "missing: name the base scenario file")
    return ScenarioError(source, key, problem(error))


# ------------------------------------------------------------------ building
def _build(raw: dict, source: str, base_dir: Path, name: str) -> Experiment:
    try:
        spec = ExperimentFile.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _file_error(exc, source) from None
    base = read_toml(spec.base)
    # the base alone must be a valid scenario; its own faults name its own file
    base_scenario = Scenario.from_dict(base, source=str(spec.base), base_dir=spec.base.parent)
    grid, linked = spec.factors("grid"), spec.factors("linked")
    _check_entities(base, source, grid=grid, linked=linked)
    labels = tuple(spec.labels or ())
    points = tuple(_points(base, spec.base, grid, linked, source, labels=labels))
    return Experiment(
        source=source,
        name=name,
        base_path=spec.base,
        base=base,
        base_scenario=base_scenario,
        replications=spec.replications,
        seed=spec.seed,
        grid=grid,
        linked=linked,
        points=points,
        description=spec.description,
        labels=labels,
        baseline=_baseline_point(spec.baseline, points, source),
        precision=None if spec.precision is None else spec.precision.plan(),
    )


def _baseline_point(
    given: int | str | dict[str, Any] | None, points: tuple[Point, ...], source: str
) -> int | None:
    """The index of the point ``baseline`` names: its number, its label, or the values
    of the swept keys that single it out."""
    if given is None:
        return None
    if isinstance(given, int):
        if given >= len(points):
            raise ScenarioError(
                source, "baseline", f"there are {len(points)} points (0 to {len(points) - 1})"
            )
        return given
    if isinstance(given, str):
        found = [p.index for p in points if p.label == given]
        what = f"the label {given!r}"
    else:
        wanted = {key_path(list(key_parts(k))): v for k, v in given.items()}
        found = [
            p.index for p in points if all(p.params.get(k, _ABSENT) == v for k, v in wanted.items())
        ]
        what = "those values"
    if len(found) != 1:
        raise ScenarioError(source, "baseline", f"{what} name {len(found)} points, not exactly one")
    return found[0]


_ABSENT = object()


def _check_entities(
    base: dict, source: str, *, grid: tuple[Factor, ...], linked: tuple[Factor, ...]
) -> None:
    """Each swept key names entities the base scenario defines (see ``undefined_entity``)."""
    for section, factors in (("grid", grid), ("linked", linked)):
        for factor in factors:
            for value in factor.values:
                problem = undefined_entity(base, factor.parts, value)
                if problem is not None:
                    raise ScenarioError(source, _entry_key(section, factor.key), problem)


def _entry_key(section: str, text: str) -> str:
    """The TOML key of an entry of ``[section]`` as a user would write it."""
    if '"' in text and "'" not in text and "\n" not in text:
        return f"{section}.'{text}'"  # a literal key reads better than escaped quotes
    return key_path([section, text])


def _points(
    base: dict,
    base_path: Path,
    grid: tuple[Factor, ...],
    linked: tuple[Factor, ...],
    source: str,
    *,
    labels: tuple[str, ...] = (),
) -> Iterator[Point]:
    grid_values = [f.values for f in grid]
    linked_rows = list(zip(*(f.values for f in linked), strict=True)) if linked else [()]
    combos = itertools.product(itertools.product(*grid_values), enumerate(linked_rows))
    for index, (grid_combo, (row, linked_combo)) in enumerate(combos):
        params = {}
        scenario = base
        for factor, value in zip(grid + linked, grid_combo + linked_combo, strict=True):
            params[factor.key] = value
            scenario = merge(scenario, parse_dotted(factor.parts, value))
        point = Point(
            index=index,
            params=params,
            scenario=scenario,
            fingerprint=_fingerprint(scenario, base_path.parent),
            label=labels[row] if labels else None,
        )
        try:
            Scenario.from_dict(scenario, source=source, base_dir=base_path.parent)
        except ScenarioError as error:
            raise ScenarioError(
                error.file, error.key, f"{error.problem} (at grid point {point.describe()})"
            ) from None
        yield point


def _fingerprint(scenario: dict, base_dir: Path) -> str:
    """A digest of everything a point's runs read: its scenario and the contents of the
    trace files it names, so resumed results are matched to their inputs."""
    text = json.dumps(scenario, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8"))
    senders = scenario.get("senders")
    for sender in senders.values() if isinstance(senders, dict) else ():
        trace = sender.get("trace") if isinstance(sender, dict) else None
        if isinstance(trace, str):
            # an unreadable trace is refused when the point's scenario is checked
            with contextlib.suppress(OSError):
                digest.update(hashlib.sha256((base_dir / trace).read_bytes()).digest())
    return digest.hexdigest()[:16]


def _show(value: Any) -> str:
    return json.dumps(value, default=str)
