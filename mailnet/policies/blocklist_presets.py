"""The parameters of the DNSBL presets, each with its source (mail-facts.md §7, §17).

Where a list does not publish a number, its entry says so, takes a default from the
middle of the plausible range, and names the range; ``UNPUBLISHED`` lists those ranges
for sensitivity analyses (``experiments/sweeps/blocklist_ranges.toml`` holds the same).
Times are seconds.
"""

from __future__ import annotations

from typing import Any

from mailnet.units import DAY, HOUR, MINUTE

PRESETS: dict[str, dict[str, Any]] = {
    # SpamCop SCBL (mail-facts.md §17): lists an IP on reports "relative to reputation
    # points" (one point per lookup not followed by a report: a volume proxy), needs more
    # than one report (min_reports 2, suped.com), weighs a spamtrap hit as five reports
    # and ignores reports older than a week (rblmon quoting FAQ 297); delists 24 h after
    # the last report (SpamCop wiki SCBLDeListing) and takes no removal requests (appeals
    # discouraged). The ratio is hand-tuned and unpublished: 0.001 weighted reports per
    # recipient sent, range 0.0001-0.01. The 4:1 weight of fresh reports is not modelled.
    "spamcop": {
        "zone": "bl.spamcop.net",
        "trap_hits": None,
        "complaints": None,
        "spam_volume": None,
        "min_reports": 2,
        "trap_weight": 5.0,
        "volume_ratio": 0.001,
        "window": 7 * DAY,
        "duration": 24 * HOUR,
        "removal_delay": None,
    },
    # UCEPROTECT (mail-facts.md §7, §17): level 1 lists an IP on a spamtrap hit and
    # expires 7 days after the last one; level 2 lists a /24 once more than 4 of its IPs
    # are on level 1; level 3 lists an AS once level-1 IPs reach 50 per 100,000 of its
    # addresses and number at least 50. Paid express delisting exists (about USD 100);
    # its processing time is unpublished: 6 h, range 1-24 h; how many removals it grants
    # before refusing is unpublished: 2 per window, range 1-3.
    "uceprotect": {
        "zone": "dnsbl.uceprotect.net",
        "trap_hits": 1,
        "complaints": None,
        "spam_volume": None,
        "window": 7 * DAY,
        "duration": 7 * DAY,
        "prefix_len": 24,
        "prefix_threshold": 5,
        "asn_share": 50 / 100_000,
        "asn_min_listed": 50,
        "removal_delay": 6 * HOUR,
        "removal_limit": 2,
    },
    # Spamhaus CSS, 127.0.0.3 in zen.spamhaus.org (mail-facts.md §17): automated listings,
    # "always the result of multiple events and heuristics", fed by Spamhaus's trap
    # network; expiry 3 days after the last detection, pushed forward by redetection; fast
    # self-service removal "within limits", with quick relisting if detected again.
    # Unpublished: the number of trap hits (3, range 2-5: "multiple" means at least two),
    # the window they count in (7 days, range 3-14 days), how fast a removal takes effect
    # (1 h, range 10 min-6 h) and the limit (2 removals per window, range 1-3).
    "spamhaus-css": {
        "zone": "zen.spamhaus.org",
        "trap_hits": 3,
        "complaints": None,
        "spam_volume": None,
        "window": 7 * DAY,
        "duration": 3 * DAY,
        "removal_delay": 1 * HOUR,
        "removal_limit": 2,
    },
}
"""Parameters of :meth:`~mailnet.policies.blocklists.Blocklist.preset`, per list name."""

UNPUBLISHED: dict[str, dict[str, tuple[float, float, float]]] = {
    "spamcop": {"volume_ratio": (0.0001, 0.001, 0.01)},
    "uceprotect": {"removal_delay": (1 * HOUR, 6 * HOUR, 24 * HOUR), "removal_limit": (1, 2, 3)},
    "spamhaus-css": {
        "trap_hits": (2, 3, 5),
        "window": (3 * DAY, 7 * DAY, 14 * DAY),
        "removal_delay": (10 * MINUTE, 1 * HOUR, 6 * HOUR),
        "removal_limit": (1, 2, 3),
    },
}
"""Preset parameters no list publishes: ``(low, default, high)`` of the plausible range."""
