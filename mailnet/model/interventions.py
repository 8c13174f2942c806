"""Interventions: the scenario's ``[[changes]]`` applied to the live components of a run.

A timed change is one timeout; a triggered one hooks the event that fires it (a
blocklist's new listing, a hop's deferred queue growing past a length), so nothing is
checked per message. Applying a change builds the changed entity's new config (validated
as at load time) and hands it to the component that reads it: the provider's source
addresses and MSA controls, a sender group's stream, an MX server's sessions and backlog,
the resolver's MX records. Each key set is one row of the ``changes`` table.
"""

from __future__ import annotations

import ipaddress
import json
from array import array
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from mailnet.errors import ScenarioError, key_path, validation_error
from mailnet.model.submission import SenderShaper
from mailnet.policies.blocklists import ListingRecord
from mailnet.policies.outbound_controls import OutboundSpamFilter, PoolAssigner
from mailnet.scenario.changes import Change, Trigger
from mailnet.scenario.overrides import set_dotted
from mailnet.tables import CHANGES

if TYPE_CHECKING:
    from mailnet.model.world import World


class ChangeLog:
    """The applied changes, one row per key set: ``changes.parquet``."""

    def __init__(self) -> None:
        self.time = array("d")
        self.change = array("q")
        self.trigger: list[str] = []
        self.key: list[str] = []
        self.old: list[str] = []
        self.new: list[str] = []

    def record(self, t: float, index: int, trigger: str, key: str, *, old: Any, new: Any) -> None:
        """Key ``key`` set by change ``index`` at ``t``, fired by ``trigger``."""
        self.time.append(t)
        self.change.append(index)
        self.trigger.append(trigger)
        self.key.append(key)
        self.old.append(json.dumps(old))
        self.new.append(json.dumps(new))

    def frame(self) -> pd.DataFrame:
        return CHANGES.frame(
            {
                "time": self.time,
                "change": self.change,
                "trigger": self.trigger,
                "key": self.key,
                "old": self.old,
                "new": self.new,
            }
        )


class Interventions:
    """Schedules and applies the changes of ``world.scenario``; ``log`` records them.

    ``source`` names the scenario file in the (rare) error of a combination of changes
    that is invalid together although each was valid alone.
    """

    def __init__(self, world: World, log: ChangeLog, source: str = "<scenario>"):
        self.world = world
        self.env = world.env
        self.log = log
        self.source = source
        scenario = world.scenario
        self.configs: dict[str, dict[str, BaseModel]] = {
            "providers": dict(scenario.providers),
            "senders": dict(scenario.senders),
            "servers": dict(scenario.servers),
            "domains": dict(scenario.domains),
        }
        for index, change in enumerate(scenario.changes):
            if change.at is not None:
                self._after(change.at, index, "at")
            else:
                assert change.when is not None  # one of at or when, checked at load
                self._hook(index, change, change.when)

    # ---------------------------------------------------------------- triggers
    def _hook(self, index: int, change: Change, when: Trigger) -> None:
        fired = [False]

        def fire(trigger: str) -> None:
            if change.once and fired[0]:
                return
            fired[0] = True
            self._after(change.delay, index, trigger)

        if when.event == "listed":
            provider = self.world.scenario.providers[when.provider or ""]
            covers = _coverage(provider.ips, provider.asn)

            def listed(record: ListingRecord) -> None:
                if covers(record):
                    fire(f"listed {record.list} {record.key}")

            for name, blocklist in self.world.blocklists.lists.items():
                if when.list is None or when.list == name:
                    blocklist.on_listing.append(listed)
            return
        mta = self.world.mtas.get(when.hop or "") or self.world.relays[when.hop or ""]
        threshold = when.threshold or 0
        above = [False]

        def watch(size: int) -> None:
            if size > threshold and not above[0]:
                above[0] = True
                fire(f"queue_above {when.hop} {size}")
            elif size <= threshold:
                above[0] = False

        mta.deferred.watchers.append(watch)

    def _after(self, delay: float, index: int, trigger: str) -> None:
        """Apply change ``index`` ``delay`` seconds from now (at that absolute time for
        ``at``), after the event that fired it has finished."""
        wait = delay if trigger != "at" else max(0.0, delay - self.env.now)
        event = self.env.timeout(wait)
        event.callbacks.append(lambda _e: self.apply(index, trigger))

    # ---------------------------------------------------------------- applying
    def apply(self, index: int, trigger: str) -> None:
        """Set every key of change ``index`` now, recording each."""
        change = self.world.scenario.changes[index]
        for parts, value in change.assignments():
            section, name, field = parts[0], parts[1], parts[2]
            current = self.configs[section][name]
            data = current.model_dump(mode="json", by_alias=True, exclude_none=True)
            old = _get(data, parts[2:])
            set_dotted(data, parts[2:], value)
            try:
                updated = type(current).model_validate(data)
            except ValidationError as exc:
                where = validation_error(exc, self.source, [section, name])
                raise ScenarioError(
                    self.source,
                    key_path(["changes", index, "set"]) + "." + key_path(parts),
                    f"invalid together with the changes before it: {where.problem}",
                ) from None
            self.configs[section][name] = updated
            new = _get(updated.model_dump(mode="json", by_alias=True, exclude_none=True), parts[2:])
            getattr(self, f"_{section}")(name, field, updated)
            self.log.record(self.env.now, index, trigger, key_path(parts), old=old, new=new)

    def _providers(self, name: str, field: str, config: Any) -> None:
        mta = self.world.mtas[name]
        msa = self.world.submission[name]
        if field in ("pool_strategy", "pools", "ip_selection"):
            mta.sources.ip_selection = config.ip_selection
            mta.sources.assigner = PoolAssigner.for_provider(config, msa.stats)
        elif field == "rate_limit":
            limit = config.rate_limit
            msa.shaper = None if limit is None else SenderShaper(limit.rate, limit.burst)
        elif field == "outbound_filter":
            spec = config.outbound_filter
            rng = self.world.streams.get(f"providers.{name}.filter")
            msa.spam_filter = None if spec is None else OutboundSpamFilter.from_config(spec, rng)

    def _senders(self, name: str, field: str, config: Any) -> None:
        self.world.senders[name].set_rate(config.rate)

    def _servers(self, name: str, field: str, config: Any) -> None:
        server = self.world.servers[name]
        if field == "sessions":
            server.set_sessions(config.sessions)
        else:
            server.backlog = None if config.backlog == "unlimited" else config.backlog

    def _domains(self, name: str, field: str, config: Any) -> None:
        resolver = self.world.resolver
        resolver.set_mx(name, [(r.preference, r.host) for r in config.mx or []])
        for host, relay in self.world.relays.items():
            if self.world.scenario.servers[host].role == "backup":
                relay.relay_below = resolver.preferences(host)


def _get(data: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _coverage(ips: list[str], asn: int):
    """A test of whether a listing record covers one of ``ips`` (in AS ``asn``): the
    address itself, a prefix holding one, or the AS."""
    addresses = [ipaddress.ip_address(ip) for ip in ips]

    def covers(record: ListingRecord) -> bool:
        if record.scope == "ip":
            return record.key in ips
        if record.scope == "prefix":
            network = ipaddress.ip_network(record.key, strict=False)
            return any(a in network for a in addresses)
        return record.key in (f"AS{asn}", str(asn))

    return covers
