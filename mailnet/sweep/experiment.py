"""Experiment files: a base scenario, swept factors and replications, checked before any run.

An experiment expands to grid points, the cartesian product of the ``[grid]`` lists times
the zipped ``[linked]`` lists, each a complete scenario validated like a scenario file. Every
point runs ``replications`` times; replication *r* uses the same seed at every point
(common random numbers), derived purely from the experiment seed and *r*.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mailnet.errors import ScenarioError, key_path
from mailnet.scenario import Scenario, merge, read_toml

TOP_LEVEL_KEYS = ("base", "replications", "seed", "grid", "linked", "labels", "description")


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
        }


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; ``base`` is relative to the file's directory.

    Every grid point's scenario is built and validated, so a misspelt key or an invalid
    value is reported before anything runs, as a ``ScenarioError`` naming the file.
    """
    path = Path(path)
    return _build(read_toml(path), str(path), path.parent, path.stem)


# ------------------------------------------------------------------ building
def _build(raw: dict, source: str, base_dir: Path, name: str) -> Experiment:
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ScenarioError(
                source,
                key_path([key]),
                f"unknown key (expected one of {', '.join(TOP_LEVEL_KEYS)})",
            )
    base_path = _base_path(raw, source, base_dir)
    base = read_toml(base_path)
    # the base alone must be a valid scenario; its own faults name its own file
    base_scenario = Scenario.from_dict(base, source=str(base_path), base_dir=base_path.parent)
    replications = _integer(raw, "replications", 1, source, minimum=1)
    seed = _integer(raw, "seed", 1, source, minimum=0)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(source, "description", "must be a string")
    grid = _factors(raw, "grid", source)
    linked = _factors(raw, "linked", source)
    _check_linked(linked, source)
    _check_disjoint(grid + linked, source)
    labels = _labels(raw, linked, source)
    points = tuple(_points(base, base_path, grid, linked, source, labels))
    return Experiment(
        source=source,
        name=name,
        base_path=base_path,
        base=base,
        base_scenario=base_scenario,
        replications=replications,
        seed=seed,
        grid=grid,
        linked=linked,
        points=points,
        description=description,
        labels=labels,
    )


def _labels(raw: dict, linked: tuple[Factor, ...], source: str) -> tuple[str, ...]:
    """Names for the ``[linked]`` rows (one per row), shown in tables and reports."""
    labels = raw.get("labels")
    if labels is None:
        return ()
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ScenarioError(source, "labels", "must be a list of strings")
    if not linked:
        raise ScenarioError(source, "labels", "names the rows of [linked], which is empty")
    rows = len(linked[0].values)
    if len(labels) != rows:
        raise ScenarioError(
            source, "labels", f"has {len(labels)} names for {rows} rows of [linked]"
        )
    if len(set(labels)) != len(labels):
        raise ScenarioError(source, "labels", "names must differ")
    return tuple(labels)


def _base_path(raw: dict, source: str, base_dir: Path) -> Path:
    if "base" not in raw:
        raise ScenarioError(source, "base", "missing: name the base scenario file")
    text = raw["base"]
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(source, "base", "must be the path of a scenario file")
    path = Path(text)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ScenarioError(source, "base", f"scenario file {str(path)!r} does not exist")
    return path


def _integer(raw: dict, key: str, default: int, source: str, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(source, key, f"must be an integer, not {_show(value)}")
    if value < minimum:
        raise ScenarioError(source, key, f"must be at least {minimum}, not {value}")
    return value


def _factors(raw: dict, section: str, source: str) -> tuple[Factor, ...]:
    table = raw.get(section, {})
    if not isinstance(table, dict):
        raise ScenarioError(source, section, "must be a table of key = [values]")
    factors = []
    for text, values in table.items():
        where = _entry_key(section, text)
        parts = _key_parts(text, source, where)
        if not isinstance(values, list):
            raise ScenarioError(source, where, "must be a list of values")
        if not values:
            raise ScenarioError(source, where, "the list of values is empty")
        if parts == ("simulation", "seed"):
            raise ScenarioError(
                source,
                where,
                "each run's seed comes from the experiment's "
                "seed and replication; sweep replications instead",
            )
        factors.append(Factor(key=key_path(list(parts)), parts=parts, values=tuple(values)))
    return tuple(factors)


def _entry_key(section: str, text: str) -> str:
    """The TOML key of an entry of ``[section]`` as a user would write it."""
    if '"' in text and "'" not in text and "\n" not in text:
        return f"{section}.'{text}'"  # a literal key reads better than escaped quotes
    return key_path([section, text])


def _key_parts(text: str, source: str, where: str) -> tuple[str, ...]:
    """The parts of a TOML dotted key (``'servers."mx.example".sessions'``)."""
    try:
        parsed = tomllib.loads(f"{text} = 0")
    except tomllib.TOMLDecodeError:
        raise ScenarioError(source, where, "not a TOML dotted key") from None
    parts = []
    node: Any = parsed
    while isinstance(node, dict):
        if len(node) != 1:
            raise ScenarioError(source, where, "not a single TOML dotted key")
        ((name, node),) = node.items()
        parts.append(name)
    if type(node) is not int or node != 0:
        raise ScenarioError(source, where, "not a single TOML dotted key")
    return tuple(parts)


def _check_linked(linked: tuple[Factor, ...], source: str) -> None:
    lengths = {f.key: len(f.values) for f in linked}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ScenarioError(source, "linked", f"lists must have equal lengths: {shown}")


def _check_disjoint(factors: tuple[Factor, ...], source: str) -> None:
    # one key inside another would make the result depend on the order of application
    for a, b in itertools.permutations(factors, 2):
        if b.parts[: len(a.parts)] == a.parts:
            raise ScenarioError(source, b.key, f"is also set by the swept key {a.key}")


def _points(
    base: dict,
    base_path: Path,
    grid: tuple[Factor, ...],
    linked: tuple[Factor, ...],
    source: str,
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
            scenario = merge(scenario, _nested(factor.parts, value))
        point = Point(
            index=index,
            params=params,
            scenario=scenario,
            fingerprint=_fingerprint(scenario),
            label=labels[row] if labels else None,
        )
        try:
            Scenario.from_dict(scenario, source=source, base_dir=base_path.parent)
        except ScenarioError as error:
            raise ScenarioError(
                error.file, error.key, f"{error.problem} (at grid point {point.describe()})"
            ) from None
        yield point


def _nested(parts: tuple[str, ...], value: Any) -> dict:
    for part in reversed(parts):
        value = {part: value}
    return value


def _fingerprint(scenario: dict) -> str:
    """A digest of a point's scenario, so resumed results are matched to their scenario."""
    text = json.dumps(scenario, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _show(value: Any) -> str:
    return json.dumps(value, default=str)
