"""Wiring: the only place that knows who talks to whom.

``World(scenario, env, streams, log)`` builds every component from its part of the
scenario, gives each its own named random stream, and connects senders to their
provider's MSA and MTA, MTAs to the DNS and the MX servers, primary MX servers to their
delivery agent and mailboxes, backup MX hosts and relays to their own queues, and
bounces back to their senders as DSNs. Behaviour lives in the components.
"""

from __future__ import annotations

from pathlib import Path

import simpy

from mailnet.model.abuse_desk import AbuseDesk
from mailnet.model.bounces import Bounces
from mailnet.model.clients import SenderPopulation
from mailnet.model.deferred import ScanClocks
from mailnet.model.dns import Resolver
from mailnet.model.feedback import ReputationFeedback
from mailnet.model.inbound import MxServer, own_hosts, service_sampler
from mailnet.model.interventions import ChangeLog, Interventions
from mailnet.model.mailbox import Mailboxes
from mailnet.model.mda import DeliveryAgent
from mailnet.model.message import MessageFactory
from mailnet.model.outbound import OutboundMta
from mailnet.model.receiver import BlocklistNetwork, Receiver, sample_scores, sending_domains
from mailnet.model.submission import SubmissionServer
from mailnet.policies.outages import OutageSchedule
from mailnet.policies.outbound_controls import SenderStats
from mailnet.policies.retry import RetryPolicy, make_retry_policy
from mailnet.policies.traps import TrapFeed
from mailnet.randomness import RandomStreams
from mailnet.records import EventLog
from mailnet.scenario import (
    CustomRetry,
    Provider,
    Scenario,
    SenderGroup,
    Server,
    build_blocklist,
)


class World:
    """Every component of one run, built and connected.

    ``blocklists`` (every DNSBL, for the listings table), ``suspensions`` (senders
    suspended by their provider, as dicts), ``changes`` (the scenario's changes as they
    were applied), ``trap_feed`` (the lists' trap hits) and ``abuse_actions`` (providers'
    removal requests and quarantines) are read after the run.
    """

    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        streams: RandomStreams,
        log: EventLog,
        *,
        base_dir: Path | None = None,
        source: str = "<scenario>",
    ):
        self.scenario = scenario
        self.env = env
        self.log = log
        self.streams = streams
        horizon = scenario.simulation.duration
        self.messages = MessageFactory(
            env, log.messages, {n: g.domain for n, g in scenario.senders.items() if g.domain}
        )
        self.resolver = Resolver(scenario.domains, streams.get("dns"), streams.get("dns.faults"))
        self.resolver.clock = lambda: env.now  # DNS fault episodes are judged at this time
        self.mailboxes = Mailboxes(
            scenario.domains, horizon, log.messages, streams.get("mailboxes")
        )
        self.blocklists = BlocklistNetwork(
            {
                name: build_blocklist(name, cfg, scenario)
                for name, cfg in scenario.blocklists.items()
            }
        )
        new_ips = frozenset(
            ip for p in scenario.providers.values() if p.warmup for ip in p.warmup.ips
        )
        self.trap_feed = TrapFeed(
            self.blocklists.lists,
            {name: cfg.traps for name, cfg in scenario.blocklists.items()},
            lambda name, group: streams.get(f"blocklists.{name}.traps.{group}"),
        )
        self.abuse_actions: list[dict] = []
        self.receivers = {
            name: Receiver(name, cfg, self.blocklists, streams.get(f"receivers.{name}"), new_ips)
            for name, cfg in scenario.receivers.items()
        }
        self.feedback = ReputationFeedback.for_scenario(
            scenario, self.blocklists, streams.get("complaints")
        )
        self.bounces = Bounces(self.messages)
        self.scans = ScanClocks(env)
        self.servers = {name: self._server(name, cfg) for name, cfg in scenario.servers.items()}
        for name, trusted in own_hosts(scenario).items():
            self.servers[name].trusted = trusted
        self.mtas: dict[str, OutboundMta] = {}
        self.submission: dict[str, SubmissionServer] = {}
        self.suspensions: list[dict] = []
        for name, cfg in scenario.providers.items():
            self._provider(name, cfg)
        self.bounces.providers = self.feedback.providers = self.submission
        self.relays: dict[str, OutboundMta] = {}
        for name, server_cfg in scenario.servers.items():
            self._connect_server(name, server_cfg)
        scored = [r for r in self.receivers.values() if r.reputation is not None]
        if scored:
            ips = [ip for mta in self.mtas.values() for ip in mta.ips]
            domains = sending_domains(scenario)
            interval = scenario.simulation.sample_interval
            env.process(
                sample_scores(env, scored, ips, domains, scores=log.scores, interval=interval)
            )
        self.senders = {
            name: self._senders(name, group, base_dir, source)
            for name, group in scenario.senders.items()
        }
        self.changes = ChangeLog()
        if scenario.changes:
            Interventions(self, self.changes, source)

    def _server(self, name: str, cfg: Server) -> MxServer:
        streams = self.streams
        return MxServer(
            self.env,
            name,
            cfg,
            service_time=service_sampler(cfg.service_time, streams.get(f"servers.{name}.service")),
            outages=OutageSchedule.from_config(
                cfg.outages,
                self.scenario.simulation.duration,
                streams.get(f"servers.{name}.outages"),
            ),
            levels=self.log.levels,
            rng=streams.get(f"servers.{name}.replies"),
            receiver=self.receivers[cfg.receiver] if cfg.receiver else None,
        )

    def _provider(self, name: str, cfg: Provider) -> None:
        """A provider's MTA and MSA, sharing the per-sender counts its controls read."""
        streams = self.streams
        stats = SenderStats.for_provider(cfg)
        mta = OutboundMta.for_provider(
            self.env,
            name,
            cfg,
            policy=_retry_policy(cfg.retry, cfg.retry_params, streams, name),
            resolver=self.resolver,
            servers=self.servers,
            log=self.log,
            rng=streams.get(f"providers.{name}.ips"),
            stats=stats,
            deliver_local=self.mailboxes.deliver,
            on_bounce=self.bounces,
            scans=self.scans,
        )
        self.mtas[name] = mta
        mta.sources.attach(self.trap_feed, cfg.asn)
        if cfg.removal_requests is not None or cfg.quarantine is not None:
            lists = self.blocklists.lists
            AbuseDesk(
                self.env,
                name,
                cfg,
                sources=mta.sources,
                lists=lists,
                feed=self.trap_feed,
                actions=self.abuse_actions,
            )
        self.submission[name] = SubmissionServer.for_provider(
            self.env,
            cfg,
            mta,
            table=self.log.messages,
            messages=self.messages,
            stats=stats,
            filter_rng=streams.get(f"providers.{name}.filter"),
            suspensions=self.suspensions,
        )

    def _connect_server(self, name: str, cfg: Server) -> None:
        """Where an MX server's accepted mail goes: a primary's delivery agent, or the
        queue of a backup MX or relay (an MTA too, with its own retry policy)."""
        server = self.servers[name]
        if cfg.role == "primary":
            agent = DeliveryAgent(server.receiver, self.mailboxes, self.feedback, self.log.messages)
            server.accept = agent.accept
            server.mailbox_full = self.mailboxes.is_full if self.mailboxes.may_fill else None
            return
        relay = OutboundMta.for_relay(
            self.env,
            name,
            cfg,
            policy=_retry_policy(cfg.retry, cfg.retry_params, self.streams, name),
            resolver=self.resolver,
            servers=self.servers,
            log=self.log,
            rng=self.streams.get(f"relays.{name}"),
            on_bounce=self.bounces,
            scans=self.scans,
        )
        self.relays[name] = relay
        server.accept = relay.accept

    def _senders(
        self, name: str, group: SenderGroup, base_dir: Path | None, source: str
    ) -> SenderPopulation:
        provider = self.scenario.providers[group.provider]
        return SenderPopulation(
            self.env,
            name,
            group,
            domain=provider.local_domains[0],
            submit=self.submission[group.provider].submitter(name, group),
            rng=self.streams.get(f"senders.{name}"),
            domains=self.scenario.domains,
            base_dir=base_dir,
            source=source,
            campaign_rng=self.streams.get(f"senders.{name}.campaigns"),
        )


def _retry_policy(
    retry: str | CustomRetry, params: dict, streams: RandomStreams, hop: str
) -> RetryPolicy:
    spec = retry.model_dump(mode="json") if isinstance(retry, CustomRetry) else retry
    return make_retry_policy(spec, params, rng=streams.get(f"retry.{hop}"))
