"""Every metric of a run's summary, declared once: its key, label, unit and role.

A metric is named by its dotted key in the flattened summary (``summary.json`` with nested
keys joined by dots, as ``metrics.flatten`` writes them and as sweep tables name their
columns), e.g. ``latency_s.p90``. Keys that depend on the scenario (sender classes, MTAs,
MX hosts, lists) are declared once as a family whose key holds ``<placeholders>``, e.g.
``servers.<host>.p_wait``.

Each declaration gives a human label, a unit (which fixes how a value is written and how a
figure scales it), whether a sweep report draws it by default (``headline``) and whether a
run's summary table shows it (``brief``). The ``mailnet run`` table, the report's tables
and the sweep figures all read this catalogue; ``tests/test_metric_catalog.py`` checks it
against real summaries both ways.

Plain Python, no pandas or matplotlib: the command line imports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailnet import humanize
from mailnet.units import DAY, HOUR, MINUTE

Unit = Literal["count", "share", "s", "number"]

Kind = Literal["value", "quantile", "ratio"]
"""What a per-run value is, which fixes how its paired difference to a baseline point is
estimated (``mailnet.sweep.stats``): ``value`` (a count, a share, a time average) takes
the paired t; ``quantile`` (a percentile of the run's latencies) and ``ratio`` (a sum
over a count within the run: a mean latency, attempts per recipient) have skewed
per-run values and take a paired BCa bootstrap over the replications."""
"""``count``: a whole number of things; ``share``: a fraction in [0, 1], written in %;
``s``: seconds, written in a readable duration unit; ``number``: any other quantity
(a mean number of attempts, a time-average queue length)."""

MISSING = humanize.MISSING
"""How an undefined value (``None``, NaN) is written."""

_PLACEHOLDER = re.compile(r"<([a-z_]+)>")


@dataclass(frozen=True)
class Metric:
    """One summary metric or family of metrics.

    ``key``: dotted key in the flattened summary; ``<name>`` stands for any text (a sender
    class, a host name) and makes the declaration a family. ``label``: what it measures,
    with ``{name}`` for each placeholder. ``quantity``: the y-axis label of a sweep figure
    when it differs from ``label``; ``panel``: a short title when several members of a
    family share a figure. ``headline``: drawn by default in a sweep report; ``brief``:
    shown in a run's summary table. ``kind``: ``value``, ``quantile`` or ``ratio`` (see
    ``Kind``). ``event``: for a count, whether it counts an event worth asking "in how
    many runs did it happen, and how bad was it then" (a listing, an expiry, a
    suspension, a bounce): ``True`` for every member, or the placeholder values (e.g.
    statuses) of the members that are; a sweep's points table gives ``runs_with`` and
    the conditional damage ``if_any`` for these counts only.
    """

    key: str
    label: str
    unit: Unit
    headline: bool = False
    brief: bool = False
    quantity: str = ""
    panel: str = ""
    kind: Kind = "value"
    event: bool | tuple[str, ...] = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _PLACEHOLDER.split(self.key)
        # even items are literal text, odd ones placeholder names
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        # frozen: the compiled key is set once, here
        object.__setattr__(self, "pattern", re.compile(regex))

    @property
    def is_family(self) -> bool:
        """True if the key holds placeholders (one declaration, many summary keys)."""
        return "<" in self.key

    @property
    def group(self) -> str:
        """The key up to its first placeholder: families sharing it are listed together."""
        return self.key.partition("<")[0] if self.is_family else self.key

    def match(self, key: str) -> dict[str, str] | None:
        """The placeholder values if ``key`` is this metric (``{}`` for a plain one)."""
        found = self.pattern.fullmatch(key)
        return None if found is None else found.groupdict()

    def title(self, key: str) -> str:
        """The label of summary key ``key`` (a member of this declaration)."""
        return _fill(self.label, self.match(key) or {})

    def title_for(self, filler: str) -> str:
        """The label with each placeholder written as ``filler`` (``"(and 3 more)"``)."""
        return _fill(self.label, dict.fromkeys(_PLACEHOLDER.findall(self.key), filler))

    def axis_quantity(self, key: str) -> str:
        """What a y-axis of ``key`` shows, without its unit."""
        return _fill(self.quantity, self.match(key) or {}) if self.quantity else self.title(key)

    def panel_title(self, key: str) -> str:
        """A short title for a small panel of ``key``."""
        return _fill(self.panel, self.match(key) or {}) if self.panel else self.title(key)

    def format(self, value: object) -> str:
        """``value`` written in this metric's unit (``MISSING`` if undefined)."""
        return format_value(self.unit, value)

    def is_event(self, key: str) -> bool:
        """Whether summary key ``key`` (a member of this declaration) counts an event."""
        if isinstance(self.event, bool):
            return self.event and self.unit == "count"
        found = self.match(key) or {}
        return self.unit == "count" and any(v in self.event for v in found.values())


def _fill(template: str, values: dict[str, str]) -> str:
    readable = {k: v.replace("_", " ") if k == "status" else v for k, v in values.items()}
    return template.format(**readable)


# ------------------------------------------------------------------ units


def format_seconds(seconds: float | None) -> str:
    """A duration as people write it (``humanize.duration``): 546.96 -> ``"9 min 7 s"``."""
    return humanize.duration(seconds)


def duration_unit(max_s: float) -> tuple[float, str]:
    """``(seconds per unit, unit name)`` that keeps values up to ``max_s`` readable."""
    if not math.isfinite(max_s) or max_s < 2 * MINUTE:
        return 1.0, "s"
    if max_s < 2 * HOUR:
        return MINUTE, "min"
    if max_s < 3 * DAY:
        return HOUR, "h"
    return DAY, "days"


def _number(value: object) -> float | None:
    """``value`` as a finite float (numpy scalars too), or ``None`` if it is not one."""
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_value(unit: Unit | None, value: object) -> str:
    """``value`` written for people: counts with thousands separators, shares in %,
    seconds in a readable unit, other numbers to four significant digits; ``MISSING`` for
    ``None`` and NaN, anything that is not a number as text."""
    number = _number(value)
    if number is None:
        return MISSING if value is None or isinstance(value, float) else str(value)
    if unit == "count":
        return humanize.count(number)
    if unit == "share":
        return humanize.share(number)
    if unit == "s":
        return humanize.duration(number)
    return humanize.number(number)


def axis_scale(unit: Unit | None, values: Sequence[float]) -> tuple[float, str]:
    """``(divide by, unit text)`` to plot ``values`` of ``unit``: shares in %, seconds in
    a unit that suits the largest value, anything else as it is (no unit text)."""
    if unit == "share":
        return 0.01, "%"
    if unit == "s":
        return duration_unit(max((abs(v) for v in values if math.isfinite(v)), default=0.0))
    return 1.0, ""


# ------------------------------------------------------------------ the catalogue


OUTCOME_FIELDS: tuple[tuple[str, str, Unit], ...] = (
    ("recipients", "recipients", "count"),
    ("delivered", "delivered", "count"),
    ("inbox", "inbox", "count"),
    ("spam_folder", "spam folder", "count"),
    ("deferred_then_delivered", "delivered after a deferral", "count"),
    ("bounced", "bounced", "count"),
    ("bounced_by_reason.<code>", "bounced with {code}", "count"),
    ("bounce_rate", "bounce rate", "share"),
    ("deferral_rate", "deferral rate", "share"),
    ("spam_folder_rate", "spam-folder rate", "share"),
    ("latency_s.count", "delivered (latency measured)", "count"),
    ("latency_s.mean", "delivery latency, mean", "s"),
    ("latency_s.p50", "delivery latency, median", "s"),
    ("latency_s.p90", "delivery latency, 90th percentile", "s"),
    ("latency_s.p99", "delivery latency, 99th percentile", "s"),
)
"""The outcomes of a group of recipients (``metrics.class_outcomes``): key below the
group, label, unit. Declared for each sender class and for legitimate mail."""

_FIELD_KINDS: dict[str, Kind] = {
    "latency_s.mean": "ratio",
    "latency_s.p50": "quantile",
    "latency_s.p90": "quantile",
    "latency_s.p99": "quantile",
}
"""The kind of the outcome and cohort fields that are not plain values (see ``Kind``)."""

_EVENT_FIELDS = frozenset(
    {
        "bounced",
        "bounced_by_reason.<code>",
        "stopped_at_submission",
        "held",
        "expired",
        "in_queue",
    }
)
"""The outcome and cohort counts that are events (see ``Metric.event``)."""

_FAILED_STATUSES = ("bounced", "expired", "dropped", "in_queue")
"""The final statuses that are events: every status but ``delivered``."""

_PERCENTILES = (("p50", "median"), ("p90", "90th percentile"), ("p99", "99th percentile"))


def _latency(key: str, name: str, headline: Iterable[str]) -> list[Metric]:
    """The percentile summary of a latency (``metrics._percentiles``)."""
    chosen = set(headline)
    return [
        Metric(f"{key}.count", f"{name}: recipients measured", "count"),
        Metric(f"{key}.mean", f"{name}, mean", "s", kind="ratio"),
        *(
            Metric(
                f"{key}.{p}",
                f"{name}, {words}",
                "s",
                headline=p in chosen,
                brief=True,
                kind="quantile",
            )
            for p, words in _PERCENTILES
        ),
    ]


def _outcomes(prefix: str, who: str, headline: Iterable[str] = ()) -> list[Metric]:
    """``OUTCOME_FIELDS`` below ``prefix``, labelled ``"<who>: <label>"``."""
    chosen = set(headline)
    return [
        Metric(
            f"{prefix}.{key}",
            f"{who}: {label}",
            unit,
            headline=key in chosen,
            kind=_FIELD_KINDS.get(key, "value"),
            event=key in _EVENT_FIELDS,
        )
        for key, label, unit in OUTCOME_FIELDS
    ]


def _queues() -> list[Metric]:
    """The time-average queue levels (``metrics.queue_averages``), one family per series;
    the MTA queues are in the run's summary table."""
    series = (
        ("mta", "mta", "active", "messages in the active queue", "MTA"),
        ("mta", "mta", "deferred", "messages in the deferred queue", "MTA"),
        ("server", "host", "sessions", "sessions in use", "server"),
        ("server", "host", "backlog", "connections waiting", "server"),
    )
    return [
        Metric(
            f"queue_time_average.{kind}:<{entity}>:{name}",
            f"time-average {what} at {where} {{{entity}}}",
            "number",
            headline=True,
            brief=kind == "mta",
            quantity=what,
            panel=f"{where} {{{entity}}}",
        )
        for kind, entity, name, what, where in series
    ]


COHORT_FIELDS: tuple[tuple[str, str, Unit], ...] = (
    ("recipients", "recipients created in the cohort window", "count"),
    ("delivered", "delivered", "count"),
    ("bounced", "bounced after queueing", "count"),
    ("stopped_at_submission", "refused at submission", "count"),
    ("held", "still held at submission at the end", "count"),
    ("expired", "expired", "count"),
    ("in_queue", "still queued at the end", "count"),
    ("delivered_share", "share delivered by the end", "share"),
    ("failed_share", "share bounced, expired or refused at submission", "share"),
    ("queued_share", "share still queued or held at the end", "share"),
    ("latency_s.p50", "latency to delivery, median (censoring-aware)", "s"),
    ("latency_s.p90", "latency to delivery, 90th percentile (censoring-aware)", "s"),
    ("latency_s.p99", "latency to delivery, 99th percentile (censoring-aware)", "s"),
    ("delivered_within.<within>", "share delivered within {within}", "share"),
)
"""A cohort block (``cohort.follow``): the mail created in the cohort window, followed to
the end of the run; the latency quantiles count the mail still queued (undefined where
the share ever delivered stays below them). Declared for each of ``cohort.GROUPS``."""


def _cohort(prefix: str, who: str, headline: Iterable[str] = ()) -> list[Metric]:
    """``COHORT_FIELDS`` below ``prefix``, labelled ``"<who>: <label>"``."""
    chosen = set(headline)
    return [
        Metric(
            f"{prefix}.{key}",
            f"{who}: {label}",
            unit,
            headline=key in chosen,
            brief=key in chosen and "within" not in key,
            kind=_FIELD_KINDS.get(key, "value"),
            event=key in _EVENT_FIELDS,
        )
        for key, label, unit in COHORT_FIELDS
    ]


def _harm(prefix: str, who: str, *, brief: bool) -> list[Metric]:
    """The harm done to mail by others' sending (``collateral``) or by its own sender's
    (``self_inflicted``), ``metrics.collateral``: every count in it is an event."""
    outcomes = (
        ("delayed", "delayed, then delivered"),
        ("bounced", "bounced or expired"),
        ("spam_folder", "spam folder"),
    )
    return [
        Metric(f"{prefix}.recipients", f"{who}: recipients", "count", event=True),
        Metric(f"{prefix}.rate", f"{who}: rate", "share", headline=True, brief=brief),
        Metric(
            f"{prefix}.by_cause.<cause>", f"{who}: recipients hit by {{cause}}", "count", event=True
        ),
        *(
            Metric(f"{prefix}.{key}", f"{who}: {words}", "count", event=True)
            for key, words in outcomes
        ),
    ]


_COHORT_HEADLINE = (
    "delivered_share",
    "queued_share",
    "latency_s.p50",
    "latency_s.p90",
    "delivered_within.<within>",
)

_LEGITIMATE_HEADLINE = (
    "bounce_rate",
    "deferral_rate",
    "spam_folder_rate",
    "latency_s.p50",
    "latency_s.p90",
    "latency_s.p99",
)

CATALOG: tuple[Metric, ...] = (
    Metric("messages", "messages", "count", brief=True),
    Metric("recipients", "recipients (message and recipient pairs)", "count", brief=True),
    Metric("status.<status>", "recipients {status}", "count", brief=True, event=_FAILED_STATUSES),
    Metric(
        "by_class.<sender_class>.<status>",
        "{sender_class} recipients {status}",
        "count",
        event=_FAILED_STATUSES,
    ),
    Metric("dsn.messages", "DSNs sent", "count", brief=True),
    Metric("dsn.backscatter", "DSNs to no provider's user (backscatter)", "count", event=True),
    Metric("dsn.<status>", "DSN recipients {status}", "count", event=_FAILED_STATUSES),
    Metric("delivery_rate", "delivery rate", "share", headline=True, brief=True),
    Metric("bounce_rate", "bounce rate", "share", headline=True, brief=True),
    Metric("final_rate", "share with a final outcome", "share"),
    Metric("deferral_rate", "deferral rate", "share", headline=True, brief=True),
    *_latency("latency_s", "delivery latency", ("p50", "p90", "p99")),
    *_latency("end_to_end_latency_s", "end-to-end latency", ("p90",)),
    Metric("attempts_per_message", "attempts per recipient", "number", kind="ratio"),
    Metric(
        "attempts_per_remote_recipient",
        "attempts per remote recipient",
        "number",
        headline=True,
        brief=True,
        kind="ratio",
    ),
    Metric("attempts", "delivery attempts (with a lookup or connection)", "count"),
    Metric("suspended_attempts", "deferrals without a connection (suspended)", "count", event=True),
    Metric(
        "skipped_attempts",
        "deferrals without a connection (every host held)",
        "count",
        event=True,
    ),
    *_outcomes("legitimate", "legitimate mail", _LEGITIMATE_HEADLINE),
    Metric("cohort.start_s", "cohort window: start (mail created from)", "s"),
    Metric("cohort.end_s", "cohort window: end (mail created before)", "s"),
    *_cohort("legitimate_remote", "legitimate remote mail (cohort)", _COHORT_HEADLINE),
    *_cohort("spam_remote", "spam to other domains (cohort)"),
    *_cohort("legitimate_local", "legitimate local mail (cohort)"),
    *_harm("collateral", "collateral damage", brief=True),
    *_harm("self_inflicted", "self-inflicted harm", brief=False),
    Metric("session_wait_s.sessions", "SMTP sessions", "count"),
    Metric(
        "session_wait_s.mean",
        "wait for a session, mean",
        "s",
        headline=True,
        brief=True,
        kind="ratio",
    ),
    Metric("session_wait_s.p_wait", "wait for a session, probability of waiting", "share"),
    *_queues(),
    *_outcomes("classes.<sender_class>", "{sender_class} mail"),
    Metric("servers.<host>.connections", "{host}: connections", "count"),
    Metric("servers.<host>.refused_rate", "{host}: share of connections refused", "share"),
    Metric("servers.<host>.mean_wait_s", "{host}: wait for a session, mean", "s", kind="ratio"),
    Metric("servers.<host>.p_wait", "{host}: probability of waiting for a session", "share"),
    Metric("listings.total", "blocklist listings", "count", brief=True, event=True),
    Metric(
        "listings.<list>:<scope>", "blocklist listings on {list} by {scope}", "count", event=True
    ),
    Metric("warmup_s", "warm-up", "s"),
    Metric("duration_s", "simulated duration", "s"),
)
"""Every summary metric, in the order tables list them."""

WINDOWS: tuple[tuple[str, str], ...] = (
    ("queue_time_average.", "after warm-up"),
    ("servers.", "after warm-up"),
    ("cohort.", "cohort window"),
    ("legitimate_remote.", "cohort window"),
    ("spam_remote.", "cohort window"),
    ("legitimate_local.", "cohort window"),
)
"""The time window of each metric, by key prefix: the time-averaged queues and the
per-server statistics start at ``warmup``; the cohort blocks cover the mail created in
``cohort_start`` .. ``+ cohort_length``, followed to the end; every other metric (counts,
rates, ``latency_s``, ``session_wait_s``) covers the whole run, warm-up included."""


def window(key: str) -> str:
    """The time window summary key ``key`` covers: ``after warm-up``, ``cohort window``
    or ``whole run`` (see ``WINDOWS``)."""
    return next((w for prefix, w in WINDOWS if key.startswith(prefix)), "whole run")


_GROUP_RANK: dict[str, int] = {}
for _index, _metric in enumerate(CATALOG):
    _GROUP_RANK.setdefault(_metric.group, _index)


_PLAIN: dict[str, int] = {}
_FAMILIES: list[tuple[int, str, Metric]] = []  # (position, literal prefix, declaration)
for _index, _metric in enumerate(CATALOG):
    if _metric.is_family:
        _FAMILIES.append((_index, _metric.group, _metric))
    else:
        _PLAIN.setdefault(_metric.key, _index)


def lookup(key: str) -> Metric | None:
    """The declaration of summary key ``key`` (the first that matches), or ``None``.

    Only the plain declaration equal to ``key`` and the families whose literal prefix
    starts it can match: a summary of a world with 10,000 servers looks up ~70,000 keys,
    each once against the ~120 declarations otherwise."""
    plain = _PLAIN.get(key)
    for index, prefix, metric in _FAMILIES:
        if plain is not None and index > plain:
            break
        if key.startswith(prefix) and metric.pattern.fullmatch(key) is not None:
            return metric
    return None if plain is None else CATALOG[plain]


def undeclared(keys: Iterable[str]) -> list[str]:
    """The keys of a flattened summary that no declaration covers."""
    return [k for k in keys if lookup(k) is None]


def missing(keys: Iterable[str]) -> list[str]:
    """The plain (non-family) declarations absent from a flattened summary's ``keys``."""
    present = set(keys)
    return [m.key for m in CATALOG if not m.is_family and m.key not in present]


def members(keys: Iterable[str], *, brief: bool = False, headline: bool = False) -> list[str]:
    """The ``keys`` that are declared (and ``brief`` / ``headline`` if asked), in catalogue
    order; families that share the text before their first placeholder (every
    ``queue_time_average.*`` series, every ``classes.*`` field) keep the order of ``keys``
    among themselves."""
    chosen: list[tuple[int, int, str]] = []
    for position, key in enumerate(keys):
        metric = lookup(key)
        if metric is None or (brief and not metric.brief) or (headline and not metric.headline):
            continue
        chosen.append((_GROUP_RANK[metric.group], position, key))
    return [key for _, _, key in sorted(chosen)]


def title(key: str) -> str:
    """The label of ``key``; an undeclared key is shown as itself, underscores as spaces."""
    metric = lookup(key)
    return metric.title(key) if metric is not None else key.replace("_", " ")


def kind_of(key: str) -> Kind:
    """The kind of summary key ``key`` (``value`` if it is not declared)."""
    metric = lookup(key)
    return metric.kind if metric is not None else "value"


def is_event(key: str) -> bool:
    """Whether summary key ``key`` is a declared count of an event (``Metric.event``)."""
    metric = lookup(key)
    return metric is not None and metric.is_event(key)


def unit_of(key: str) -> Unit | None:
    """The unit of summary key ``key``, or ``None`` if it is not declared."""
    metric = lookup(key)
    return metric.unit if metric is not None else None


def format_metric(key: str, value: object) -> str:
    """``value`` of summary key ``key`` written in its unit."""
    return format_value(unit_of(key), value)
