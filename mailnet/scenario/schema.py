"""The scenario as a whole: ``[simulation]`` and the tables of every section.

``Scenario.from_dict`` validates a raw mapping (as read from TOML): first each section's
schema, then the references between sections (``mailnet.scenario.references``).
"""

from __future__ import annotations

import copy
import ipaddress
import operator
import os
from pathlib import Path
from typing import Any

import rtoml
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from mailnet import collector
from mailnet.errors import ScenarioError, key_path, validation_error
from mailnet.scenario.changes import Change, check_changes
from mailnet.scenario.domains import Domain, Server
from mailnet.scenario.fields import MAX_INTEGER, Duration, Model, PositiveDuration, raw_problem
from mailnet.scenario.internet_world import expand_internet
from mailnet.scenario.providers import Provider
from mailnet.scenario.receivers import BlocklistConfig, Receiver
from mailnet.scenario.references import check_references
from mailnet.scenario.senders import SenderGroup
from mailnet.units import format_duration

MAX_SEED = MAX_INTEGER
"""Seeds are whole numbers from 0 to this, the largest TOML integer."""


def check_seed(seed: Any, source: str) -> int:
    """``seed`` if it is a whole number from 0 to ``MAX_SEED``; else ``ScenarioError``
    naming ``source`` (``--seed``). Negative seeds are refused, not mapped."""
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise ScenarioError(
            source, "", f"a seed is a whole number from 0 to {MAX_SEED}, got {seed!r}"
        )
    return value


class Simulation(Model):
    """Run length and seed. ``warmup`` is excluded from time-averaged statistics;
    ``sample_interval`` is how often receivers' reputation scores are sampled.
    ``cohort_start``/``cohort_length``: the creation window of the mail whose fate the
    cohort statistics follow to the end of the run (``None``: the defaults of
    ``mailnet.cohort.window``)."""

    duration: Duration = 2 * 86400.0
    warmup: Duration = 0.0
    seed: int = Field(1, ge=0, le=MAX_SEED)
    sample_interval: PositiveDuration = 900.0
    cohort_start: Duration | None = None
    cohort_length: PositiveDuration | None = None

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("duration must be positive")
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup_inside(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration")
        if duration is not None and value >= duration:
            raise ValueError(
                f"warmup ({format_duration(value)}) must be shorter than "
                f"duration ({format_duration(duration)})"
            )
        return value

    @field_validator("cohort_start")
    @classmethod
    def _cohort_inside(cls, value: float | None, info: ValidationInfo) -> float | None:
        duration = info.data.get("duration")
        if value is not None and duration is not None and value >= duration:
            raise ValueError(
                f"cohort_start ({format_duration(value)}) must be before the end of the "
                f"run ({format_duration(duration)})"
            )
        return value

    @field_validator("cohort_length")
    @classmethod
    def _cohort_ends_in_run(cls, value: float | None, info: ValidationInfo) -> float | None:
        duration = info.data.get("duration")
        start = info.data.get("cohort_start")
        start = info.data.get("warmup", 0.0) if start is None else start
        if value is not None and duration is not None and start + value > duration:
            raise ValueError(
                f"the cohort ({format_duration(start)} + {format_duration(value)}) must "
                f"end by the end of the run ({format_duration(duration)})"
            )
        return value


class Scenario(Model):
    """A whole mail world. Build one with ``load_scenario`` or ``Scenario.from_dict``."""

    simulation: Simulation = Simulation()
    providers: dict[str, Provider] = Field(min_length=1)
    senders: dict[str, SenderGroup] = Field(min_length=1)
    domains: dict[str, Domain] = Field(default_factory=dict)
    servers: dict[str, Server] = Field(default_factory=dict)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    blocklists: dict[str, BlocklistConfig] = Field(default_factory=dict)
    changes: list[Change] = Field(default_factory=list, max_length=1000)

    # ----------------------------------------------------------------- build
    @classmethod
    def from_dict(
        cls, raw: dict, source: str = "<scenario>", base_dir: Path | None = None
    ) -> Scenario:
        """Validate a raw mapping (as read from TOML). Raises ``ScenarioError``."""
        found = raw_problem(raw)
        if found is not None:
            raise ScenarioError(source, key_path(list(found[0])), found[1])
        # a generated world is hundreds of thousands of new objects: without the pause the
        # collector walked them again and again, most of the time of loading it
        with collector.paused():
            raw = _with_implicit_parts(expand_internet(copy.deepcopy(raw), source))
            scenario = cls._checked(raw, source, base_dir)
            if scenario.changes:
                check_changes(scenario, raw, source, lambda r: cls._checked(r, source, base_dir))
        return scenario

    @classmethod
    def _checked(cls, raw: dict, source: str, base_dir: Path | None) -> Scenario:
        """``raw`` validated section by section, then its references."""
        try:
            scenario = cls.model_validate(raw)
        except ValidationError as exc:
            raise validation_error(exc, source) from None
        check_references(scenario, source, base_dir)
        return scenario

    def to_dict(self) -> dict:
        """Every value, defaults included, in file form (durations as text); no
        ``changes`` key when there are none."""
        raw = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not raw["changes"]:
            del raw["changes"]
        return raw

    def to_toml(
        self, seed: int | None = None, out_dir: Path | None = None, base_dir: Path | None = None
    ) -> str:
        """The resolved scenario as TOML, loadable again with ``load_scenario``; with
        ``seed`` (the seed a run actually used) in place of the scenario's own. Every
        number is written to full precision, so the file reproduces the run exactly.
        Written into ``out_dir``, a trace path relative to ``base_dir`` (the scenario
        file's directory) is rewritten relative to ``out_dir``, so the file reads the same
        trace from there."""
        raw = self.to_dict()
        if seed is not None:
            raw["simulation"]["seed"] = check_seed(seed, "--seed")
        if out_dir is not None and base_dir is not None:
            for group in raw["senders"].values():
                trace = group.get("trace")
                if trace is not None and not Path(trace).is_absolute():
                    group["trace"] = _relative(Path(base_dir) / trace, Path(out_dir))
        return dumps(raw)


def dumps(raw: dict[str, Any]) -> str:
    """``raw`` (a scenario in file form) as TOML text; ``None`` values are left out. Each
    float is written as the shortest decimal that reads back to it exactly."""
    # rtoml rather than tomli-w: the 14 MB resolved file of a generated internet of
    # 10,000 domains takes 0.12 s instead of 1.2 s
    return rtoml.dumps(raw, none_value=None)


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (both made absolute), or absolute when they share no
    root (another drive)."""
    try:
        return os.path.relpath(path.absolute(), start.absolute())
    except ValueError:
        return str(path.absolute())


def _with_implicit_parts(raw: dict) -> dict:
    """Give each provider's local domains an MX server unless the file defines one.

    Mail from outside (DSNs from a backup MX, mail between providers) reaches a
    provider's users through this server; it is written out in the resolved scenario.
    """
    if not isinstance(raw, dict):
        return raw
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return raw
    domains = raw.setdefault("domains", {})
    servers = raw.setdefault("servers", {})
    if not isinstance(domains, dict) or not isinstance(servers, dict):
        return raw
    for provider in providers.values():
        if not isinstance(provider, dict):
            continue
        for domain in provider.get("local_domains", []) or []:
            if not isinstance(domain, str) or domain in domains:
                continue
            host = f"mx.{domain}"
            domains[domain] = {"mx": [{"host": host, "preference": 10}]}
            servers.setdefault(host, {"sessions": 100, "backlog": "unlimited"})
    # Every server gets an address (from 198.18.0.0/15, set aside for benchmarks) so that
    # logs and reputation can name it; the resolved scenario shows it.
    taken = {s.get("ip") for s in servers.values() if isinstance(s, dict)}
    number = 0
    for server in servers.values():
        if isinstance(server, dict) and server.get("ip") is None:
            while True:
                number += 1
                candidate = str(ipaddress.IPv4Address("198.18.0.0") + number)
                if candidate not in taken:
                    break
            server["ip"] = candidate
    return raw
