"""Trace files of ``[senders.NAME]``: CSV messages, checked exactly as ``messages = [...]``.

A trace has the header ``at,sender,recipients`` and one message a row: ``at`` a duration
(``"90s"``, ``"2h"`` or seconds), ``sender`` a client index below the group's ``count`` or
a mail address, ``recipients`` mail addresses separated by ``;`` or spaces. Every row has
exactly these three fields; each recipient must be a mail address in a domain the
scenario defines. Domain names match without regard to case (DNS names are
case-insensitive, RFC 4343), and are written as the scenario spells them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

from mailnet.errors import ScenarioError
from mailnet.scenario.senders import SenderGroup
from mailnet.units import parse_duration

COLUMNS = ("at", "sender", "recipients")

TraceRow = tuple[float, int | str, list[str]]
"""(seconds, client index or sender address, recipient addresses)."""


def trace_path(trace: str, base_dir: Path | None) -> Path:
    """Where ``trace`` is: relative paths resolve against the scenario file's directory."""
    path = Path(trace)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def address_problem(address: str, domains: dict[str, str]) -> tuple[str | None, str]:
    """``(problem, address)``: why ``address`` is no recipient here (or None), and the
    address with its domain as the scenario spells it. ``domains`` maps lower-case
    names to the scenario's names."""
    user, at, domain = address.rpartition("@")
    if not at or not user or not domain or any(c.isspace() for c in address):
        return f"not a mail address: {address!r}", address
    name = domains.get(domain.lower())
    if name is None:
        return f"no domain named {domain!r} in [domains]", address
    return None, f"{user}@{name}"


def domain_names(names: Iterable[str]) -> dict[str, str]:
    """Lower-case name -> the name as written, for ``address_problem``."""
    return {name.lower(): name for name in names}


def read_trace(
    path: Path, group: SenderGroup, domains: dict[str, str], source: str, key: str
) -> list[TraceRow]:
    """The messages of a trace file, each row checked; the first problem raises
    ``ScenarioError`` at ``key`` naming the file and row."""

    def fail(problem: str, row: int | None = None) -> ScenarioError:
        where = f"{path} row {row}" if row is not None else str(path)
        return ScenarioError(source, key, f"{where}: {problem}")

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                rows = list(reader)
            except csv.Error as exc:  # an unterminated quote, a NUL byte
                raise fail(f"not CSV: {exc}", reader.line_num) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read: {exc}") from None
    if not rows or tuple(c.strip() for c in rows[0]) != COLUMNS:
        raise fail(f"the header must be {','.join(COLUMNS)}")
    plan: list[TraceRow] = []
    for number, fields in enumerate(rows[1:], start=2):
        if not fields:
            continue  # a blank line
        if len(fields) != len(COLUMNS):
            shape = f"{len(fields)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})"
            raise fail(shape, number)
        at_text, sender_text, recipients_text = (f.strip() for f in fields)
        try:
            at = parse_duration(at_text)
        except ValueError as exc:
            raise fail(f"at: {exc}", number) from None
        plan.append((at, _sender(sender_text, group, fail, number), []))
        for text in recipients_text.replace(";", " ").split():
            problem, address = address_problem(text, domains)
            if problem is not None:
                raise fail(problem, number)
            plan[-1][2].append(address)
        if not plan[-1][2]:
            raise fail("no recipients", number)
    return plan


def _sender(
    text: str, group: SenderGroup, fail: Callable[[str, int], ScenarioError], number: int
) -> int | str:
    if "@" in text:
        user, _, domain = text.rpartition("@")
        if not user or not domain or any(c.isspace() for c in text):
            raise fail(f"not a mail address: {text!r}", number)
        return text
    if not text.isdigit() or int(text) >= group.count:
        raise fail(f"sender {text!r} is not a client index below count {group.count}", number)
    return int(text)
