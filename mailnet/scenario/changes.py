"""Changes during a run (``[[changes]]``): what an operator does while mail flows.

A change sets keys of the scenario at a time (``at = "24h"``) or when something happens
(``when = { event = "listed", provider = "isp" }``: the first listing of one of a
provider's addresses; ``when = { event = "queue_above", hop = "isp", threshold = 100 }``:
a hop's deferred queue passes a length). ``set`` maps TOML dotted keys to values exactly
as ``--set`` takes them; each value is validated as the scenario's own at load time, and
only the keys of ``MUTABLE`` may change during a run: anything else is refused at load
with the change's index, the key and the reason.

``check_changes`` runs from ``Scenario.from_dict`` after every other check; the live
components are changed by ``mailnet.model.interventions``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from mailnet.errors import ScenarioError, key_path, validation_error
from mailnet.scenario.fields import Duration, Model
from mailnet.scenario.overrides import key_parts, set_dotted, undefined_entity

if TYPE_CHECKING:
    from mailnet.scenario.schema import Scenario

MUTABLE: dict[tuple[str, str], str] = {
    ("providers", "pool_strategy"): "new attempts take their address by the new strategy",
    ("providers", "pools"): "new attempts draw from the new pools",
    ("providers", "ip_selection"): "new attempts take their address by the new rule",
    ("providers", "rate_limit"): "mail submitted from then on is shaped by the new bucket",
    ("providers", "outbound_filter"): "mail submitted from then on meets the new filter",
    ("senders", "rate"): "the group's Poisson stream goes on at the new rate",
    ("servers", "sessions"): "more sessions start waiting connections at once; with fewer, "
    "running sessions finish and no new one starts until the count is below the new limit",
    ("servers", "backlog"): "connections from then on meet the new backlog",
    ("domains", "mx"): "MX lookups from then on see the new records; backup MX hosts "
    "relay to the hosts more preferred than their new record",
}
"""``(section, field)`` of every key that may change during a run, with what changes.
A table-valued field may also be changed one key at a time (``rate_limit.rate``)."""

WHY_NOT: dict[str, str] = {
    "simulation": "the run's length, warm-up, seed and sampling are fixed before it starts",
    "receivers": "receivers' policies are not changeable during a run",
    "blocklists": "blocklists' rules are not changeable during a run",
    "changes": "changes cannot change other changes",
}


class Trigger(Model):
    """What fires a change: ``listed`` (a listing of one of ``provider``'s addresses, of
    its /prefix or of its AS, by ``list`` or by any list) or ``queue_above`` (the deferred
    queue of ``hop``, a provider or a backup MX or relay, longer than ``threshold``)."""

    event: Literal["listed", "queue_above"]
    provider: str | None = None
    list: str | None = None
    hop: str | None = None
    threshold: int | None = Field(None, ge=0, le=10**9)

    @model_validator(mode="after")
    def _keys(self) -> Trigger:
        if self.event == "listed":
            if self.provider is None:
                raise ValueError('event "listed" needs provider')
            if self.hop is not None or self.threshold is not None:
                raise ValueError('event "listed" takes provider and list, not hop or threshold')
        else:
            if self.hop is None or self.threshold is None:
                raise ValueError('event "queue_above" needs hop and threshold')
            if self.provider is not None or self.list is not None:
                raise ValueError('event "queue_above" takes hop and threshold only')
        return self


class Change(Model):
    """One ``[[changes]]`` entry: ``set`` applied ``at`` a time or ``when`` a trigger
    fires (then after ``delay`` seconds, at the first firing only unless ``once = false``).
    ``set`` holds canonical dotted keys (``'servers."mx1.example".sessions'``)."""

    at: Duration | None = None
    when: Trigger | None = None
    set: dict[str, Any] = Field(min_length=1, max_length=100)
    once: bool = True
    delay: Duration = 0.0

    @field_validator("set", mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        return flatten_set(value) if isinstance(value, Mapping) else value

    @model_validator(mode="after")
    def _one_trigger(self) -> Change:
        if (self.at is None) == (self.when is None):
            raise ValueError("give exactly one of at (a time) or when (a trigger)")
        if self.at is not None and self.at < 0:
            raise ValueError("at must not be negative")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.at is not None and (self.delay or not self.once):
            raise ValueError("delay and once go with when, not with at")
        return self

    def assignments(self) -> list[tuple[tuple[str, ...], Any]]:
        """``(key parts, value)`` of every key set, in the order written."""
        return [(key_parts(key), value) for key, value in self.set.items()]


def flatten_set(table: Mapping[str, Any]) -> dict[str, Any]:
    """``set`` as canonical dotted keys: a key of the table is a dotted key (as ``--set``
    takes it); nested tables (``set.servers."mx1".sessions = 80``) are followed down to
    ``section.name.field``, where the value is taken whole."""
    out: dict[str, Any] = {}

    def walk(prefix: tuple[str, ...], node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            try:
                parts = (*prefix, *(key_parts(key) if not prefix else (key,)))
            except ValueError:
                raise ValueError(f"{key!r} is not a TOML dotted key") from None
            if len(parts) < 3 and isinstance(value, Mapping):
                walk(parts, value)
            else:
                out[key_path(parts)] = value

    walk((), table)
    return out


def check_changes(scenario: Scenario, raw: dict, source: str, validate: Validate) -> None:
    """Every change of ``scenario`` names mutable keys of existing entities, with values
    that pass the scenario's own validation (``validate(raw)``, the scenario without its
    changes as read from the file), and triggers that name what exists."""
    base = {k: v for k, v in raw.items() if k != "changes"}
    for index, change in enumerate(scenario.changes):
        if change.when is not None:
            _check_trigger(scenario, change.when, source, index)
        for parts, value in change.assignments():
            key = f"{key_path(['changes', index, 'set'])}.{key_path(parts)}"
            problem = _immutable(parts) or _missing(base, parts, value)
            if problem is None:
                problem = _runtime_only(scenario, parts, value)
            if problem is None:
                problem = _invalid(base, parts, value, source, validate)
            if problem is not None:
                raise ScenarioError(source, key, problem)


Validate = Callable[[dict], "Scenario"]
"""Validates a raw scenario mapping (``Scenario.from_dict`` without changes)."""


def _immutable(parts: tuple[str, ...]) -> str | None:
    """Why ``parts`` may not change during a run, or None."""
    section = parts[0]
    if section in WHY_NOT:
        return f"cannot change during a run: {WHY_NOT[section]}"
    if len(parts) < 3:
        return "give a key of one entity: section.name.field"
    if (section, parts[2]) not in MUTABLE:
        keys = sorted(f"{s}.NAME.{f}" for s, f in MUTABLE if s == section)
        hint = f"; changeable: {', '.join(keys)}" if keys else ""
        return f"cannot change during a run: it is fixed when the run is built{hint}"
    return None


def _missing(base: dict, parts: tuple[str, ...], value: Any) -> str | None:
    """The entity ``parts`` names, if the scenario does not define it."""
    if undefined_entity(base, parts, value) is None:
        return None
    return f"no {parts[0].removesuffix('s')} named {parts[1]!r} in the scenario"


def _runtime_only(scenario: Scenario, parts: tuple[str, ...], value: Any) -> str | None:
    """Problems valid in a file but not during a run."""
    section, name, field = parts[0], parts[1], parts[2]
    if section == "providers" and field == "pool_strategy" and value == "by-reputation":
        provider = scenario.providers[name]
        if provider.suspension is None and provider.pool_strategy != "by-reputation":
            return (
                "by-reputation needs per-sender counts from the start of the run: give "
                "the provider a suspension rule or start it on by-reputation"
            )
    group = scenario.senders.get(name) if section == "senders" else None
    if group is not None and field == "rate" and group.rate is None and group.campaigns is None:
        return "only a group that sends at a rate (or in campaigns) can change its rate"
    return None


def _invalid(
    base: dict, parts: tuple[str, ...], value: Any, source: str, validate: Validate
) -> str | None:
    """The first problem the scenario with ``value`` at ``parts`` has, or None."""
    raw = copy.deepcopy(base)
    set_dotted(raw, parts, copy.deepcopy(value))
    try:
        validate(raw)
    except ScenarioError as exc:
        return f"{exc.problem} (at {exc.key})" if exc.key else exc.problem
    except ValidationError as exc:
        error = validation_error(exc, source)
        return f"{error.problem} (at {error.key})"
    return None


def _check_trigger(scenario: Scenario, trigger: Trigger, source: str, index: int) -> None:
    where = ["changes", index, "when"]
    if trigger.event == "listed":
        if trigger.provider not in scenario.providers:
            raise ScenarioError(
                source, key_path([*where, "provider"]), f"no provider {trigger.provider!r}"
            )
        if trigger.list is not None and trigger.list not in scenario.blocklists:
            raise ScenarioError(
                source, key_path([*where, "list"]), f"no blocklist {trigger.list!r}"
            )
        return
    relays = {n for n, s in scenario.servers.items() if s.role != "primary"}
    if trigger.hop not in scenario.providers and trigger.hop not in relays:
        raise ScenarioError(
            source,
            key_path([*where, "hop"]),
            f"no provider, backup MX or relay named {trigger.hop!r}",
        )
