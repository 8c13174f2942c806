"""A small world for the tests of the views (breakdowns, outcomes over time, compare):
two sender groups (one named with a trailing digit), a domain whose only MX refuses mail
for three hours and belongs to receiver ``dest``, one that is always up, a local domain
and an unknown user."""

from __future__ import annotations

import textwrap

SMALL = textwrap.dedent("""
    [simulation]
    duration = "6h"
    [providers.isp]
    ips = ["198.51.100.1", "198.51.100.2"]
    local_domains = ["isp.example"]
    [senders.users]
    provider = "isp"
    count = 2
    messages = [
      { at = "0s", to = ["a@dest.example"] },
      { at = "1h", to = ["b@dest.example", "c@ok.example"] },
      { at = "1h30m", to = ["h@ok.example", "nosuch1@ok.example"] },
    ]
    [senders.news2]
    provider = "isp"
    count = 1
    messages = [
      { at = "10m", to = ["d@dest.example", "e@ok.example", "f@isp.example"] },
    ]
    [domains."dest.example"]
    mx = [ { host = "mx1.dest.example", preference = 10 } ]
    [domains."ok.example"]
    mx = [ { host = "mx1.ok.example", preference = 10 } ]
    [servers."mx1.dest.example"]
    sessions = 5
    outages = [ { start = "0s", end = "3h", mode = "refuse" } ]
    receiver = "dest"
    [servers."mx1.ok.example"]
    sessions = 5
    [receivers.dest]
""")
OUTAGE_END_S = 3 * 3600.0
