"""The summary of one run as people read it: all mail and legitimate mail side by side,
collateral damage beside them, then the run's other headline numbers, each value written
in its unit (``metric_catalog``, ``humanize``).

Plain Python over ``summary.json`` (and the few figures ``timeseries.settling`` adds):
``mailnet run`` prints it and the report shows it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailnet.humanize import duration
from mailnet.metric_catalog import Metric, Unit, format_value, lookup, members, title, unit_of
from mailnet.metrics import flatten

if TYPE_CHECKING:
    from mailnet.timeseries import Settling

Row = tuple[str, str, str]
"""``(label, all mail, legitimate mail)``; an empty cell where a figure does not apply."""

SIDE_BY_SIDE: tuple[tuple[str, str, str, Unit], ...] = (
    ("recipients", "recipients", "legitimate.recipients", "count"),
    ("delivered", "status.delivered", "legitimate.delivered", "count"),
    ("bounced or expired", "failed", "legitimate.bounced", "count"),
    ("in a queue at the end", "status.in_queue", "legitimate.in_queue", "count"),
    ("delivery rate", "delivery_rate", "legitimate.delivery_rate", "share"),
    ("bounce rate", "bounce_rate", "legitimate.bounce_rate", "share"),
    ("deferral rate", "deferral_rate", "legitimate.deferral_rate", "share"),
    ("spam-folder rate", "spam_folder_rate", "legitimate.spam_folder_rate", "share"),
    ("latency, median", "latency_s.p50", "legitimate.latency_s.p50", "s"),
    ("latency, 90th percentile", "latency_s.p90", "legitimate.latency_s.p90", "s"),
    ("latency, 99th percentile", "latency_s.p99", "legitimate.latency_s.p99", "s"),
    ("latency, maximum", "max_latency_s", "", "s"),
)
"""``(label, all-mail key, legitimate key, unit)`` in the flattened summary, with the
derived keys ``_derived`` adds. Latency: from submission to the recipient's mailbox."""

SHOWN_ELSEWHERE = {
    "recipients",
    "status.delivered",
    "status.bounced",
    "status.expired",
    "status.in_queue",
    "delivery_rate",
    "bounce_rate",
    "deferral_rate",
    "latency_s.p50",
    "latency_s.p90",
    "latency_s.p99",
    "collateral.rate",
}
"""Brief metrics the side-by-side and collateral rows already show."""


def _derived(flat: dict[str, Any], summary: Mapping[str, Any]) -> None:
    """Add the figures the summary has only in parts, in place."""
    status = summary.get("status", {})
    flat["failed"] = status.get("bounced", 0) + status.get("expired", 0)
    classes = summary.get("classes", {}).values()
    spam = sum(c.get("spam_folder", 0) for c in classes)
    delivered = sum(c.get("delivered", 0) for c in classes)
    flat["spam_folder_rate"] = spam / delivered if delivered else None
    legit = summary.get("legitimate", {})
    if legit.get("recipients"):
        flat["legitimate.delivery_rate"] = legit.get("delivered", 0) / legit["recipients"]
    by_class = summary.get("by_class", {})
    flat["legitimate.in_queue"] = sum(
        counts.get("in_queue", 0) for cls, counts in by_class.items() if cls != "spam"
    )


def side_by_side(summary: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> list[Row]:
    """The ``SIDE_BY_SIDE`` rows of ``summary``; ``extra`` adds flattened keys (e.g.
    ``max_latency_s``); a row whose all-mail figure is unknown is left out."""
    flat = flatten(dict(summary))
    _derived(flat, summary)
    flat.update(extra or {})
    return [
        (label, format_value(unit, flat[key]), format_value(unit, flat.get(legit)) if legit else "")
        for label, key, legit, unit in SIDE_BY_SIDE
        if key in flat
    ]


def collateral_rows(summary: Mapping[str, Any]) -> list[Row]:
    """Legitimate mail hurt by a reputation other senders earned: how much, and by what."""
    hit = summary.get("collateral") or {}
    if not hit:
        return []
    rows: list[Row] = [
        ("collateral: recipients hit", "", format_value("count", hit.get("recipients"))),
        ("collateral: share", "", format_value("share", hit.get("rate"))),
        ("collateral: bounced", "", format_value("count", hit.get("bounced"))),
        ("collateral: spam folder", "", format_value("count", hit.get("spam_folder"))),
    ]
    for cause, n in sorted((hit.get("by_cause") or {}).items()):
        rows.append((f"collateral: {cause}", "", format_value("count", n)))
    return rows


FAMILY_ROWS = 10
"""At most this many rows of one family of metrics (one per MTA, say): a generated
internet has a thousand MTAs. The members with the largest values are shown, and one
more row tells how many were left out and the largest of their values."""


def other_rows(summary: Mapping[str, Any]) -> list[Row]:
    """The other brief metrics of the catalogue, in its order (all mail only); of a family
    with more than ``FAMILY_ROWS`` members, the ``FAMILY_ROWS`` largest, then a row for
    the rest (``summary.json`` has them all)."""
    flat = flatten(dict(summary))
    keys = [k for k in members(flat, brief=True) if k not in SHOWN_ELSEWHERE]
    families: dict[Metric, list[str]] = {}
    for key in keys:
        metric = lookup(key)
        if metric is not None and metric.is_family:
            families.setdefault(metric, []).append(key)
    left_out: dict[str, tuple[Metric, list[str]]] = {}  # after which key, what
    for metric, family in families.items():
        if len(family) > FAMILY_ROWS:
            by_size = sorted(family, key=lambda k: -_size(flat[k]))  # stable: ties keep order
            shown = set(by_size[:FAMILY_ROWS])
            last = [k for k in family if k in shown][-1]
            left_out[last] = (metric, by_size[FAMILY_ROWS:])
    hidden = {k for _, rest in left_out.values() for k in rest}
    rows: list[Row] = []
    for key in keys:
        if key in hidden:
            continue
        rows.append((title(key), format_value(unit_of(key), flat[key]), ""))
        if key in left_out:
            rows.append(_more_row(*left_out[key], flat))
    return rows


def _size(value: Any) -> float:
    """How large a member's value is, to choose the ones shown (undefined: smallest)."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return -math.inf if number is None or math.isnan(number) else abs(number)


def _more_row(metric: Metric, rest: list[str], flat: dict[str, Any]) -> Row:
    """One row for the members of ``metric`` not shown, ``rest`` largest first: how many,
    and their largest value."""
    label = metric.title_for(f"(and {len(rest):,} more)")
    return label, f"each at most {format_value(metric.unit, flat[rest[0]])}", ""


def settling_rows(settled: Settling) -> list[Row]:
    """The deferred queue's peak and when it was empty again (after a scheduled outage)."""
    if settled.deferred_peak_at is None:
        return [("deferred queue", "never used", "")]
    peak = f"{settled.deferred_peak:,} at {duration(settled.deferred_peak_at)}"
    if settled.drained_at is None:
        return [
            ("deferred queue, peak", peak, ""),
            ("deferred queue empty again", "not by the end", ""),
        ]
    rows = [
        ("deferred queue, peak", peak, ""),
        ("deferred queue empty again", f"at {duration(settled.drained_at)}", ""),
    ]
    after = settled.drain_after_outage_s
    if after is not None and settled.outage_ended_at is not None:
        rows.append(
            (
                f"... after the outage that ended at {duration(settled.outage_ended_at)}",
                duration(after),
                "",
            )
        )
    return rows


def summary_rows(summary: Mapping[str, Any], settled: Settling | None = None) -> list[Row]:
    """Every row of a run's summary table, in order; ``settled`` adds the maximum latency
    and how the deferred queue drained."""
    extra = {"max_latency_s": settled.max_latency_s} if settled is not None else {}
    return [
        *side_by_side(summary, extra),
        *collateral_rows(summary),
        *(settling_rows(settled) if settled is not None else []),
        *other_rows(summary),
    ]
