"""Exim retry rules: parse ``F,2h,15m; G,16h,1h,1.5; F,4d,6h`` and compute the next retry gap.

Pure functions over frozen rule objects; the per-host retry data they act on live in
``mailnet.policies.retry.exim.EximRetry``. Semantics follow Exim's ``readconf.c`` (parsing) and
``retry.c`` (``retry_update``); see mail-facts.md §2. Times are seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from numpy.random import Generator

from mailnet.units import parse_duration

RETRY_INTERVAL_MAX = 24 * 3600.0
"""Exim's ``retry_interval_max`` default and also its largest allowed value (``globals.c``)."""

DEFAULT_RETRY_RULE = "F,2h,15m; G,16h,1h,1.5; F,4d,6h"
"""The rule of Exim's ``configure.default`` (l.943, mail-facts.md §2)."""

_TIME = re.compile(r"(?:\d+[wdhms])+")
_UNIT = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_FACTOR = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class RetryRule:
    """One Exim retry rule.

    ``kind`` is ``"F"`` (fixed interval ``p1``), ``"G"`` (geometric: at least ``p1``,
    otherwise the last gap times ``p2``) or ``"H"`` (G randomised). ``cutoff`` is the
    time since the first failure up to which the rule applies, in seconds; ``p1`` is in
    seconds; ``p2`` is the G/H multiplier (``None`` for F).
    """

    kind: str
    cutoff: float
    p1: float
    p2: float | None = None

    def __str__(self) -> str:
        fields = [self.kind, format_exim_time(self.cutoff), format_exim_time(self.p1)]
        if self.p2 is not None:
            fields.append(f"{self.p2:g}")
        return ",".join(fields)


class RetryStep(NamedTuple):
    """Result of :func:`next_interval`: the gap until the next try and whether the
    destination has passed the final cutoff (Exim then fails the address)."""

    interval: float
    timed_out: bool


def parse_exim_time(text: str) -> int:
    """Parse an Exim time such as ``"2h"``, ``"1h30m"``, ``"4d"`` or ``"1w"`` into seconds.

    Like Exim's ``readconf_readtime``, every number needs a unit letter (w, d, h, m, s) and
    parts add up. Raises ``ValueError`` for anything else.
    """
    cleaned = text.strip()
    # Exim's syntax is stricter than mailnet's: whole numbers, each with a unit letter.
    if not _TIME.fullmatch(cleaned):
        raise ValueError(f"bad Exim time {text!r} (expected e.g. 30s, 15m, 2h, 1h30m, 4d, 1w)")
    return int(parse_duration(cleaned))


def format_exim_time(seconds: float) -> str:
    """Write seconds as a compact Exim time (``5400 -> "1h30m"``); inverse of
    :func:`parse_exim_time` for whole seconds."""
    rest = int(seconds)
    parts = []
    for unit in "wdhms":
        count, rest = divmod(rest, _UNIT[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_retry_rules(text: str) -> tuple[RetryRule, ...]:
    """Parse a semicolon-separated list of Exim retry rules.

    Each rule is ``F,<cutoff>,<interval>``, ``G,<cutoff>,<interval>,<factor>`` or
    ``H,<cutoff>,<interval>,<factor>``; the letter may be lower case and blanks around
    commas and semicolons are ignored, as in Exim. An empty text gives no rules (Exim then
    fails an address at its first failure).

    Raises ``ValueError`` with a one-line message naming the offending rule: unknown
    letter, missing or extra fields, bad time, cutoff or interval of zero, factor below 1
    (Exim's own check, ``readconf.c``: "bad parameters for retry rule"), or a cutoff not
    after the previous rule's (Exim never reaches such a rule, so it is a mistake).
    """
    rules: list[RetryRule] = []
    chunks = [chunk.strip() for chunk in text.split(";")]
    if chunks and chunks[-1] == "":
        chunks.pop()  # a trailing semicolon is allowed
    if chunks == [""]:
        return ()
    for chunk in chunks:
        rule = _parse_rule(chunk)
        if rules and rule.cutoff <= rules[-1].cutoff:
            raise ValueError(
                f"retry rule {chunk!r}: cutoff {format_exim_time(rule.cutoff)} is not after "
                f"the previous rule's cutoff {format_exim_time(rules[-1].cutoff)}"
            )
        rules.append(rule)
    return tuple(rules)


def _parse_rule(chunk: str) -> RetryRule:
    if not chunk:
        raise ValueError("retry rule '': empty rule (two semicolons in a row?)")
    fields = [field.strip() for field in chunk.split(",")]
    kind = fields[0].upper()
    if kind not in ("F", "G", "H"):
        raise ValueError(
            f"retry rule {chunk!r}: unknown rule letter {fields[0]!r} (expected F, G or H)"
        )
    wanted = 3 if kind == "F" else 4
    shape = "F,<cutoff>,<interval>" if kind == "F" else f"{kind},<cutoff>,<interval>,<factor>"
    if len(fields) != wanted:
        problem = "missing field" if len(fields) < wanted else "too many fields"
        raise ValueError(f"retry rule {chunk!r}: {problem} (expected {shape})")

    def time_field(value: str, what: str) -> int:
        try:
            seconds = parse_exim_time(value)
        except ValueError:
            raise ValueError(
                f"retry rule {chunk!r}: bad {what} {value!r} (Exim time like 15m, 2h, 1h30m, 4d)"
            ) from None
        if seconds <= 0:
            raise ValueError(f"retry rule {chunk!r}: {what} must be greater than zero")
        return seconds

    cutoff = time_field(fields[1], "cutoff")
    p1 = time_field(fields[2], "interval")
    if kind == "F":
        return RetryRule(kind, float(cutoff), float(p1))
    if not _FACTOR.fullmatch(fields[3]):
        raise ValueError(f"retry rule {chunk!r}: bad factor {fields[3]!r} (expected e.g. 1.5)")
    factor = float(fields[3])
    if factor < 1.0:
        raise ValueError(f"retry rule {chunk!r}: factor {fields[3]} must be at least 1")
    return RetryRule(kind, float(cutoff), float(p1), factor)


def select_rule(
    rules: tuple[RetryRule, ...], failing_interval: float
) -> tuple[RetryRule | None, bool]:
    """Return ``(rule, timed_out)`` for a destination failing for ``failing_interval`` s.

    The rule is the first whose cutoff is at least the failing interval (Exim compares
    with ``<=``, so a failure exactly at a cutoff still uses that rule). Past the last
    cutoff the last rule keeps setting the retry time but the destination has timed out.
    With no rules at all: ``(None, True)``.
    """
    for rule in rules:
        if failing_interval <= rule.cutoff:
            return rule, False
    return (rules[-1] if rules else None), True


def next_interval(
    rules: tuple[RetryRule, ...],
    failing_interval: float,
    lastgap: float,
    rng: Generator | None = None,
    interval_max: float = RETRY_INTERVAL_MAX,
) -> RetryStep:
    """Gap (seconds) from this failure to the next allowed try, as Exim's ``retry_update``.

    ``failing_interval`` is the time since the first failure (the caller applies Exim's
    "message age if larger" rule); ``lastgap`` is ``min(predicted, actual)`` of the
    previous gap, see ``EximRetry``. Per rule kind:

    - F: ``p1``.
    - G: ``p1`` if ``lastgap < p1`` else ``floor(lastgap * p2)`` (Exim's integer
      arithmetic, factor in thousandths).
    - H: with ``next_gap = floor(lastgap * p2)``, ``p1`` if ``next_gap <= p1``, else
      ``p1 + d/2 + U[0, d)/2`` where ``d = next_gap - p1``: uniform over the *upper half*
      of ``[p1, next_gap)``, exactly as ``retry.c`` computes it. Needs ``rng``.

    The gap is capped at ``interval_max``. With no rules the gap is 0 and the destination
    has timed out (Exim sets the next try to "now").
    """
    rule, timed_out = select_rule(rules, failing_interval)
    if rule is None:
        return RetryStep(0.0, True)
    if rule.kind == "F":
        gap = rule.p1
    else:
        assert rule.p2 is not None
        grown = float((lastgap * round(rule.p2 * 1000)) // 1000)
        if rule.kind == "G":
            gap = rule.p1 if lastgap < rule.p1 else grown
        else:
            if rng is None:
                raise ValueError(f"retry rule {rule}: an H rule needs a random generator")
            gap = rule.p1
            spread = int(grown - rule.p1)
            if spread > 0:
                gap += int(rng.integers(0, spread)) // 2 + spread // 2
    return RetryStep(min(gap, interval_max), timed_out)
