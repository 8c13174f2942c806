"""Mail loops in the relay graph, found before anything runs.

A copy of a message for domain ``D`` at server ``S`` goes next: nowhere if ``S`` is a
primary (it stores the mail); to ``relay_to`` if ``S`` is a relay with one; else to the MX
hosts of ``D``, all of them for a relay (a smarthost looks up MX records), only the more
preferred ones for a backup MX (RFC 5321 §5.1). Copies start at every MX host of every
domain and at every provider's ``relay_host`` for every domain not its own. A cycle in
these (server, domain) steps is a loop that MTAs end only with "too many hops"
(mail-facts.md §11), so it is an error naming the cycle; the run-time hop limit
(``Server.hopcount_limit``) bounds what this check cannot see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailnet.errors import ScenarioError, key_path

if TYPE_CHECKING:
    from mailnet.scenario.schema import Scenario

State = tuple[str, str]
"""(server, recipient domain)."""

Key = list[str | int]


def check_loops(scenario: Scenario, source: str) -> None:
    """Raise ``ScenarioError`` for the first relay cycle, at the key that closes it."""
    records = _mx_records(scenario)
    done: set[State] = set()
    for start in _starts(scenario, records):
        cycle = _find_cycle(scenario, records, start, done)
        if cycle is not None:
            path, key = cycle
            hosts = " -> ".join(host for host, _ in path)
            raise ScenarioError(source, key_path(key), f"mail for {path[0][1]!r} loops: {hosts}")


def _mx_records(scenario: Scenario) -> dict[str, list[tuple[int, str]]]:
    """Each domain's MX records, best first (a domain without any is its own MX host)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for name, domain in scenario.domains.items():
        if domain.null_mx:
            continue
        mx = [(r.preference, r.host) for r in domain.mx] if domain.mx else [(0, name)]
        out[name] = sorted(mx)
    return out


def _starts(scenario: Scenario, records: dict[str, list[tuple[int, str]]]) -> list[State]:
    starts = [(host, domain) for domain, mx in records.items() for _, host in mx]
    for provider in scenario.providers.values():
        if provider.relay_host is not None:
            starts += [(provider.relay_host, d) for d in records if d not in provider.local_domains]
    return starts


def _steps(
    scenario: Scenario, records: dict[str, list[tuple[int, str]]], state: State
) -> list[tuple[State, Key]]:
    """Where a copy at ``state`` goes next, each with the key that sends it there."""
    host, domain = state
    server = scenario.servers.get(host)
    if server is None or server.role == "primary":
        return []
    if server.relay_to is not None:
        return [((server.relay_to, domain), ["servers", host, "relay_to"])]
    mx = records.get(domain, [])
    if server.role == "backup":
        own = min((pref for pref, name in mx if name == host), default=None)
        mx = [r for r in mx if own is None or r[0] < own]
    return [((name, domain), ["domains", domain, "mx"]) for _, name in mx]


def _find_cycle(
    scenario: Scenario,
    records: dict[str, list[tuple[int, str]]],
    start: State,
    done: set[State],
) -> tuple[list[State], Key] | None:
    """A cycle reachable from ``start`` (depth first, iteratively): its states from where
    it begins to its return there, and the key of its last step."""
    if start in done:
        return None
    path: list[State] = [start]
    on_path = {start: 0}
    pending = [iter(_steps(scenario, records, start))]
    while pending:
        step = next(pending[-1], None)
        if step is None:
            pending.pop()
            finished = path.pop()
            done.add(finished)
            del on_path[finished]
            continue
        state, key = step
        if state in on_path:
            return [*path[on_path[state] :], state], key
        if state in done:
            continue
        on_path[state] = len(path)
        path.append(state)
        pending.append(iter(_steps(scenario, records, state)))
    return None
