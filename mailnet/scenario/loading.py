"""Reading scenario files: TOML from disk, ``--set`` overrides, then validation."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mailnet.errors import ScenarioError
from mailnet.scenario.overrides import apply_overrides
from mailnet.scenario.schema import Scenario
from mailnet.scenario.shortening import cap_duration, scale_warmup


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file raises ``ScenarioError``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(str(path), "", "is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    except RecursionError:
        raise ScenarioError(str(path), "", "arrays or tables nested too deeply") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror or exc}") from None


def load_scenario(
    path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> Scenario:
    """Read, override and validate a scenario file.

    ``overrides`` is a list of ``KEY=VALUE`` strings (as given to ``--set``) or a mapping
    of dotted key paths to values. ``MAILNET_DURATION`` in the environment caps the
    duration, and an override (or that cap) that shortens the duration below the warm-up
    scales the warm-up, each with a ``ScenarioNotice`` (``shortening``). Raises
    ``ScenarioError`` for any problem.
    """
    original = read_toml(path)
    overridden = cap_duration(apply_overrides(original, overrides), os.environ)
    raw = scale_warmup(original, overridden, overrides)
    return Scenario.from_dict(raw, source=str(path), base_dir=Path(path).parent)
