"""TOML dotted keys: the one place that reads ``servers."mx1.example".sessions`` into parts.

Used by ``--set KEY=VALUE`` overrides, by the swept keys of experiment files and by the
tests' scenario builders. A dotted key follows TOML's rules exactly (bare or quoted
parts), because it is parsed by ``tomllib`` itself.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from mailnet.errors import ScenarioError, key_path

DottedKey = str | Sequence[str]
"""A TOML dotted key as text, or its parts already split."""


def key_parts(key: DottedKey) -> tuple[str, ...]:
    """The parts of a TOML dotted key: ``'servers."mx1.example".sessions'`` gives
    ``("servers", "mx1.example", "sessions")``. A sequence is taken as parts already.

    Raises ``ValueError`` ("not a TOML dotted key" or "not a single TOML dotted key").
    """
    if not isinstance(key, str):
        return tuple(key)
    try:
        parsed = tomllib.loads(f"{key} = 0")
    except (tomllib.TOMLDecodeError, RecursionError):
        raise ValueError("not a TOML dotted key") from None
    parts = []
    node: Any = parsed
    while isinstance(node, dict):
        if len(node) != 1:
            raise ValueError("not a single TOML dotted key")
        ((name, node),) = node.items()
        parts.append(name)
    if type(node) is not int or node != 0:
        raise ValueError("not a single TOML dotted key")
    return tuple(parts)


def parse_dotted(key: DottedKey, value: Any) -> dict[str, Any]:
    """``("a.b", 3)`` -> ``{"a": {"b": 3}}``: the nested tables a dotted key stands for."""
    tree: Any = value
    for part in reversed(key_parts(key)):
        tree = {part: tree}
    return tree


def set_dotted(tree: dict[str, Any], key: DottedKey, value: Any) -> None:
    """Set ``value`` at ``key`` in ``tree`` in place, creating missing tables; a value
    already there (a table too) is replaced, not merged."""
    *tables, leaf = key_parts(key)
    node = tree
    for part in tables:
        node = node.setdefault(part, {})
    node[leaf] = value


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``; leaves (and lists) are replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


ENTITY_SECTIONS = ("providers", "senders", "domains", "servers", "receivers", "blocklists")
"""Sections whose tables are named entities: a key inside one must name an existing entity."""


def undefined_entity(base: Mapping[str, Any], key: DottedKey, value: Any) -> str | None:
    """Why setting ``key`` to ``value`` in ``base`` would invent an entity, or None.

    ``servers."mx.dest.exmaple".sessions`` names a server ``base`` does not define (nor
    define implicitly, as each provider's local domains and their MX servers): setting it
    would create a server that nothing uses, so a sweep would measure nothing. Creating an
    entity takes its whole table (``servers."new" = {...}``).
    """
    parts = key_parts(key)
    if len(parts) < 2 or parts[0] not in ENTITY_SECTIONS:
        return None
    section, name = parts[0], parts[1]
    if len(parts) == 2 and isinstance(value, Mapping):
        return None
    if name in _defined(base, section):
        return None
    singular = section.removesuffix("s")
    return (
        f"no {singular} named {name!r} in the scenario; to add one, give its whole "
        f"table ({key_path([section, name])} = {{...}})"
    )


def _defined(base: Mapping[str, Any], section: str) -> set[str]:
    """The names of ``section``'s entities in ``base``, implicit ones included."""
    table = base.get(section)
    names = set(table) if isinstance(table, Mapping) else set()
    if section in ("domains", "servers"):
        providers = base.get("providers")
        for provider in providers.values() if isinstance(providers, Mapping) else ():
            local = provider.get("local_domains") if isinstance(provider, Mapping) else None
            for domain in local if isinstance(local, list) else ():
                names.add(str(domain) if section == "domains" else f"mx.{domain}")
    return names


def parse_override(text: str) -> dict[str, Any]:
    """``KEY=VALUE`` with a TOML dotted key and a TOML value (bare words become strings).

    ``'servers."mx1.example".sessions=80'`` gives ``{"servers": {"mx1.example": {"sessions": 80}}}``.
    """
    return _nested_override(*_split_override(text))


def _split_override(text: str) -> tuple[str, Any]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ScenarioError("--set", text, "expected KEY=VALUE")
    return key.strip(), _toml_value(value.strip())


def apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any] | None
) -> dict[str, Any]:
    """``raw`` with each override applied in order (later wins).

    ``overrides`` is a list of ``KEY=VALUE`` strings (as given to ``--set``) or a mapping
    of dotted keys to values; tables given as values are merged into those present.
    """
    if not overrides:
        return raw
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = [_split_override(text) for text in overrides]
    for key, value in pairs:
        item = _nested_override(key, value)
        problem = undefined_entity(raw, key, value)
        if problem is not None:
            raise ScenarioError("--set", key_path(key_parts(key)), problem)
        raw = merge(raw, item)
    return raw


def _nested_override(key: str, value: Any) -> dict[str, Any]:
    try:
        return parse_dotted(key, value)
    except ValueError:
        raise ScenarioError("--set", key, "not a TOML dotted key") from None


def _toml_value(text: str) -> Any:
    """``text`` read as a TOML value, or as a string if it is not one (``30m``, ``random``)."""
    try:
        parsed = tomllib.loads(f"value = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    return parsed["value"] if parsed.keys() == {"value"} else text
