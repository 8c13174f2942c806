"""Queueing theory beside the measurements: Erlang C and Erlang B for an MX host.

When a sweep varies the sessions of one MX host that is an M/M/c queue — exponential
service, fed by one Poisson sender whose every message has one recipient in the host's
only domain — the measured share of connections that wait for a session (unlimited
backlog) is drawn against Erlang C, and the share refused (no backlog) against Erlang B.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mailnet.report.style import new_figure, series_style
from mailnet.report.sweeps import replications_note
from mailnet.units import parse_duration, parse_rate

_SESSIONS = re.compile(r'^servers\."?(?P<host>[^"]+)"?\.sessions$')


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``a`` Erlangs (recursive form)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a`` < c Erlangs."""
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mmc_load(base: dict[str, Any], host: str) -> float | None:
    """Offered load (Erlangs) at ``host`` if the base scenario makes it an M/M/c queue."""
    server = base.get("servers", {}).get(host, {})
    service = server.get("service_time", {})
    if service.get("dist") != "exponential" or "mean" not in service:
        return None
    domains = [
        name
        for name, d in base.get("domains", {}).items()
        if [r.get("host") for r in d.get("mx", [])] == [host]
    ]
    senders = [g for g in base.get("senders", {}).values() if "rate" in g]
    if len(domains) != 1 or len(senders) != 1:
        return None
    group = senders[0]
    if group.get("domains") != {domains[0]: 1.0} or float(group.get("recipients", 1)) != 1:
        return None
    rate = parse_rate(group["rate"]) * int(group.get("count", 1))
    return rate * parse_duration(service["mean"])


def capacity_figure(points: pd.DataFrame, base: dict[str, Any]) -> Figure | None:
    """Measured waiting and refusal shares against Erlang C and B, or ``None`` when the
    sweep is not over the sessions of an M/M/c host (see the module docstring)."""
    found = next((m for c in points.columns if (m := _SESSIONS.match(str(c)))), None)
    if found is None:
        return None
    column, host = found.string, found.group("host")
    a = mmc_load(base, host)
    backlog = next(
        (c for c in points.columns if c == column.replace(".sessions", ".backlog")), None
    )
    if a is None or backlog is None:
        return None
    figure, ax = new_figure(height=4.6, width=8.0)
    c_grid = np.arange(max(1, int(points[column].min())), int(points[column].max()) + 1)
    cases = (
        ("unlimited", "p_wait", erlang_c, "waited for a session (Erlang C)"),
        ("0", "refused_rate", erlang_b, "refused, no backlog (Erlang B)"),
    )
    drawn = 0
    for i, (level, metric, theory, label) in enumerate(cases):
        rows = points[points[backlog].astype(str) == level].sort_values(column)
        name = f"servers.{host}.{metric}"
        if rows.empty or f"{name}.mean" not in rows:
            continue
        style = series_style(i)
        ax.plot(
            c_grid,
            [theory(int(c), a) * 100 for c in c_grid],
            linestyle=style.linestyle,
            color=style.color,
            linewidth=1.2,
            label=f"theory: {label}",
        )
        mean = rows[f"{name}.mean"].to_numpy(float) * 100
        # drawn as computed: shares have their interval on the logit scale (never below 0)
        low = rows[f"{name}.ci_low"].to_numpy(float) * 100
        high = rows[f"{name}.ci_high"].to_numpy(float) * 100
        ax.errorbar(
            rows[column].to_numpy(float),
            mean,
            yerr=[mean - low, high - mean],
            fmt=style.marker,
            color=style.color,
            capsize=4,
            markersize=7,
            label=f"mailnet (95 % CI): {label}",
        )
        drawn += 1
    if not drawn:
        return None
    ax.set_xlabel(f"SMTP sessions at {host}")
    ax.set_ylabel("share of connections (%)")
    ax.set_xticks(c_grid)
    ax.set_title(
        f"{host}: M/M/c at {a:.3g} Erlangs, measured against Erlang C and B\n"
        + replications_note(points),
        fontsize="medium",
    )
    ax.legend(fontsize="small")
    return figure
