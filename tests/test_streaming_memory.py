"""A summary-only run's memory does not grow with simulated time in a steady world.

The run goes on in a fresh process; at day 30 and at day 90 it notes the memory blocks
Python has allocated (``sys.getallocatedblocks``: every live object, insensitive to how
the allocator keeps its arenas), its peak RSS and the slots of the messages table. A row
kept per message would add at least one block per message: between day 30 and day 90 the
world creates about 120,000 messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

WORLD = textwrap.dedent("""
    [simulation]
    duration = "90d"
    warmup = "1d"
    [providers.isp]
    ips = ["198.51.100.1"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 20
    rate = "40/d"
    domains = { "dest.example" = 1.0 }
    [domains."dest.example"]
    mx = [ { host = "mx1.dest.example", preference = 10 } ]
    users = 200
    [servers."mx1.dest.example"]
    sessions = 5
    outages = { mtbf = "2d", mttr = "2h" }
""")

CHILD = r"""
import gc, json, resource, sys
from mailnet import simulate
from mailnet.scenario import Scenario
import mailnet.streaming as streaming
import tomllib

logs = []
init = streaming.StreamingLog.__init__
def keep(self, scenario):
    init(self, scenario)
    logs.append(self)
streaming.StreamingLog.__init__ = keep

samples = {}
def progress(now, created):
    for day in (30, 90):
        if now >= day * 86400 and day not in samples:
            gc.collect()
            samples[day] = {
                "blocks": sys.getallocatedblocks(),
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "slots": len(logs[0].messages),
                "created": created,
            }

scenario = Scenario.from_dict(tomllib.loads(sys.stdin.read()))
simulate(scenario, summary_only=True, progress=progress)
print(json.dumps(samples))
"""


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, float]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], input=WORLD, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.slow
def test_memory_is_flat_from_day_30_to_day_90(samples):
    early, late = samples["30"], samples["90"]
    messages = late["created"] - early["created"]
    assert messages > 40_000
    assert late["slots"] <= 1.5 * early["slots"] + 64  # the rows in flight, reused
    # a row or object kept per message would be >= 1 block each
    assert late["blocks"] - early["blocks"] < 0.02 * messages
    assert late["rss_mb"] < 1.1 * early["rss_mb"]
