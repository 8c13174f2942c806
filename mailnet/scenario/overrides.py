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

from mailnet.errors import ScenarioError

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
    except tomllib.TOMLDecodeError:
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


def parse_override(text: str) -> dict[str, Any]:
    """``KEY=VALUE`` with a TOML dotted key and a TOML value (bare words become strings).

    ``'servers."mx1.example".sessions=80'`` gives ``{"servers": {"mx1.example": {"sessions": 80}}}``.
    """
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ScenarioError("--set", text, "expected KEY=VALUE")
    return _nested_override(key.strip(), _toml_value(value.strip()))


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
        items = [_nested_override(k, v) for k, v in overrides.items()]
    else:
        items = [parse_override(text) for text in overrides]
    for item in items:
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
    except tomllib.TOMLDecodeError:
        return text
    return parsed["value"] if parsed.keys() == {"value"} else text
