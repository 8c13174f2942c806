"""DNS as the sending MTA sees it: MX hosts in preference order (RFC 5321 §5.1).

Lower preference first; hosts of equal preference are shuffled (as Postfix's
smtp_randomize_addresses does); a domain without MX records is reached through its
implicit MX, the domain's own host; a null MX (RFC 7505) means the domain takes no mail.
"""

from __future__ import annotations

import numpy as np

from mailnet.scenario import Domain


class Resolver:
    """MX lookups for every domain of the scenario, shuffled with the ``dns`` stream."""

    def __init__(self, domains: dict[str, Domain], rng: np.random.Generator):
        self._rng = rng
        self._records: dict[str, list[tuple[int, str]]] = {}
        self.null_mx: set[str] = set()
        for name, domain in domains.items():
            if domain.null_mx:
                self.null_mx.add(name)
            elif domain.mx:
                self._records[name] = sorted((r.preference, r.host) for r in domain.mx)
            else:
                self._records[name] = [(0, name)]

    def knows(self, domain: str) -> bool:
        return domain in self._records or domain in self.null_mx

    def preference(self, domain: str, host: str) -> int | None:
        for pref, name in self._records.get(domain, ()):
            if name == host:
                return pref
        return None

    def mx_hosts(self, domain: str, below: int | None = None) -> list[str]:
        """Hosts to try, best first. ``below``: a relay drops its own preference and higher."""
        records = self._records[domain]
        if below is not None:
            records = [r for r in records if r[0] < below]
        out: list[str] = []
        i = 0
        while i < len(records):
            j = i
            while j < len(records) and records[j][0] == records[i][0]:
                j += 1
            group = [host for _, host in records[i:j]]
            if len(group) > 1:
                order = self._rng.permutation(len(group))
                group = [group[k] for k in order]
            out.extend(group)
            i = j
        return out
