"""Postfix's ``qshape`` view of a run: queued mail by recipient domain and age.

Postfix operators read a congested queue with ``qshape`` (Postfix source,
``auxiliary/qshape/qshape.pl``): one row per recipient domain, a ``TOTAL`` row first,
then domains by count, descending; column ``T`` is the row's total and the others count
mail by its age in the queue, in buckets of doubling width whose header is each bucket's
upper bound in minutes (``5`` is [0, 5), ``10`` is [5, 10), ... ``1280`` is [640, 1280),
``1280+`` the rest). As qshape counts each pending recipient address of a queue file,
one count here is one queued (message, recipient) row.

Which mail a hop holds is read from the run's tables. A recipient enters hop H's queue
when H receives it: for a provider, the MSA's release (``messages.released_at``); for a
backup MX or relay, the end of the ``sent`` attempt whose ``mx_host`` is H. It leaves with
its last attempt at H when that attempt hands it on or bounces it, or when the recipient
expired at H; otherwise (``in_queue`` at the end of the run) it is still queued. Its age
is counted from its arrival at H, as qshape reads the arrival time of the queue file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BUCKET_MINUTES = 5
"""Upper bound of the first age bucket (qshape's ``-t``, default 5 minutes)."""

BUCKET_COUNT = 10
"""Age buckets (qshape's ``-b``, default 10); the last has no upper bound."""

COLUMNS = (
    "T",
    *(str(BUCKET_MINUTES * 2**i) for i in range(BUCKET_COUNT - 1)),
    f"{BUCKET_MINUTES * 2 ** (BUCKET_COUNT - 2)}+",
)
"""qshape's header: the total, then each bucket by its upper bound in minutes."""

TOTAL = "TOTAL"
LINE_WIDTH = 80  # qshape's default terminal width
MIN_DOMAIN_WIDTH = 18  # qshape's narrowest domain field

_LEAVING = ("sent", "bounced")  # outcomes with which a recipient leaves the sending hop


def hops(messages: pd.DataFrame, attempts: pd.DataFrame) -> list[str]:
    """Every MTA that queues mail in the run: the providers, then the other sending hops
    (backup MXes, relays), each sorted by name."""
    providers = sorted(set(messages["provider"].dropna().astype(str)))
    others = set(attempts["hop"].dropna().astype(str)) - set(providers)
    return providers + sorted(others)


def residence(messages: pd.DataFrame, attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per recipient's stay in a hop's queue: ``hop``, ``message_id``,
    ``recipient``, ``recipient_domain``, ``arrived`` and ``left`` (seconds; ``inf`` when
    still queued at the end of the run)."""
    known = hops(messages, attempts)
    released = messages[messages["released_at"].notna()]
    from_msa = pd.DataFrame(
        {
            "hop": released["provider"].astype(str),
            "message_id": released["message_id"],
            "recipient": released["recipient"].astype(str),
            "arrived": released["released_at"].astype(float),
        }
    )
    handed = attempts[(attempts["outcome"] == "sent") & attempts["mx_host"].isin(known)]
    relayed = pd.DataFrame(
        {
            "hop": handed["mx_host"].astype(str),
            "message_id": handed["message_id"],
            "recipient": handed["recipient"].astype(str),
            "arrived": handed["ended_at"].astype(float),
        }
    )
    keys = ["hop", "message_id", "recipient"]
    stays = pd.concat([from_msa, relayed], ignore_index=True).drop_duplicates(keys)
    stays = stays.merge(_last_attempts(attempts), on=keys, how="left")
    rows = messages[["message_id", "recipient", "recipient_domain", "status", "delivered_at"]]
    rows = rows.assign(recipient=rows["recipient"].astype(str))
    stays = stays.merge(rows, on=["message_id", "recipient"], how="left")
    stays["left"] = _departure(stays)
    stays["recipient_domain"] = stays["recipient_domain"].astype(str)
    return stays[[*keys, "recipient_domain", "arrived", "left"]].reset_index(drop=True)


def _last_attempts(attempts: pd.DataFrame) -> pd.DataFrame:
    """The last attempt of each recipient at each hop: ``last_end`` and ``last_outcome``."""
    ended = attempts["ended_at"].fillna(attempts["started_at"]).astype(float)
    return (
        pd.DataFrame(
            {
                "hop": attempts["hop"].astype(str),
                "message_id": attempts["message_id"],
                "recipient": attempts["recipient"].astype(str),
                "last_end": ended,
                "last_outcome": attempts["outcome"].astype(str),
            }
        )
        .sort_values("last_end", kind="stable")
        .drop_duplicates(["hop", "message_id", "recipient"], keep="last")
    )


def _departure(stays: pd.DataFrame) -> np.ndarray:
    """When each stay ended (``inf``: still queued at the end of the run)."""
    status = stays["status"].astype(str).to_numpy()
    still = status == "in_queue"
    tried = stays["last_end"].notna().to_numpy()
    handed_on = stays["last_outcome"].isin(_LEAVING).to_numpy()
    last_end = stays["last_end"].to_numpy(dtype=float)
    delivered = stays["delivered_at"].to_numpy(dtype=float)
    arrived = stays["arrived"].to_numpy(dtype=float)
    # never attempted here: delivered locally, still waiting, or gone at once
    untried = np.where(still, np.inf, np.where(np.isnan(delivered), arrived, delivered))
    tried_left = np.where(handed_on | ~still, last_end, np.inf)
    return np.where(tried, tried_left, untried)


def bucket(age_s: np.ndarray) -> np.ndarray:
    """qshape's age bucket (1 to ``BUCKET_COUNT``) of each age in seconds: 1 below
    ``BUCKET_MINUTES``, then one more for each doubling, the last without a bound."""
    ticks = np.asarray(age_s, dtype=float) / (60 * BUCKET_MINUTES)
    with np.errstate(divide="ignore"):
        doublings = np.floor(np.log2(np.maximum(ticks, 1.0)))
    index = np.where(ticks < 1, 1, 2 + doublings)
    return np.minimum(index, BUCKET_COUNT).astype(int)


def qshape(
    messages: pd.DataFrame, attempts: pd.DataFrame, at: float, hop: str | None = None
) -> pd.DataFrame:
    """The queue at ``at`` (seconds) as qshape shows it: one row per recipient domain
    (index ``domain``), ``TOTAL`` first, then by total descending, shorter names first
    on ties, then by name; columns ``COLUMNS``, counts of queued recipients. ``hop``: one
    MTA's queue (default: every MTA's queue together)."""
    stays = residence(messages, attempts)
    if hop is not None:
        stays = stays[stays["hop"] == hop]
    queued = stays[(stays["arrived"] <= at) & (at < stays["left"])]
    buckets = bucket(at - queued["arrived"].to_numpy(dtype=float))
    counts = np.zeros((0, BUCKET_COUNT + 1), dtype=int)
    domains = sorted(set(queued["recipient_domain"]))
    if domains:
        position = {d: i for i, d in enumerate(domains)}
        rows = queued["recipient_domain"].map(position).to_numpy(dtype=int)
        counts = np.zeros((len(domains), BUCKET_COUNT + 1), dtype=int)
        np.add.at(counts, (rows, buckets), 1)
        counts[:, 0] = counts[:, 1:].sum(axis=1)
    table = pd.DataFrame(counts, index=pd.Index(domains, name="domain"), columns=list(COLUMNS))
    totals = dict(zip(domains, counts[:, 0].tolist(), strict=True))
    order = sorted(domains, key=lambda d: (-totals[d], len(d), d))
    total = pd.DataFrame([table.sum().to_numpy()], index=[TOTAL], columns=list(COLUMNS))
    out = pd.concat([total, table.loc[order]]).astype(int)
    out.index.name = "domain"
    return out


def format_qshape(table: pd.DataFrame, width: int = LINE_WIDTH) -> str:
    """``table`` (from ``qshape``) as qshape prints it: each count column as wide as its
    header or ``TOTAL`` count plus one space (at least 3), the domain column filling the
    rest of ``width`` (at least 18), right-aligned; a longer name keeps its end after a
    ``+``."""
    widths = []
    for column in table.columns:
        size = max(len(str(column)), len(str(int(table.iloc[0][column]))))
        widths.append(size + 1 if size > 2 else 3)
    domain_width = max(width - sum(widths), MIN_DOMAIN_WIDTH)

    def line(name: str, cells: list[str]) -> str:
        if len(name) > domain_width:
            name = "+" + name[len(name) - domain_width + 1 :]
        return name.rjust(domain_width) + "".join(
            cell.rjust(w) for cell, w in zip(cells, widths, strict=True)
        )

    lines = [line("", [str(c) for c in table.columns])]
    for name, row in table.iterrows():
        lines.append(line(str(name), [str(int(v)) for v in row]))
    return "\n".join(lines) + "\n"


def deferred_peak(queues: pd.DataFrame) -> tuple[float, int] | None:
    """``(time, size)`` of the largest deferred queue over every MTA together (the first
    time it is reached), or ``None`` when the run never deferred mail."""
    rows = queues[(queues["kind"] == "mta") & (queues["metric"] == "deferred")]
    if rows.empty:
        return None
    rows = rows.sort_values("time", kind="stable")
    change = rows["value"] - rows.groupby("entity", observed=True)["value"].shift(fill_value=0)
    total = change.cumsum().to_numpy()
    times = rows["time"].to_numpy(dtype=float)
    # several changes at one instant: the queue's size at that time is after the last
    last_at_time = np.append(times[1:] != times[:-1], True)
    if not last_at_time.any() or total.max(initial=0) <= 0:
        return None
    sizes = np.where(last_at_time, total, -1)
    peak = int(np.argmax(sizes))
    return float(times[peak]), int(sizes[peak])
