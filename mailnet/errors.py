"""The one error a user sees for bad input: the file, the key path and the problem.

Every check of user input (scenario files, ``--set`` overrides, retry parameters,
experiment files) ends in a ``ScenarioError``; the command line prints it as one line and
exits with status 2. pydantic's validation errors are turned into one with
``validation_error``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_KEYED = "mailnet_keyed"  # pydantic error type of problems raised with ``problem_at``


def key_path(parts: Sequence[Any]) -> str:
    """A TOML dotted-key path; names that are not bare keys (``mx1.example``) are quoted."""
    out = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
            continue
        text = str(part)
        piece = text if _BARE_KEY.match(text) else '"' + text.replace('"', '\\"') + '"'
        out.append(("." if out else "") + piece)
    return "".join(out)


class ScenarioError(Exception):
    """Bad input in a scenario or experiment file, reported as one line.

    ``file`` is the path the user gave (or ``--set`` for a command-line override), ``key``
    the TOML key path of the offending value (empty for the file as a whole), ``problem``
    a short sentence. ``str(error)`` is the line printed to the user.
    """

    def __init__(self, file: str, key: str, problem: str):
        self.file = shorten(printable(str(file)))
        self.key = shorten(printable(key))
        self.problem = shorten(printable(" ".join(str(problem).split())))
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.problem}"


MAX_SHOWN = 300
"""The most characters of a file name, key path or problem an error line shows."""


def printable(text: str) -> str:
    """``text`` with every unprintable character (a line break, NUL, an escape) written
    as its Python escape, so an error stays one line and shows what was there."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text``, or its start and end around ``…`` when longer than ``limit`` characters:
    a hostile megabyte-long name must not make a megabyte-long error line."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def validation_error(
    exc: ValidationError, source: str, prefix: Sequence[str | int] = ()
) -> ScenarioError:
    """The first problem pydantic found, as a ``ScenarioError`` at ``prefix`` + its key path
    (or at the key a validator named with ``problem_at``)."""
    error = exc.errors()[0]
    return ScenarioError(source, error_key(error, prefix), problem(error))


def problem_at(key: str, text: str) -> PydanticCustomError:
    """A problem for a validator to raise when pydantic's location is not the key to name:
    ``key`` is the key path as the user should read it (``grid.'a."b".c'``)."""
    return PydanticCustomError(_KEYED, "{problem}", {"problem": text, "key": key})


def error_key(error: ErrorDetails, prefix: Sequence[str | int] = ()) -> str:
    """The key path of one pydantic error: the key given to ``problem_at``, else
    ``prefix`` followed by where pydantic found it."""
    if error["type"] == _KEYED:
        return str(error.get("ctx", {})["key"])
    return key_path([*prefix, *error_location(error)])


def error_location(error: ErrorDetails) -> list[str | int]:
    """The key path of one pydantic error, without the names of union members it tried."""
    return [part for part in error["loc"] if not _is_union_tag(part)]


def problem(error: ErrorDetails) -> str:
    """The message of one pydantic error as a short phrase for a ``ScenarioError``."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return error["msg"].removeprefix("Value error, ")


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried (e.g. "RandomOutages", "list[...]", "int"):
    # those are not keys of the file.
    return isinstance(part, str) and (
        part[:1].isupper()
        or "[" in part
        or part in {"int", "str", "float", "bool"}
        or part.startswith(("literal[", "function-"))
    )
