"""DNS as the sending MTA sees it: MX hosts in preference order (RFC 5321 §5.1).

Lower preference first; hosts of equal preference are shuffled (as Postfix's
smtp_randomize_addresses does); a domain without MX records is reached through its
implicit MX, the domain's own host; a null MX (RFC 7505) means the domain takes no mail.
An MX host may have no address record: it is never tried, as Postfix's smtp_addr_list
leaves it out.

A lookup fails only inside one of its domain's ``dns_faults`` episodes, so every retry
within an episode meets the same failure: SERVFAIL (the sender defers, 4.4.3), or in a
window with ``answer = "nxdomain"`` "no such domain" (the sender bounces, 5.1.2). A domain
that exists never answers NXDOMAIN otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mailnet import smtp
from mailnet.policies.episodes import Episodes, stream_key
from mailnet.policies.outages import OutageSchedule
from mailnet.scenario import Domain

_ANSWERS = {"servfail": smtp.DNS_TEMPFAIL, "nxdomain": smtp.DNS_NXDOMAIN}


class Resolver:
    """MX lookups for every domain of the scenario, shuffled with the ``dns`` stream.

    ``fault_rng`` keys the random ``dns_faults`` episodes (nothing is drawn from it: each
    domain's episodes depend on the seed and its name only); ``unresolvable``: MX host
    names without an address record. ``clock`` gives the current simulated time in
    seconds (0 until the world sets it).
    """

    def __init__(
        self,
        domains: dict[str, Domain],
        rng: np.random.Generator,
        fault_rng: np.random.Generator | None = None,
        unresolvable: set[str] | None = None,
    ):
        self._rng = rng
        self._unresolvable = unresolvable or set()
        self.clock: Callable[[], float] = lambda: 0.0
        self._records: dict[str, list[tuple[int, str]]] = {}
        self._by_host: dict[str, dict[str, int]] | None = None  # preferences, per host
        # per domain (and per relay preference), the hosts with an address in groups of
        # equal preference: what a lookup shuffles; cleared when a domain's records change
        self._groups: dict[str, list[list[str]]] = {}
        self._groups_below: dict[tuple[str, int], list[list[str]]] = {}
        self._faults: dict[str, Callable[[float], smtp.Reply | None]] = {}
        self.null_mx: set[str] = set()
        for name, domain in domains.items():
            if domain.dns_faults is not None:
                self._faults[name] = _fault_source(name, domain, fault_rng or rng)
            if domain.null_mx:
                self.null_mx.add(name)
            elif domain.mx:
                self._records[name] = sorted((r.preference, r.host) for r in domain.mx)
            else:
                self._records[name] = [(0, name)]

    def lookup_fault(self, domain: str) -> smtp.Reply | None:
        """The failure of an MX lookup now, inside a DNS fault episode of ``domain``:
        NXDOMAIN (5.1.2) or SERVFAIL (4.4.3); ``None`` outside one."""
        fault = self._faults.get(domain)
        if fault is None:
            return None
        return fault(self.clock())

    def set_mx(self, domain: str, records: list[tuple[int, str]]) -> None:
        """Replace ``domain``'s MX records (``(preference, host)``; none: its implicit MX)
        for lookups from now on: a change during the run."""
        self.null_mx.discard(domain)
        self._by_host = None
        self._groups.pop(domain, None)
        self._groups_below = {k: v for k, v in self._groups_below.items() if k[0] != domain}
        self._records[domain] = sorted(records) if records else [(0, domain)]

    def knows(self, domain: str) -> bool:
        return domain in self._records or domain in self.null_mx

    def preferences(self, host: str) -> dict[str, int]:
        """Per domain, the preference of ``host``'s own MX record: where it stands as a
        backup MX (domains it is no MX of are left out)."""
        if self._by_host is None:  # one pass for every relay of a large world
            self._by_host = {}
            for domain, records in self._records.items():
                for pref, name in records:
                    self._by_host.setdefault(name, {}).setdefault(domain, pref)
        return dict(self._by_host.get(host, {}))

    def has_better(self, domain: str, below: int) -> bool:
        """Whether ``domain`` has MX records more preferred than ``below``, with an
        address or not."""
        return any(pref < below for pref, _ in self._records[domain])

    def mx_hosts(self, domain: str, below: int | None = None) -> list[str]:
        """Hosts with an address to try, best first. ``below``: a relay drops its own
        preference and higher. Each group of equal preference is shuffled with one draw."""
        if below is None:
            groups = self._groups.get(domain)
            if groups is None:
                groups = self._groups[domain] = self._equal_groups(domain, None)
        else:
            groups = self._groups_below.get((domain, below))
            if groups is None:
                groups = self._groups_below[domain, below] = self._equal_groups(domain, below)
        out: list[str] = []
        for group in groups:
            if len(group) > 1:
                order = self._rng.permutation(len(group))
                out.extend([group[k] for k in order])
            else:
                out.append(group[0])
        return out

    def _equal_groups(self, domain: str, below: int | None) -> list[list[str]]:
        """``domain``'s hosts with an address (below preference ``below``), in groups of
        equal preference, best first."""
        records = [r for r in self._records[domain] if r[1] not in self._unresolvable]
        if below is not None:
            records = [r for r in records if r[0] < below]
        groups: list[list[str]] = []
        last = None
        for pref, host in records:
            if not groups or pref != last:
                groups.append([])
                last = pref
            groups[-1].append(host)
        return groups


def _fault_source(
    name: str, domain: Domain, rng: np.random.Generator
) -> Callable[[float], smtp.Reply | None]:
    """The failure of ``name``'s lookups at time t: random episodes (SERVFAIL only) or
    the scheduled windows, each with its answer."""
    faults = domain.dns_faults
    if isinstance(faults, list):
        schedule = OutageSchedule([(w.start, w.end, w.answer) for w in faults])

        def scheduled(t: float) -> smtp.Reply | None:
            answer = schedule.mode_at(t)
            return None if answer is None else _ANSWERS[answer]

        return scheduled
    assert faults is not None
    share = faults.mttr / (faults.mtbf + faults.mttr)
    episodes = Episodes(share, faults.mttr, stream_key(rng, name))
    return lambda t: smtp.DNS_TEMPFAIL if episodes.on(name, t) else None
