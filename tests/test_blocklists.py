"""Blocklist listing timelines: triggers, expiry, prefix and AS escalation (mail-facts.md §7)."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
import tomli_w

from mailnet.policies.blocklists import Blocklist, Listing, SlidingCount
from mailnet.smtp import Reply
from mailnet.units import DAY, HOUR
from tests.conftest import one_mx_world

IP = "203.0.113.5"
AS = 64500


def test_trap_hit_lists_at_that_moment_and_delists_after_duration():
    bl = Blocklist("testbl", trap_hits=1, duration=24 * HOUR)
    assert bl.listed(IP, AS, 99.0) is None
    bl.observe("trap", IP, AS, 100.0)
    assert bl.listed(IP, AS, 100.0) == Listing("testbl", "ip", IP, 100.0, "trap")
    assert bl.listed(IP, AS, 100.0 + 24 * HOUR - 0.001) is not None
    assert bl.listed(IP, AS, 100.0 + 24 * HOUR) is None
    (record,) = bl.records
    assert (record.listed_at, record.delisted_at) == (100.0, 100.0 + 24 * HOUR)


def test_listing_lasts_duration_after_the_last_trigger():
    bl = Blocklist("testbl", trap_hits=1, duration=DAY)
    bl.observe("trap", IP, AS, 0.0)
    bl.observe("trap", IP, AS, 10 * HOUR)
    bl.observe("trap", IP, AS, 20 * HOUR)
    assert bl.expires_at(IP) == 20 * HOUR + DAY
    assert bl.listed(IP, AS, 20 * HOUR + DAY - 1) is not None
    # Queried long after: the recorded delisting is still the true time.
    assert bl.listed(IP, AS, 30 * DAY) is None
    assert len(bl.records) == 1
    assert bl.records[0].delisted_at == 20 * HOUR + DAY


def test_complaint_threshold_counts_in_sliding_window():
    bl = Blocklist("testbl", trap_hits=None, complaints=3, window=DAY, duration=HOUR)
    bl.observe("complaint", IP, AS, 0.0)
    bl.observe("complaint", IP, AS, 1000.0)
    bl.observe("complaint", IP, AS, DAY)  # the first has left the window
    assert bl.listed(IP, AS, DAY) is None
    bl.observe("complaint", IP, AS, DAY + 500.0)
    assert bl.listed(IP, AS, DAY + 500.0) == Listing("testbl", "ip", IP, DAY + 500.0, "complaint")


def test_kinds_without_threshold_are_ignored_and_spam_volume_counts():
    bl = Blocklist("testbl", trap_hits=None, spam_volume=100, window=DAY)
    bl.observe("trap", IP, AS, 0.0)
    assert bl.listed(IP, AS, 0.0) is None
    bl.observe("spam", IP, AS, 1.0, count=99)
    assert bl.listed(IP, AS, 1.0) is None
    bl.observe("spam", IP, AS, 2.0)
    assert bl.listed(IP, AS, 2.0).trigger == "spam"


def test_relisting_makes_a_new_record():
    bl = Blocklist("testbl", trap_hits=1, duration=HOUR)
    bl.observe("trap", IP, AS, 0.0)
    bl.observe("trap", IP, AS, 2 * HOUR)
    frame = bl.records_frame(3 * HOUR)
    assert frame[["listed_at", "delisted_at"]].values.tolist() == [
        [0.0, HOUR],
        [2 * HOUR, 3 * HOUR],
    ]


def test_prefix_escalation_lists_an_innocent_neighbour_then_deescalates():
    bl = Blocklist("l2", trap_hits=1, duration=DAY, prefix_threshold=3)
    bad = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
    neighbour = "203.0.113.200"
    other_prefix = "203.0.114.1"
    bl.observe("trap", bad[0], AS, 0.0)
    bl.observe("trap", bad[1], AS, HOUR)
    assert bl.listed(neighbour, AS, HOUR) is None
    bl.observe("trap", bad[2], AS, 2 * HOUR)
    assert bl.listed(neighbour, AS, 2 * HOUR) == Listing(
        "l2", "prefix", "203.0.113.0/24", 2 * HOUR, "escalation"
    )
    assert bl.listed(other_prefix, AS, 2 * HOUR) is None
    # The most specific entry answers for a listed IP.
    assert bl.listed(bad[2], AS, 2 * HOUR).scope == "ip"
    # bad[0] expires at 1 d: two left, below the threshold, so the prefix goes at once.
    assert bl.listed(neighbour, AS, DAY - 1) is not None
    assert bl.listed(neighbour, AS, DAY) is None
    prefix_records = [r for r in bl.records if r.scope == "prefix"]
    assert [(r.listed_at, r.delisted_at) for r in prefix_records] == [(2 * HOUR, DAY)]


def test_prefix_delisted_when_any_member_expires_below_threshold():
    bl = Blocklist("l2", trap_hits=1, duration=DAY, prefix_threshold=2)
    bl.observe("trap", "203.0.113.1", AS, 0.0)
    bl.observe("trap", "203.0.113.2", AS, 0.0)
    bl.observe("trap", "203.0.113.1", AS, 12 * HOUR)  # extends .1 to 36 h
    assert bl.listed("203.0.113.9", AS, 30 * HOUR) is None  # .2 expired at 24 h
    assert [(r.scope, r.delisted_at) for r in bl.records if r.scope == "prefix"] == [
        ("prefix", DAY)
    ]


def test_asn_escalation_and_deescalation():
    sizes = {AS: 1000, 64501: 1000}
    bl = Blocklist(
        "l3", trap_hits=1, duration=DAY, asn_share=0.003, asn_min_listed=3, asn_sizes=sizes
    )
    ips = ["192.0.2.1", "198.51.100.1", "203.0.113.1"]  # three prefixes, one AS
    for i, ip in enumerate(ips):
        bl.observe("trap", ip, AS, i * HOUR)
    innocent = "100.64.0.1"
    assert bl.listed(innocent, AS, 2 * HOUR) == Listing(
        "l3", "asn", "AS64500", 2 * HOUR, "escalation"
    )
    assert bl.listed(innocent, 64501, 2 * HOUR) is None
    assert bl.listed(innocent, AS, 2 * HOUR, scopes=("ip", "prefix")) is None
    assert bl.listed(innocent, AS, DAY) is None  # the first IP expired at 1 d
    asn_records = [r for r in bl.records if r.scope == "asn"]
    assert [(r.key, r.listed_at, r.delisted_at) for r in asn_records] == [
        ("AS64500", 2 * HOUR, DAY)
    ]


def test_asn_share_threshold_needs_the_share():
    bl = Blocklist("l3", trap_hits=1, asn_share=0.5, asn_min_listed=1, asn_sizes={AS: 4})
    bl.observe("trap", "192.0.2.1", AS, 0.0)
    assert bl.listed("192.0.2.99", AS, 0.0, scopes=("asn",)) is None
    bl.observe("trap", "192.0.2.2", AS, 0.0)
    assert bl.listed("192.0.2.99", AS, 0.0, scopes=("asn",)).scope == "asn"


def test_asn_escalation_requires_sizes():
    with pytest.raises(ValueError, match="asn_sizes"):
        Blocklist("l3", asn_share=0.1)
    # an address in an AS the scenario does not size (a backup MX's own network) is
    # listed on its own evidence but takes no part in AS escalation
    bl = Blocklist("l3", trap_hits=1, asn_share=0.1, asn_min_listed=1, asn_sizes={AS: 10})
    bl.observe("trap", IP, 64999, 0.0)
    assert bl.listed(IP, 64999, 0.0, scopes=("ip",)) is not None
    assert bl.listed("192.0.2.99", 64999, 0.0, scopes=("asn",)) is None


def test_records_frame_columns_and_values():
    bl = Blocklist("l2", trap_hits=1, duration=DAY, prefix_threshold=2)
    bl.observe("trap", "203.0.113.1", AS, 0.0)
    bl.observe("trap", "203.0.113.2", AS, HOUR)
    frame = bl.records_frame()
    expected = pd.DataFrame(
        {
            "list": ["l2", "l2", "l2"],
            "scope": ["ip", "ip", "prefix"],
            "key": ["203.0.113.1", "203.0.113.2", "203.0.113.0/24"],
            "listed_at": [0.0, HOUR, HOUR],
            "delisted_at": [math.nan, math.nan, math.nan],
            "trigger": ["trap", "trap", "escalation"],
            "ended": [None, None, None],
            "traps": [1.0, 1.0, 0.0],
            "reports": [0.0, 0.0, 0.0],
            "volume": [math.nan, math.nan, math.nan],
        }
    ).astype({"ended": "str"})
    pd.testing.assert_frame_equal(frame, expected)
    frame = bl.records_frame(now=2 * DAY)
    assert frame["delisted_at"].tolist() == [DAY, DAY + HOUR, DAY]
    assert frame["ended"].tolist() == ["expiry", "expiry", "deescalation"]
    assert list(Blocklist("empty").records_frame().columns) == list(expected.columns)


def test_time_must_not_go_back():
    bl = Blocklist("testbl")
    bl.observe("trap", IP, AS, 10.0)
    with pytest.raises(ValueError, match="time went back"):
        bl.listed(IP, AS, 5.0)


def test_presets():
    spamcop = Blocklist.preset("spamcop")
    assert (spamcop.zone, spamcop.duration, spamcop.thresholds) == ("bl.spamcop.net", DAY, {})
    assert (spamcop.min_reports, spamcop.trap_weight, spamcop.removal_delay) == (2, 5.0, None)
    css = Blocklist.preset("spamhaus-css")
    assert (css.duration, css.thresholds, css.removal_delay) == (3 * DAY, {"trap": 3}, HOUR)
    uce = Blocklist.preset("uceprotect", asn_sizes={AS: 65536})
    assert (uce.duration, uce.prefix_threshold, uce.asn_min_listed) == (7 * DAY, 5, 50)
    uce.observe("trap", IP, AS, 0.0)
    assert uce.listed(IP, AS, 7 * DAY - 1) is not None
    assert uce.listed(IP, AS, 7 * DAY) is None
    with pytest.raises(ValueError, match="unknown blocklist preset"):
        Blocklist.preset("nosuchlist")


def test_several_lists_at_once_are_independent():
    lists = [Blocklist.preset("spamcop"), Blocklist.preset("spamhaus-css")]
    for bl in lists:
        bl.observe("trap", IP, AS, 0.0, count=3)
    assert [bl.listed(IP, AS, 2 * DAY) is not None for bl in lists] == [False, True]


def test_replies():
    bl = Blocklist.preset("spamcop")
    assert bl.reply("reject", IP) == Reply(
        554, "5.7.1", "Service unavailable; Client host [203.0.113.5] blocked using bl.spamcop.net"
    )
    assert bl.reply("defer", IP).code == 451
    assert bl.reply("defer", IP).enhanced == "4.7.1"
    with pytest.raises(ValueError, match="unknown blocklist action"):
        bl.reply("drop", IP)


def test_sliding_count_edges():
    c = SlidingCount(10.0)
    c.add(0.0)
    c.add(5.0, 2)
    assert c.total(9.999) == 3
    assert c.total(10.0) == 2
    assert c.total(15.0) == 0


def test_override_of_a_blocklist_duration_runs_and_takes_effect(tmp_path):
    """``--set blocklists.X.duration=1h``: the listing a trap hit makes lasts one hour."""
    raw = one_mx_world(receiver="dest")
    raw["senders"]["users"]["messages"] = [{"at": "0s", "to": ["trap1@dest.example"]}]
    raw["receivers"] = {"dest": {"blocklists": {"bl": "reject"}}}
    raw["blocklists"] = {"bl": {"trap_hits": 1, "duration": "1d", "window": "1d"}}
    path = tmp_path / "listed.toml"
    path.write_text(tomli_w.dumps(raw))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mailnet.cli", "run", str(path), "--out", str(out)]
    overrides = ["--set", "blocklists.bl.duration=1h", "--set", "blocklists.bl.window=2h"]
    proc = subprocess.run(
        command + overrides, check=False, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    listings = pd.read_parquet(out / "listings.parquet")
    (listing,) = listings.itertuples()
    # the trap hit at 1.05 s (connection set-up and 1 s of service) lists for one hour
    assert listing.listed_at == pytest.approx(1.05)
    assert listing.delisted_at == pytest.approx(1.05 + HOUR)


def test_volume_relative_list_absorbs_one_trap_hit_of_a_busy_clean_address():
    """SpamCop's rule: a trap hit weighs 5 reports, against 0.001 per recipient sent."""
    busy, quiet = "203.0.113.7", "203.0.113.8"
    bl = Blocklist.preset("spamcop")
    for hour in range(24 * 8 + 1):
        bl.observe_volume(busy, hour * HOUR, 1000)  # 168,000 recipients in the last 7 days
    bl.observe_volume(quiet, 7.5 * DAY, 100)  # seen for half a day: 1,400 a week
    now = 8 * DAY
    bl.observe("trap", busy, AS, now)
    bl.observe("trap", quiet, AS, now)
    assert bl.listed(busy, AS, now) is None  # 5 < 0.001 * 168,000
    assert bl.listed(quiet, AS, now) is not None  # 5 >= 2 and >= 1.4
    assert bl.records[-1].volume == pytest.approx(1400.0)
    # the busy address is listed once its weighted reports reach 0.001 of its volume
    bl.observe("trap", busy, AS, now + 1, count=32)  # 33 hits weigh 165 < 168
    assert bl.listed(busy, AS, now + 1) is None
    bl.observe("complaint", busy, AS, now + 2, count=3)
    listing = bl.listed(busy, AS, now + 2)
    assert listing is not None
    assert listing.trigger == "complaint"
    record = bl.records[-1]
    assert (record.traps, record.reports, record.volume) == (33.0, 3.0, 168_000.0)
    # a listing lapses 24 h after the last report
    assert bl.listed(busy, AS, now + DAY + 2) is None


def test_removal_request_delists_then_a_new_hit_relists_until_the_limit():
    bl = Blocklist("css", trap_hits=3, duration=3 * DAY, removal_delay=HOUR, removal_limit=2)
    bl.observe("trap", IP, AS, 0.0, count=3)
    assert bl.request_removal(IP, 2 * HOUR) == 3 * HOUR
    bl.observe("trap", IP, AS, 2.5 * HOUR)  # pending: does not push the listing on
    assert bl.listed(IP, AS, 3 * HOUR) is None
    assert bl.records[0].ended == "removal"
    bl.observe("trap", IP, AS, 10 * HOUR)  # on probation: relisted at once
    assert bl.listed(IP, AS, 10 * HOUR).listed_at == 10 * HOUR
    assert bl.request_removal(IP, 11 * HOUR) == 12 * HOUR
    bl.observe("trap", IP, AS, 20 * HOUR)
    assert bl.request_removal(IP, 21 * HOUR) is None  # two removals in the window
    assert bl.expires_at(IP) == 20 * HOUR + 3 * DAY
    bl.observe("trap", "203.0.113.9", AS, 22 * HOUR)
    assert bl.request_removal("203.0.113.9", 22 * HOUR) is None  # not listed
    assert Blocklist.preset("spamcop").request_removal(IP, 0.0) is None  # takes none


def test_probation_ends_a_window_after_the_removal():
    bl = Blocklist("css", trap_hits=2, window=DAY, duration=DAY, removal_delay=0.0)
    bl.observe("trap", IP, AS, 0.0, count=2)
    assert bl.request_removal(IP, HOUR) == HOUR
    assert bl.listed(IP, AS, HOUR) is None
    bl.observe("trap", IP, AS, HOUR + DAY)  # the probation (1 d) is over: 1 < 2 hits
    assert bl.listed(IP, AS, HOUR + DAY) is None
