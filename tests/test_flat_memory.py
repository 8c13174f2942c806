"""A summary-only run holds no more memory after twice as long: nothing is kept per
message, per cohort row or per destination that has gone idle.

A small world of 40 destination domains runs for two and a quarter days summary-only; at
three instants from day 1 and three from day 2 the test notes the memory Python has
allocated (tracemalloc, after a collection) and checks that every ``Destination`` object
alive is in use. By day 1 the senders' random streams have drawn their second blocks (the
first stays referenced) and every mailbox has had mail. The smallest of each three is
compared: the mail in flight differs from one instant to the next, and the quietest
instant holds the least of it. The cohort covers the whole run and is past the rows it
keeps one by one (``cohort.EXACT_ROWS``, lowered to 1,000), so a row kept per cohort
recipient (9 bytes) and any object kept per message (at least 56 bytes) would show.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from mailnet import cohort, simulate
from mailnet.model.destinations import Destination
from mailnet.scenario import Scenario
from mailnet.units import DAY

DOMAINS = 40
EARLY = (DAY, 1.125 * DAY, 1.25 * DAY)
LATE = (2 * DAY, 2.125 * DAY, 2.25 * DAY)
BYTES_PER_MESSAGE = 4.0
"""Growth allowed from early to late, per message created between: under a third of
what a cohort row per recipient would keep (1.5 recipients per message, 9 bytes each)."""


def _world() -> Scenario:
    # 20 mailboxes each: every one has had mail by day 1
    domains = {
        f"d{i}.example": {"mx": [{"host": f"mx.d{i}.example", "preference": 10}], "users": 20}
        for i in range(DOMAINS)
    }
    servers = {f"mx.d{i}.example": {"sessions": 2} for i in range(DOMAINS)}
    return Scenario.from_dict(
        {
            "simulation": {"duration": "2.25d", "warmup": "1h", "seed": 3},
            "providers": {"isp": {"ips": ["198.51.100.1"], "local_domains": ["isp.example"]}},
            "senders": {
                "users": {
                    "provider": "isp",
                    "count": 40,
                    "rate": "120/d",
                    "recipients": 1.5,
                    "domains": dict.fromkeys(domains, 1.0),
                }
            },
            "domains": domains,
            "servers": servers,
        }
    )


def _idle_destinations() -> int:
    """``Destination`` objects alive with no mail, alive and not waiting: none should be."""
    return sum(
        1
        for o in gc.get_objects()
        if type(o) is Destination and not (o.busy or o.todo or o.dead or o.waiting)
    )


@pytest.fixture(scope="module")
def samples() -> dict[float, tuple[int, int, int]]:
    """At each instant: messages created, bytes traced, idle destination objects."""
    out: dict[float, tuple[int, int, int]] = {}

    def progress(now: float, created: int) -> None:
        for at in (*EARLY, *LATE):
            if now >= at and at not in out:
                gc.collect()
                out[at] = (created, tracemalloc.get_traced_memory()[0], _idle_destinations())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cohort, "EXACT_ROWS", 1000)  # then bins, as past 1 M rows
        tracemalloc.start()
        try:
            simulate(_world(), summary_only=True, progress=progress)
        finally:
            tracemalloc.stop()
    return out


def test_memory_after_two_days_is_that_after_one(samples):
    early = min(samples[at][1] for at in EARLY)
    late = min(samples[at][1] for at in LATE)
    messages = samples[LATE[-1]][0] - samples[EARLY[-1]][0]
    assert messages > 4000
    assert late - early < BYTES_PER_MESSAGE * messages, (early, late, messages)


def test_no_idle_destination_keeps_its_object(samples):
    assert [idle for _, _, idle in samples.values()] == [0] * len(samples)
