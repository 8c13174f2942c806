"""Which hosts an MTA tries for a destination, in which order (RFC 5321 §5.1).

A hop with a next hop (a provider's smarthost, an inbound relay's final server) sends
everything there. Otherwise the MX records decide: a null MX (RFC 7505) bounces, an
unknown domain bounces, a failed lookup defers or bounces, and the hosts come best
first. A backup MX passes only to hosts more preferred than itself; with none left the
mail would loop back to itself and bounces.
"""

from __future__ import annotations

from mailnet import smtp
from mailnet.model.dns import Resolver


def mx_route(
    resolver: Resolver, domain: str, nexthop: str | None = None, below: int | None = None
) -> tuple[smtp.Reply | None, list[str]]:
    """``(failure, hosts)`` for one attempt to ``domain``: a failure reply and no hosts,
    or ``None`` and the hosts to try in order.

    ``nexthop``: the one host to use instead of MX records; ``below``: the preference of
    the sender's own MX record for ``domain`` when it is a backup MX (only more
    preferred hosts are tried). Draws from the resolver's streams (shuffling, faults).
    """
    if nexthop is not None:
        return None, [nexthop]
    if domain in resolver.null_mx:
        return smtp.NULL_MX, []
    if not resolver.knows(domain):
        return smtp.DNS_NXDOMAIN, []
    fault = resolver.lookup_fault(domain)
    if fault is not None:
        return fault, []
    hosts = resolver.mx_hosts(domain, below=below)
    if not hosts:
        return smtp.MX_LOOP, []
    return None, hosts
