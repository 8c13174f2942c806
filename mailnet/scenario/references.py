"""Cross-reference checks: what each section names must exist in the section it names.

Run by ``Scenario.from_dict`` after every section passed its own schema; the first broken
reference raises ``ScenarioError`` with the key path of the referring value. One function
per section, in the order the sections' problems are reported.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailnet.errors import ScenarioError, key_path
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.retry import RetryParamsError, retry_params
from mailnet.scenario.fields import CustomRetry
from mailnet.scenario.loops import check_loops
from mailnet.scenario.receivers import BlocklistConfig
from mailnet.scenario.traces import address_problem, domain_names, read_trace, trace_path

if TYPE_CHECKING:
    from mailnet.scenario.schema import Scenario

Key = list[str | int]


def check_references(scenario: Scenario, source: str, base_dir: Path | None) -> None:
    """Broken references: a sender naming a missing provider, an MX host with no server.

    ``source`` names the file in errors; relative trace paths resolve against ``base_dir``.
    """
    _providers(scenario, source)
    _servers(scenario, source)
    _receivers(scenario, source)
    _blocklists(scenario, source)
    _provider_pools(scenario, source)
    _domains(scenario, source)
    check_loops(scenario, source)
    local = _local_domains(scenario)
    for name in scenario.senders:
        _sender(scenario, name, source, base_dir, local)


def build_blocklist(name: str, config: BlocklistConfig, scenario: Scenario) -> Blocklist:
    """The ``Blocklist`` for ``[blocklists.NAME]``; AS sizes come from the providers."""
    # the fields as values (seconds), not as dumped: a dump writes durations as text
    overrides = {
        field: getattr(config, field)
        for field in type(config).model_fields
        if field not in ("preset", "traps") and getattr(config, field) is not None
    }
    sizes: dict[int, int] = {}
    for provider in scenario.providers.values():
        sizes[provider.asn] = max(sizes.get(provider.asn, 0), provider.asn_size)
    if config.preset is not None:
        return Blocklist.preset(config.preset, name=name, asn_sizes=sizes, **overrides)
    if "asn_share" in overrides:
        overrides["asn_sizes"] = sizes
    return Blocklist(name, **overrides)


def _error(source: str, key: Key, problem: str) -> ScenarioError:
    return ScenarioError(source, key_path(key), problem)


def _local_domains(scenario: Scenario) -> dict[str, str]:
    """Each provider's local domain -> the provider's name."""
    return {d: name for name, p in scenario.providers.items() for d in p.local_domains}


def _providers(scenario: Scenario, source: str) -> None:
    seen_ips: dict[str, str] = {}
    for name, provider in scenario.providers.items():
        for ip in provider.ips:
            if ip in seen_ips:
                raise _error(
                    source,
                    ["providers", name, "ips"],
                    f"{ip} is already used by provider {seen_ips[ip]!r}",
                )
            seen_ips[ip] = name
        _retry(source, ["providers", name], provider.retry, provider.retry_params)
        if provider.relay_host is not None and provider.relay_host not in scenario.servers:
            raise _error(
                source,
                ["providers", name, "relay_host"],
                f"relay host {provider.relay_host!r} has no [servers] entry",
            )


def _servers(scenario: Scenario, source: str) -> None:
    for name, server in scenario.servers.items():
        _retry(source, ["servers", name], server.retry, server.retry_params)
        if server.relay_to is not None and server.relay_to not in scenario.servers:
            raise _error(
                source,
                ["servers", name, "relay_to"],
                f"relay target {server.relay_to!r} has no [servers] entry",
            )
        if server.relay_to == name:
            raise _error(source, ["servers", name, "relay_to"], "a relay cannot relay to itself")
        if server.ip is not None:
            try:
                ipaddress.IPv4Address(server.ip)
            except ValueError:
                raise _error(
                    source, ["servers", name, "ip"], f"not an IPv4 address: {server.ip!r}"
                ) from None
    for name, server in scenario.servers.items():
        if server.receiver is not None and server.receiver not in scenario.receivers:
            raise _error(
                source,
                ["servers", name, "receiver"],
                f"no receiver named {server.receiver!r} in [receivers]",
            )


def _receivers(scenario: Scenario, source: str) -> None:
    for name, receiver in scenario.receivers.items():
        for listname in receiver.blocklists:
            if listname not in scenario.blocklists:
                raise _error(
                    source,
                    ["receivers", name, "blocklists", listname],
                    f"no blocklist named {listname!r} in [blocklists]",
                )


def _blocklists(scenario: Scenario, source: str) -> None:
    for name, config in scenario.blocklists.items():
        try:
            build_blocklist(name, config, scenario)
        except ValueError as exc:
            raise _error(source, ["blocklists", name], str(exc)) from None
        for group in config.traps:
            if group not in scenario.senders:
                raise _error(source, ["blocklists", name, "traps", group], "no such sender group")


def _provider_pools(scenario: Scenario, source: str) -> None:
    for name, provider in scenario.providers.items():
        if provider.warmup is not None:
            for ip in provider.warmup.ips:
                if ip not in provider.ips:
                    raise _error(
                        source,
                        ["providers", name, "warmup", "ips"],
                        f"{ip} is not one of the provider's ips",
                    )
        for part in ("removal_requests", "quarantine"):
            for i, listname in enumerate(getattr(getattr(provider, part), "lists", None) or []):
                if listname not in scenario.blocklists:
                    key: Key = ["providers", name, part, "lists", i]
                    raise _error(source, key, f"no blocklist named {listname!r} in [blocklists]")
        if provider.pool_strategy == "dedicated":
            for pool in provider.pools:
                if pool not in scenario.senders:
                    raise _error(
                        source,
                        ["providers", name, "pools", pool],
                        f"dedicated pools are named after sender groups; no sender group {pool!r}",
                    )


def _domains(scenario: Scenario, source: str) -> None:
    for name, domain in scenario.domains.items():
        if domain.null_mx:
            continue
        hosts = [r.host for r in domain.mx] if domain.mx else [name]
        for i, host in enumerate(hosts):
            if host not in scenario.servers:
                key: Key = ["domains", name, "mx", i, "host"] if domain.mx else ["domains", name]
                what = f"MX host {host!r}" if domain.mx else f"implicit MX host {host!r}"
                raise _error(source, key, f"{what} has no [servers] entry")
        if domain.mx and all(scenario.servers[h].role == "backup" for h in hosts):
            raise _error(
                source,
                ["domains", name, "mx"],
                "every MX host is a backup: a domain needs a primary",
            )


def _sender(
    scenario: Scenario, name: str, source: str, base_dir: Path | None, local: dict[str, str]
) -> None:
    group = scenario.senders[name]
    if group.provider not in scenario.providers:
        raise _error(source, ["senders", name, "provider"], f"no provider named {group.provider!r}")
    for domain in group.domains:
        if domain not in scenario.domains and domain not in local:
            raise _error(
                source,
                ["senders", name, "domains", domain],
                f"no domain named {domain!r} in [domains]",
            )
    domains = domain_names([*scenario.domains, *local])
    for i, message in enumerate(group.messages or []):
        if message.sender >= group.count:
            raise _error(
                source,
                ["senders", name, "messages", i, "sender"],
                f"sender index {message.sender} is not below count {group.count}",
            )
        for address in message.to:
            problem, _ = address_problem(address, domains)
            if problem is not None:
                raise _error(source, ["senders", name, "messages", i, "to"], problem)
    if group.trace is not None:
        path = trace_path(group.trace, base_dir)
        key = key_path(["senders", name, "trace"])
        if not path.exists():
            raise ScenarioError(source, key, f"trace file {str(path)!r} does not exist")
        read_trace(path, group, domains, source, key)


def _retry(source: str, key: Key, retry: str | CustomRetry, params: dict[str, Any]) -> None:
    """The retry spec names a policy and ``retry_params`` fit it; a bad parameter is
    reported at its own key (``retry_params.maximal_backoff_time``, or ``retry.offsets``
    for a custom schedule's own keys)."""
    spec = retry.model_dump(mode="json") if isinstance(retry, CustomRetry) else retry
    try:
        retry_params(spec, params)
    except RetryParamsError as exc:
        if exc.key is None:
            where = [*key, "retry_params" if params else "retry"]
        elif exc.key in params or not isinstance(retry, CustomRetry):
            where = [*key, "retry_params", exc.key]
        else:
            where = [*key, "retry", exc.key]
        raise _error(source, where, exc.short) from None
    except ValueError as exc:
        raise _error(source, [*key, "retry"], str(exc)) from None
