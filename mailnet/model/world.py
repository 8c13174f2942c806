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
from mailnet.model.message import Message, domain_of, is_trap
from mailnet.model.outbound import OutboundMta, SchedulerConfig, local_delivery
from mailnet.model.receiver import BlocklistNetwork, Receiver
from mailnet.model.submission import SenderShaper, SubmissionServer
from mailnet.policies.outages import OutageSchedule
from mailnet.policies.outbound_controls import (
    OutboundSpamFilter,
    PoolAssigner,
    SenderStats,
    SenderSuspension,
    WarmupSchedule,
)
from mailnet.policies.retry import make_retry_policy
from mailnet.randomness import BlockDraws, RandomStreams
from mailnet.records import EventLog
from mailnet.scenario import CustomRetry, Distribution, Scenario, build_blocklist


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

    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        streams: RandomStreams,
        log: EventLog,
        base_dir: Path | None = None,
        source: str = "<scenario>",
    ):
        self.scenario = scenario
        self.env = env
        self.log = log
        self._next_id = 0
        horizon = scenario.simulation.duration
        self.resolver = Resolver(scenario.domains, streams.get("dns"), streams.get("dns.faults"))
        self.mailboxes = Mailboxes(
            {name: d.poll_interval for name, d in scenario.domains.items()},
            horizon,
            log.messages,
            streams.get("mailboxes"),
            push_domains={n for n, d in scenario.domains.items() if d.retrieval == "imap"},
        )
        deliver = local_delivery(self.mailboxes, log.messages)
        self.blocklists = BlocklistNetwork(
            {
                name: build_blocklist(name, cfg, scenario)
                for name, cfg in scenario.blocklists.items()
            }
        )
        self.receivers = {
            name: Receiver(name, cfg, self.blocklists, streams.get(f"receivers.{name}"))
            for name, cfg in scenario.receivers.items()
        }
        self._complaint_rng = streams.get("complaints")
        self._groups = scenario.senders

        self.servers: dict[str, MxServer] = {}
        for name, cfg in scenario.servers.items():
            if cfg.outages is None:
                outages = OutageSchedule.never()
            elif isinstance(cfg.outages, list):
                outages = OutageSchedule([(w.start, w.end, w.mode) for w in cfg.outages])
            else:
                outages = OutageSchedule.random(
                    cfg.outages.mtbf,
                    cfg.outages.mttr,
                    cfg.outages.mode,
                    horizon,
                    streams.get(f"servers.{name}.outages"),
                )
            server = MxServer(
                env,
                name,
                cfg.ip,
                cfg.sessions,
                None if cfg.backlog == "unlimited" else cfg.backlog,
                cfg.connect_time,
                service_sampler(cfg.service_time, streams.get(f"servers.{name}.service")),
                outages,
                cfg.role,
                log.levels,
                rng=streams.get(f"servers.{name}.replies"),
                mailbox_full=cfg.mailbox_full,
                recipient_rate=cfg.recipient_rate_limit,
                recipient_burst=cfg.recipient_burst,
            )
            server.receiver = self.receivers.get(cfg.receiver) if cfg.receiver else None
            self.servers[name] = server

        self.mtas: dict[str, OutboundMta] = {}
        self.submission: dict[str, SubmissionServer] = {}
        self.suspensions: list[dict] = []
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
                dead_time=_dead_time(policy),
            )
            measured = cfg.suspension is not None or cfg.pool_strategy == "by-reputation"
            stats = (
                SenderStats(cfg.suspension.window if cfg.suspension else 7 * 86400.0)
                if measured
                else None
            )
            mta = OutboundMta(
                env,
                name,
                cfg.ips,
                cfg.ip_selection,
                config,
                policy,
                self.resolver,
                self.servers,
                log,
                streams.get(f"providers.{name}.ips"),
                local_domains=set(cfg.local_domains),
                deliver_local=deliver,
                on_bounce=self._send_dsn,
                nexthop=cfg.relay_host,
                asn=cfg.asn,
                assigner=_pool_assigner(cfg, stats),
                warmup=None
                if cfg.warmup is None
                else WarmupSchedule(
                    cfg.warmup.daily_limits, starts={ip: cfg.warmup.start for ip in cfg.warmup.ips}
                ),
            )
            self.mtas[name] = mta
            sus = cfg.suspension
            self.submission[name] = SubmissionServer(
                env,
                mta,
                log.messages,
                self.new_message,
                stats,
                suspension=None
                if sus is None
                else SenderSuspension(
                    sus.bounce_rate,
                    sus.complaint_rate,
                    sus.window,
                    sus.min_volume,
                    duration=sus.duration,
                    stats=stats,
                    log=self.suspensions,
                ),
                spam_filter=None
                if cfg.outbound_filter is None
                else OutboundSpamFilter(
                    cfg.outbound_filter.catch_rate,
                    streams.get(f"providers.{name}.filter"),
                    fp_rate=cfg.outbound_filter.fp_rate,
                ),
                shaper=None
                if cfg.rate_limit is None
                else SenderShaper(cfg.rate_limit.rate, cfg.rate_limit.burst),
            )

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
                env,
                name,
                [server.ip],
                "round-robin",
                SchedulerConfig(max_connections=cfg.max_connections, dead_time=_dead_time(policy)),
                policy,
                self.resolver,
                self.servers,
                log,
                streams.get(f"relays.{name}"),
                relay_below=below,
                on_bounce=self._send_dsn,
                nexthop=cfg.relay_to,
            )
            self.relays[name] = relay
            server.accept = lambda message, rcpts, now, host, client_ip, relay=relay: relay.submit(
                message, rcpts
            )

        if any(r.reputation is not None for r in self.receivers.values()):
            env.process(self._sample_scores(scenario.simulation.sample_interval))

        users = {name: d.users for name, d in scenario.domains.items()}
        self.senders: dict[str, SenderPopulation] = {}
        for name, group in scenario.senders.items():
            provider = scenario.providers[group.provider]
            submit = self._submitter(self.submission[group.provider], name, group)
            self.senders[name] = SenderPopulation(
                env,
                name,
                group,
                provider.local_domains[0],
                submit,
                streams.get(f"senders.{name}"),
                users,
                base_dir=base_dir,
                source=source,
                campaign_rng=streams.get(f"senders.{name}.campaigns"),
            )

    # ------------------------------------------------------------ message creation
    def new_message(
        self,
        sender: str,
        sender_class: str,
        provider: str,
        is_dsn: bool,
        recipients: list[str],
        original: Message | None = None,
        group: str = "",
        retries: bool = True,
    ) -> Message:
        """A message with one table row per recipient, created now."""
        now = self.env.now
        message = Message(
            self._next_id,
            sender,
            sender_class,
            provider,
            is_dsn,
            now,
            original=original,
            group=group,
            retries=retries,
        )
        self._next_id += 1
        table = self.log.messages
        for rcpt in recipients:
            message.rows[rcpt] = table.add(
                message.id, rcpt, sender, sender_class, provider, domain_of(rcpt), is_dsn, now
            )
        return message

    def _submitter(self, msa: SubmissionServer, group_name: str, group):
        cls, retries = group.sender_class, group.retries

        def submit(sender: str, recipients: list[str]) -> None:
            msa.submit(sender, recipients, group_name, cls, retries)

        return submit

    def _store(
        self, message: Message, recipients: list[str], now: float, host: str, client_ip: str
    ) -> None:
        """A primary MX accepted ``recipients``: file, observe, store."""
        receiver = self.servers[host].receiver
        table = self.log.messages
        is_spam = message.sender_class == "spam"
        asn = self._asn_of(client_ip)
        group = self._groups.get(message.group)
        for rcpt in recipients:
            row = message.rows[rcpt]
            if is_trap(rcpt):
                self.blocklists.observe("trap", client_ip, asn, now)
                if receiver is not None:
                    receiver.observe("trap", client_ip, now)
            elif is_spam:
                self.blocklists.observe("spam", client_ip, asn, now)
            if receiver is not None:
                folder, by_reputation = receiver.place(is_spam, client_ip, now)
                receiver.observe("spam" if folder == "spam" else "ham", client_ip, now)
                if by_reputation and message.legitimate:
                    table.mark_collateral(row, "filter")
            else:
                folder = "inbox"
            table.folder[row] = folder
            table.stored_by[row] = host
            if (
                folder == "inbox"
                and group is not None
                and group.complaints
                and not is_trap(rcpt)
                and float(self._complaint_rng.random()) < group.complaints
            ):
                self._complaint(message, client_ip, asn, receiver, now)
            self.mailboxes.store(row, rcpt, domain_of(rcpt), now)

    def _complaint(self, message: Message, client_ip: str, asn: int, receiver, now: float):
        """A recipient marks the message as spam: the receiver, the lists and the
        sender's provider (through its feedback loop) all hear of it."""
        self.blocklists.observe("complaint", client_ip, asn, now)
        if receiver is not None:
            receiver.observe("complaint", client_ip, now)
        msa = self.submission.get(message.provider)
        if msa is not None:
            msa.record(message.sender, "complaint")

    def _sample_scores(self, interval: float):
        """Record every receiver's score for every provider address, every ``interval``."""
        ips = [ip for mta in self.mtas.values() for ip in mta.ips]
        receivers = [r for r in self.receivers.values() if r.reputation is not None]
        scores = self.log.scores
        while True:
            now = self.env.now
            for receiver in receivers:
                for ip in ips:
                    scores.record(now, receiver.name, ip, receiver.score(ip, now))
            yield self.env.timeout(interval)

    def _asn_of(self, ip: str) -> int:
        for mta in self.mtas.values():
            if ip in mta.ips:
                return mta.asn_of(ip)
        return 0

    def _send_dsn(
        self,
        mta: OutboundMta,
        message: Message,
        recipients: list[str],
        reply: smtp.Reply,
        kind: str,
    ) -> None:
        """A DSN (RFC 3464) from the null sender to the original sender, sent by ``mta``;
        a hard bounce is also counted against the sender at its provider."""
        if kind == "failed" and reply.permanent and message.provider in self.submission:
            self.submission[message.provider].record(message.sender, "bounce", len(recipients))
        if not message.sender or not message.retries:
            return
        dsn = self.new_message(
            "", message.sender_class, mta.name, True, [message.sender], original=message
        )
        table = self.log.messages
        for row in dsn.rows.values():
            table.link_dsn(row, message.id, kind, recipients[0])
            table.release(row, self.env.now)
        mta.submit(dsn, [message.sender])


def _pool_assigner(cfg, stats: SenderStats) -> PoolAssigner | None:
    """The provider's IP pool strategy; ``None`` for one shared pool (``ip_selection``)."""
    if cfg.pool_strategy == "shared":
        return None
    pools = {name: list(ips) for name, ips in cfg.pools.items()}
    if cfg.pool_strategy == "dedicated":
        dedicated = pools
        own = {ip for ips in dedicated.values() for ip in ips}
        shared = [ip for ip in cfg.ips if ip not in own] or list(cfg.ips)
        return PoolAssigner("dedicated", {"shared": shared}, dedicated=dedicated)
    if cfg.pool_strategy == "by-reputation":
        return PoolAssigner("by-reputation", pools, stats=stats)
    return PoolAssigner("by-class", pools)


def _dead_time(policy) -> float:
    """How long a dead destination stays dead: Postfix's minimal_backoff_time (300 s)."""
    params = getattr(policy, "params", {}) or {}
    return float(params.get("minimal_backoff_time", 300.0))
