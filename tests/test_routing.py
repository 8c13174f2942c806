"""The MX route of one attempt: next hop, null MX, unknown domains, lookup faults, backups."""

from __future__ import annotations

import numpy as np

from mailnet import smtp
from mailnet.model.dns import Resolver
from mailnet.model.routing import mx_route
from mailnet.scenario import Domain, MxRecord
from mailnet.scenario.domains import DnsFaultWindow


def _resolver(**domains: Domain) -> Resolver:
    names = {name.replace("_", "."): d for name, d in domains.items()}
    return Resolver(names, np.random.default_rng(1), np.random.default_rng(2))


def _two_mx() -> Domain:
    return Domain(
        mx=[
            MxRecord(host="mx1.d.example", preference=10),
            MxRecord(host="mx2.d.example", preference=20),
        ]
    )


def test_mx_hosts_best_first_and_nexthop_overrides():
    resolver = _resolver(d_example=_two_mx())
    assert mx_route(resolver, "d.example") == (None, ["mx1.d.example", "mx2.d.example"])
    assert mx_route(resolver, "d.example", nexthop="smarthost") == (None, ["smarthost"])


def test_implicit_mx_null_mx_and_unknown_domain():
    resolver = _resolver(plain_example=Domain(), null_example=Domain(null_mx=True))
    assert mx_route(resolver, "plain.example") == (None, ["plain.example"])
    assert mx_route(resolver, "null.example") == (smtp.NULL_MX, [])
    assert mx_route(resolver, "nowhere.example") == (smtp.DNS_NXDOMAIN, [])


def test_lookup_faults_defer_or_bounce():
    servfail = DnsFaultWindow(start=0, end=10)
    resolver = _resolver(d_example=Domain(dns_faults=[servfail]))
    assert mx_route(resolver, "d.example") == (smtp.DNS_TEMPFAIL, [])
    broken = DnsFaultWindow(start=0, end=10, answer="nxdomain")
    resolver = _resolver(d_example=Domain(dns_faults=[broken]))
    assert mx_route(resolver, "d.example") == (smtp.DNS_NXDOMAIN, [])


def test_backup_mx_tries_only_more_preferred_hosts_else_loops():
    resolver = _resolver(d_example=_two_mx())
    below = resolver.preferences("mx2.d.example")
    assert below == {"d.example": 20}
    assert mx_route(resolver, "d.example", below=below["d.example"]) == (None, ["mx1.d.example"])
    top = resolver.preferences("mx1.d.example")["d.example"]
    assert mx_route(resolver, "d.example", below=top) == (smtp.MX_LOOP, [])


def test_backup_below_addressless_hosts_defers_444():
    """Better MX records whose hosts have no address: the backup cannot find its primary
    relay and defers (4.4.4); a sender that is no MX of the domain skips those hosts."""
    names = {"d.example": _two_mx()}
    resolver = Resolver(
        names, np.random.default_rng(1), np.random.default_rng(2), {"mx1.d.example"}
    )
    assert mx_route(resolver, "d.example", below=20) == (smtp.NO_PRIMARY_RELAY, [])
    assert mx_route(resolver, "d.example") == (None, ["mx2.d.example"])
    assert smtp.NO_PRIMARY_RELAY.transient
    assert smtp.MX_LOOP.permanent
