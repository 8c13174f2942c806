"""Greylist timelines against postgrey's semantics (mail-facts.md §6)."""

from __future__ import annotations

import pytest

from mailnet.policies.greylisting import Greylist, client_network, normalize_sender
from mailnet.smtp import Reply
from mailnet.units import DAY, HOUR

IP = "198.51.100.7"
SENDER = "alice@isp.example"
RCPT = "bob@dest.example"

GREYLISTED = Reply(
    450,
    "4.2.0",
    "<bob@dest.example>: Recipient address rejected: Greylisted, "
    "see http://postgrey.schweikert.ch/help/dest.example.html",
)


def test_first_attempt_deferred_with_postgrey_reply():
    g = Greylist()
    assert g.check(IP, SENDER, RCPT, 0.0) == GREYLISTED
    assert str(g.check(IP, SENDER, RCPT, 1.0)).startswith("450 4.2.0 <bob@dest.example>:")


def test_passes_exactly_at_delay():
    g = Greylist()
    assert g.check(IP, SENDER, RCPT, 0.0) is not None
    assert g.check(IP, SENDER, RCPT, 299.0) == GREYLISTED
    assert g.check(IP, SENDER, RCPT, 300.0) is None
    assert g.check(IP, SENDER, RCPT, 301.0) is None


def test_early_retries_do_not_reset_first_seen():
    g = Greylist()
    for t in (0.0, 60.0, 120.0, 180.0, 240.0, 299.9):
        assert g.check(IP, SENDER, RCPT, t) == GREYLISTED
    assert g.check(IP, SENDER, RCPT, 300.0) is None


def test_first_retry_after_retry_window_starts_over():
    g = Greylist()
    g.check(IP, SENDER, RCPT, 0.0)
    assert g.check(IP, SENDER, RCPT, 2 * DAY + 1) == GREYLISTED
    assert g.check(IP, SENDER, RCPT, 2 * DAY + 300) == GREYLISTED
    assert g.check(IP, SENDER, RCPT, 2 * DAY + 301) is None


def test_retry_exactly_at_retry_window_passes():
    g = Greylist()
    g.check(IP, SENDER, RCPT, 0.0)
    assert g.check(IP, SENDER, RCPT, 2 * DAY) is None


def test_early_retry_does_not_extend_retry_window():
    # The window is measured from the first sighting, not the last.
    g = Greylist()
    g.check(IP, SENDER, RCPT, 0.0)
    g.check(IP, SENDER, RCPT, 100.0)
    assert g.check(IP, SENDER, RCPT, 2 * DAY + 50) == GREYLISTED


def test_passed_triplet_keeps_passing_until_max_age():
    g = Greylist()
    g.check(IP, SENDER, RCPT, 0.0)
    assert g.check(IP, SENDER, RCPT, 300.0) is None
    assert g.check(IP, SENDER, RCPT, 30 * DAY) is None  # last seen 30 d ago: kept
    assert g.check(IP, SENDER, RCPT, 65 * DAY) is None  # exactly 35 d: kept
    assert g.check(IP, SENDER, RCPT, 100 * DAY + 1) == GREYLISTED  # > 35 d: forgotten


def test_same_slash24_shares_the_triplet_other_slash24_starts_over():
    g = Greylist()
    g.check("198.51.100.7", SENDER, RCPT, 0.0)
    assert g.check("198.51.100.200", SENDER, RCPT, 300.0) is None
    assert g.check("198.51.101.7", SENDER, RCPT, 300.0) == GREYLISTED


def test_lookup_by_host_with_prefix_32():
    g = Greylist(ipv4_prefix=32)
    g.check("198.51.100.7", SENDER, RCPT, 0.0)
    assert g.check("198.51.100.8", SENDER, RCPT, 300.0) == GREYLISTED


def test_triplet_is_sender_and_recipient_specific():
    g = Greylist()
    g.check(IP, SENDER, RCPT, 0.0)
    assert g.check(IP, "carol@isp.example", RCPT, 300.0) is not None
    assert g.check(IP, SENDER, "dave@dest.example", 300.0) is not None


def test_null_sender_is_its_own_triplet():
    g = Greylist()
    assert g.check(IP, "", RCPT, 0.0) == GREYLISTED
    assert g.key(IP, "", RCPT) == ("198.51.100.0/24", "", RCPT)
    assert g.check(IP, SENDER, RCPT, 300.0) == GREYLISTED
    assert g.check(IP, "", RCPT, 300.0) is None


def test_verp_and_extensions_share_a_key():
    assert normalize_sender("list+bounce-1234@lists.example") == "list@lists.example"
    assert normalize_sender("bounce-1234-99@lists.example") == "bounce-#-#@lists.example"
    assert normalize_sender("prvs=1234567890=Alice@isp.example") == "alice@isp.example"
    assert normalize_sender("") == ""
    g = Greylist()
    g.check(IP, "news-17@lists.example", RCPT, 0.0)
    assert g.check(IP, "news-18@lists.example", RCPT, 300.0) is None


def test_ipv6_uses_slash64():
    assert client_network("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert client_network("203.0.113.77") == "203.0.113.0/24"


def _deliver_new_triplet(g: Greylist, ip: str, i: int, t: float) -> None:
    rcpt = f"user{i}@dest.example"
    assert g.check(ip, SENDER, rcpt, t) is not None
    assert g.check(ip, SENDER, rcpt, t + 300) is None


def test_auto_whitelist_after_five_hourly_successes():
    g = Greylist()
    for i in range(5):
        assert not g.whitelisted(IP, i * HOUR + 300)
        _deliver_new_triplet(g, IP, i, i * HOUR)
    assert g.successes(IP) == 5
    assert g.whitelisted(IP, 5 * HOUR)
    assert g.check(IP, "new@other.example", "x@dest.example", 5 * HOUR) is None
    # The whole /24 is one client.
    assert g.check("198.51.100.99", "y@other.example", "x@dest.example", 5 * HOUR) is None
    assert g.check("198.51.101.1", "y@other.example", "x@dest.example", 5 * HOUR) is not None


def test_auto_whitelist_counts_at_most_one_success_per_hour():
    g = Greylist()
    for i in range(5):  # all five within one hour
        _deliver_new_triplet(g, IP, i, i * 60.0)
    assert g.successes(IP) == 1
    assert not g.whitelisted(IP, 3600.0)
    # Passing an already-passed triplet again is not a new success.
    g.check(IP, SENDER, "user0@dest.example", 2 * HOUR)
    assert g.successes(IP) == 1
    _deliver_new_triplet(g, IP, 9, 2 * HOUR)
    assert g.successes(IP) == 2


def test_auto_whitelist_disabled_and_expires():
    g = Greylist(auto_whitelist_clients=0)
    for i in range(6):
        _deliver_new_triplet(g, IP, i, i * HOUR)
    assert not g.whitelisted(IP, 6 * HOUR)
    g = Greylist()
    for i in range(5):
        _deliver_new_triplet(g, IP, i, i * HOUR)
    last_counted = 4 * HOUR + 300
    assert g.whitelisted(IP, last_counted + 35 * DAY)
    assert not g.whitelisted(IP, last_counted + 35 * DAY + 1)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        Greylist(delay=-1)
    with pytest.raises(ValueError, match="ipv4_prefix must be"):
        Greylist(ipv4_prefix=33)
