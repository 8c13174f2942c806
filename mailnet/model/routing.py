"""Which hosts an MTA tries for a destination, in which order (RFC 5321 §5.1).

A hop with a next hop (a provider's smarthost, an inbound relay's final server) sends
everything there. Otherwise the MX records decide: a null MX (RFC 7505) bounces, an
unknown domain bounces, a failed lookup defers or bounces, and the hosts come best
first. A backup MX passes only to hosts more preferred than itself. As Postfix's
smtp_domain_addr (``smtp_addr.c``, mail-facts.md §11): a backup that is itself the best MX
would loop back to itself and bounces (5.4.6); one below more preferred MX records whose
hosts have no address cannot find its primary relay and defers (4.4.4).
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
    if hosts:
        return None, hosts
    return _no_host(resolver, domain, below), []


def _no_host(resolver: Resolver, domain: str, below: int | None) -> smtp.Reply:
    """Why no host is left to try (``smtp_addr.c``)."""
    if below is None:
        # no MX host has an address: bounce (smtp_defer_if_no_mx_address_found = no)
        return smtp.DNS_NXDOMAIN
    if resolver.has_better(domain, below):
        return smtp.NO_PRIMARY_RELAY
    return smtp.MX_LOOP
