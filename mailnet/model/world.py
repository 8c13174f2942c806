"""Wiring: the only place that knows who talks to whom.

``World(scenario, env, streams, log)`` builds every component from the scenario, gives
each its own named random stream, and connects senders to their provider's MTA, MTAs to
the DNS and the MX servers, servers to the mailboxes or to their relay queue, and
bounces back to their senders as DSNs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import simpy

from mailnet import smtp
from mailnet.model.clients import SenderPopulation
from mailnet.model.dns import Resolver
from mailnet.model.inbound import MxServer
from mailnet.model.mailbox import Mailboxes
from mailnet.model.message import Message, domain_of
from mailnet.model.outbound import OutboundMta, SchedulerConfig, local_delivery
from mailnet.policies.outages import OutageSchedule
from mailnet.policies.retry import make_retry_policy
from mailnet.randomness import BlockDraws, RandomStreams
from mailnet.records import EventLog
from mailnet.scenario import CustomRetry, Distribution, Scenario


def service_sampler(dist: Distribution, rng: np.random.Generator):
    """A zero-argument function drawing service times (seconds) from ``dist``."""
    if dist.dist == "constant":
        value = float(dist.mean)
        return lambda: value
    if dist.dist == "exponential":
        mean = float(dist.mean)
        return BlockDraws(lambda n: rng.exponential(mean, n)).next
    if dist.dist == "uniform":
        low, high = float(dist.low), float(dist.high)
        return BlockDraws(lambda n: rng.uniform(low, high, n)).next
    mean, sd = float(dist.mean), float(dist.sd)
    sigma2 = math.log1p((sd / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2
    sigma = math.sqrt(sigma2)
    return BlockDraws(lambda n: rng.lognormal(mu, sigma, n)).next


def _retry_policy(retry, params, rng):
    spec = retry.model_dump(mode="json") if isinstance(retry, CustomRetry) else retry
    return make_retry_policy(spec, params, rng=rng)


class World:
    """Every component of one run, built and connected."""

    def __init__(self, scenario: Scenario, env: simpy.Environment, streams: RandomStreams,
                 log: EventLog, base_dir: Path | None = None, source: str = "<scenario>"):
        self.scenario = scenario
        self.env = env
        self.log = log
        self._next_id = 0
        horizon = scenario.simulation.duration
        self.resolver = Resolver(scenario.domains, streams.get("dns"), streams.get("dns.faults"))
        self.mailboxes = Mailboxes(
            {name: d.poll_interval for name, d in scenario.domains.items()}, horizon,
            log.messages, streams.get("mailboxes"),
            push_domains={n for n, d in scenario.domains.items() if d.retrieval == "imap"})
        deliver = local_delivery(self.mailboxes, log.messages)

        self.servers: dict[str, MxServer] = {}
        for name, cfg in scenario.servers.items():
            if cfg.outages is None:
                outages = OutageSchedule.never()
            elif isinstance(cfg.outages, list):
                outages = OutageSchedule([(w.start, w.end, w.mode) for w in cfg.outages])
            else:
                outages = OutageSchedule.random(cfg.outages.mtbf, cfg.outages.mttr,
                                                cfg.outages.mode, horizon,
                                                streams.get(f"servers.{name}.outages"))
            server = MxServer(
                env, name, cfg.ip, cfg.sessions,
                None if cfg.backlog == "unlimited" else cfg.backlog, cfg.connect_time,
                service_sampler(cfg.service_time, streams.get(f"servers.{name}.service")),
                outages, cfg.role, log.levels, rng=streams.get(f"servers.{name}.replies"),
                mailbox_full=cfg.mailbox_full, recipient_rate=cfg.recipient_rate_limit,
                recipient_burst=cfg.recipient_burst)
            self.servers[name] = server

        self.mtas: dict[str, OutboundMta] = {}
        for name, cfg in scenario.providers.items():
            policy = _retry_policy(cfg.retry, cfg.retry_params, streams.get(f"retry.{name}"))
            config = SchedulerConfig(
                max_connections=cfg.max_connections,
                destination_concurrency_limit=cfg.destination_concurrency_limit,
                initial_destination_concurrency=cfg.initial_destination_concurrency,
                failed_cohort_limit=cfg.destination_concurrency_failed_cohort_limit,
                negative_feedback=cfg.destination_concurrency_negative_feedback,
                positive_feedback=cfg.destination_concurrency_positive_feedback,
                connect_timeout=cfg.smtp_connect_timeout,
                mx_address_limit=cfg.smtp_mx_address_limit,
                dead_time=_dead_time(policy))
            self.mtas[name] = OutboundMta(
                env, name, cfg.ips, cfg.ip_selection, config, policy, self.resolver,
                self.servers, log, streams.get(f"providers.{name}.ips"),
                local_domains=set(cfg.local_domains), deliver_local=deliver,
                on_bounce=self._send_dsn, nexthop=cfg.relay_host)

        # Backup MX hosts and relays are MTAs too: each has its own queue and retry policy.
        self.relays: dict[str, OutboundMta] = {}
        for name, cfg in scenario.servers.items():
            server = self.servers[name]
            if cfg.role == "primary":
                server.accept = self._store
                continue
            below = {}
            if cfg.role == "backup":
                for domain in scenario.domains:
                    pref = self.resolver.preference(domain, name)
                    if pref is not None:
                        below[domain] = pref
            policy = _retry_policy(cfg.retry, cfg.retry_params, streams.get(f"retry.{name}"))
            relay = OutboundMta(
                env, name, [server.ip], "round-robin",
                SchedulerConfig(max_connections=cfg.max_connections, dead_time=_dead_time(policy)),
                policy, self.resolver, self.servers, log, streams.get(f"relays.{name}"),
                relay_below=below, on_bounce=self._send_dsn, nexthop=cfg.relay_to)
            self.relays[name] = relay
            server.accept = lambda message, rcpts, now, host, relay=relay: relay.submit(
                message, rcpts)

        users = {name: d.users for name, d in scenario.domains.items()}
        self.senders: dict[str, SenderPopulation] = {}
        for name, group in scenario.senders.items():
            provider = scenario.providers[group.provider]
            mta = self.mtas[group.provider]
            submit = self._submitter(mta, group.provider, group.sender_class)
            self.senders[name] = SenderPopulation(
                env, name, group, provider.local_domains[0], submit,
                streams.get(f"senders.{name}"), users, base_dir=base_dir, source=source)

    # ------------------------------------------------------------ message creation
    def new_message(self, sender: str, sender_class: str, provider: str, is_dsn: bool,
                    recipients: list[str], original: Message | None = None) -> Message:
        """A message with one table row per recipient, created now."""
        now = self.env.now
        message = Message(self._next_id, sender, sender_class, provider, is_dsn, now,
                          original=original)
        self._next_id += 1
        table = self.log.messages
        for rcpt in recipients:
            message.rows[rcpt] = table.add(message.id, rcpt, sender, sender_class, provider,
                                           domain_of(rcpt), is_dsn, now)
        return message

    def _submitter(self, mta: OutboundMta, provider: str, sender_class: str):
        def submit(sender: str, recipients: list[str]) -> None:
            message = self.new_message(sender, sender_class, provider, False, recipients)
            mta.submit(message, recipients)
        return submit

    def _store(self, message: Message, recipients: list[str], now: float, host: str) -> None:
        for rcpt in recipients:
            self.mailboxes.store(message.rows[rcpt], rcpt, domain_of(rcpt), now)

    def _send_dsn(self, mta: OutboundMta, message: Message, recipients: list[str],
                  reply: smtp.Reply, kind: str) -> None:
        """A DSN (RFC 3464) from the null sender to the original sender, sent by ``mta``."""
        if not message.sender:
            return
        dsn = self.new_message("", message.sender_class, mta.name, True, [message.sender],
                               original=message)
        mta.submit(dsn, [message.sender])


def _dead_time(policy) -> float:
    """How long a dead destination stays dead: Postfix's minimal_backoff_time (300 s)."""
    params = getattr(policy, "params", {}) or {}
    return float(params.get("minimal_backoff_time", 300.0))
