"""A run shortened from the command line keeps its warm-up in proportion; the
``MAILNET_DURATION`` environment variable shortens every run.

``--set simulation.duration=6h`` on a two-day scenario with a six-hour warm-up would leave
no time after the warm-up. When an override shortens ``simulation.duration`` to no more than
the scenario's warm-up and leaves ``simulation.warmup`` as the file has it, the warm-up is
scaled by the same factor as the duration (a quarter of two days stays a quarter of six
hours), and a ``ScenarioNotice`` says so. A warm-up set explicitly is never changed: one
that does not fit is an error, as in the file.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from mailnet.errors import ScenarioError
from mailnet.scenario.overrides import apply_overrides
from mailnet.units import format_duration, parse_duration

Overrides = Sequence[str] | Mapping[str, Any] | None
"""``--set`` overrides as ``load_scenario`` takes them."""

DURATION_VARIABLE = "MAILNET_DURATION"
"""Environment variable that caps every loaded scenario's ``simulation.duration`` (e.g.
``MAILNET_DURATION=1h``), so examples and notebooks run quickly; unset, nothing changes."""

DEFAULT_DURATION = 2 * 86400.0
"""``simulation.duration`` when a scenario does not give one (``schema.Simulation``)."""


class ScenarioNotice(UserWarning):
    """A change mailnet made to a scenario while loading it, which the user should see
    (the command line prints it as ``mailnet: note: ...``)."""


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        return None


def cap_duration(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``raw`` with ``simulation.duration`` shortened to ``environ[DURATION_VARIABLE]`` if
    that is set and shorter, with a ``ScenarioNotice``; a bad value is a ``ScenarioError``."""
    text = environ.get(DURATION_VARIABLE, "").strip()
    if not text:
        return raw
    try:
        cap = parse_duration(text)
    except ValueError as error:
        raise ScenarioError(DURATION_VARIABLE, "", str(error)) from None
    if cap <= 0:
        raise ScenarioError(DURATION_VARIABLE, "", "must be positive")
    simulation = raw.get("simulation") or {}
    duration = (
        _seconds(simulation.get("duration", DEFAULT_DURATION))
        if isinstance(simulation, dict)
        else None
    )
    if duration is None or duration <= cap:
        return raw
    result = copy.deepcopy(raw)
    result.setdefault("simulation", {})["duration"] = format_duration(cap)
    warnings.warn(
        ScenarioNotice(
            f"{DURATION_VARIABLE}={text}: simulation.duration shortened from "
            f"{format_duration(duration)} to {format_duration(cap)}"
        ),
        stacklevel=3,
    )
    return result


def warmup_overridden(original: dict[str, Any], overrides: Overrides) -> bool:
    """Whether ``overrides`` set ``simulation.warmup`` (even to the value it had)."""
    if not overrides:
        return False
    marker = object()  # merging keeps the base's values by identity: only an override replaces it
    probe = copy.copy(original)
    simulation = probe.get("simulation")
    probe["simulation"] = {**(simulation if isinstance(simulation, dict) else {}), "warmup": marker}
    try:
        after = apply_overrides(probe, overrides).get("simulation")
    except ScenarioError:
        return False  # reported when the real overrides are applied
    return not (isinstance(after, dict) and after.get("warmup") is marker)


def scale_warmup(
    original: dict[str, Any], overridden: dict[str, Any], overrides: Overrides = None
) -> dict[str, Any]:
    """``overridden`` (``original`` after ``overrides`` and the duration cap) with its
    warm-up scaled when its duration was shortened to no more than the warm-up, unless
    ``overrides`` set the warm-up (see the module docstring); else ``overridden`` itself."""
    before = original.get("simulation") or {}
    after = overridden.get("simulation") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return overridden
    old = _seconds(before.get("duration", DEFAULT_DURATION))
    new = _seconds(after.get("duration", DEFAULT_DURATION))
    warmup = _seconds(after.get("warmup", 0))
    if old is None or new is None or warmup is None or old <= 0:
        return overridden
    if new >= old or warmup < new or warmup_overridden(original, overrides):
        return overridden
    scaled = round(warmup * new / old)  # whole seconds, as people write them
    result = copy.deepcopy(overridden)
    result["simulation"]["warmup"] = format_duration(scaled)
    warnings.warn(
        ScenarioNotice(
            f"simulation.duration {format_duration(new)} is not longer than the warm-up "
            f"{format_duration(warmup)}: warm-up scaled with the duration to "
            f"{format_duration(scaled)} (set simulation.warmup to choose it)"
        ),
        stacklevel=3,
    )
    return result
