"""The one error a user sees for bad input: the file, the key path and the problem."""

from __future__ import annotations

import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(parts: tuple | list) -> str:
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
        self.file = str(file)
        self.key = key
        self.problem = " ".join(str(problem).split())
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.problem}"
