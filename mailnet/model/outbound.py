"""The outbound MTA: queue manager and SMTP client of one sending hop.

One ``OutboundMta`` per sending hop (a provider's outbound server, or a backup MX or
relay passing mail on). Queued mail is plain ``Delivery`` records: the active queue is a
FIFO per destination kept by the :class:`~mailnet.model.destinations.DestinationScheduler`
(Postfix's concurrency windows and dead destinations), the deferred queue a heap of
eligible times scanned by one queue-runner process. Only a delivery in progress is a
SimPy process. Which hosts an attempt tries comes from
:func:`~mailnet.model.routing.mx_route`.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from mailnet import smtp
from mailnet.model.destinations import Destination, DestinationScheduler
from mailnet.model.dns import Resolver
from mailnet.model.inbound import MxServer
from mailnet.model.message import Delivery, Message, domain_of
from mailnet.model.routing import mx_route
from mailnet.policies.outbound_controls import PoolAssigner, WarmupSchedule
from mailnet.policies.retry import RetryPolicy
from mailnet.records import EventLog
from mailnet.scenario import Provider, Server

BounceHook = Callable[["OutboundMta", Message, list[str], smtp.Reply, str], None]
"""``(mta, message, recipients, reply, kind)`` with kind ``failed``, ``delayed`` or
``expired``."""

LocalDelivery = Callable[[Message, str, float], smtp.Reply]
"""``deliver(message, recipient, now)``: store into a local mailbox; the reply says how."""


def dead_time(policy: RetryPolicy) -> float:
    """How long a dead destination stays dead: Postfix's minimal_backoff_time (300 s)."""
    params = getattr(policy, "params", {}) or {}
    return float(params.get("minimal_backoff_time", 300.0))


class OutboundMta:
    """A sending MTA with its IP pool, queue, retry policy and destination scheduler.

    Build one with :meth:`for_provider` or :meth:`for_relay`. ``servers`` maps MX host
    names to servers; ``local_domains`` are delivered straight to ``deliver_local``;
    ``relay_below`` gives, per domain, the preference of this host's own MX record, so a
    backup MX only relays to more preferred hosts (RFC 5321 §5.1); ``nexthop`` sends
    every message to that one host instead of looking up MX records (a provider's
    smarthost, or an inbound relay's final server). ``connect_timeout`` and
    ``mx_address_limit`` are Postfix's smtp_connect_timeout (seconds) and
    smtp_mx_address_limit.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        ips: list[str],
        ip_selection: str,
        scheduler: Callable[[Any], DestinationScheduler],
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        *,
        connect_timeout: float,
        mx_address_limit: int,
        local_domains: set[str] | None = None,
        deliver_local: LocalDelivery | None = None,
        relay_below: dict[str, int] | None = None,
        on_bounce: BounceHook | None = None,
        nexthop: str | None = None,
        asn: int = 0,
        assigner: PoolAssigner | None = None,
        warmup: WarmupSchedule | None = None,
    ):
        self.env = env
        self.name = name
        self.ips = list(ips)
        self.ip_selection = ip_selection
        self.scheduler = scheduler(self._start)
        self.policy = policy
        self.resolver = resolver
        self.servers = servers
        self.log = log
        self.rng = rng
        self.connect_timeout = connect_timeout
        self.mx_address_limit = mx_address_limit
        self.local_domains = local_domains or set()
        self.deliver_local = deliver_local
        self.relay_below = relay_below or {}
        self.on_bounce = on_bounce
        self.nexthop = nexthop
        self.asn = asn
        self.assigner = assigner
        self.warmup = warmup
        self._deferred: list[tuple[float, int, Delivery]] = []
        self._seq = 0
        self._rr = 0
        self.active = 0
        self.deferred = 0
        self._active_series = log.levels.series_id("mta", name, "active")
        self._deferred_series = log.levels.series_id("mta", name, "deferred")
        self._changes_ip = bool(getattr(policy, "changes_source_ip", False))
        self._slack = float(getattr(policy, "scan_slack", 0.0))
        if policy.queue_run_interval is not None:
            env.process(self._queue_runner(float(policy.queue_run_interval)))

    @classmethod
    def for_provider(
        cls,
        env: simpy.Environment,
        name: str,
        config: Provider,
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        **hooks: Any,
    ) -> OutboundMta:
        """A provider's outbound MTA (``[providers.NAME]``); ``hooks`` are the keyword
        arguments of the constructor that wire it (deliver_local, on_bounce, assigner,
        warmup)."""
        wait = dead_time(policy)
        return cls(
            env,
            name,
            config.ips,
            config.ip_selection,
            lambda start: DestinationScheduler.for_provider(start, config, wait),
            policy,
            resolver,
            servers,
            log,
            rng,
            connect_timeout=config.smtp_connect_timeout,
            mx_address_limit=config.smtp_mx_address_limit,
            local_domains=set(config.local_domains),
            nexthop=config.relay_host,
            asn=config.asn,
            **hooks,
        )

    @classmethod
    def for_relay(
        cls,
        env: simpy.Environment,
        name: str,
        config: Server,
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        on_bounce: BounceHook | None = None,
    ) -> OutboundMta:
        """The queue of a backup MX or relay server (``[servers.NAME]``): it sends from
        its own address with Postfix's client defaults and its own ``max_connections``."""
        wait = dead_time(policy)
        postfix = Provider.model_construct()
        below = resolver.preferences(name) if config.role == "backup" else {}
        return cls(
            env,
            name,
            [config.ip or ""],
            "round-robin",
            lambda start: DestinationScheduler.for_relay(start, config.max_connections, wait),
            policy,
            resolver,
            servers,
            log,
            rng,
            connect_timeout=postfix.smtp_connect_timeout,
            mx_address_limit=postfix.smtp_mx_address_limit,
            relay_below=below,
            on_bounce=on_bounce,
            nexthop=config.relay_to,
        )

    # ------------------------------------------------------------ entering the queue
    def submit(self, message: Message, recipients: list[str]) -> None:
        """Queue a message (or relay it): local recipients are delivered at once."""
        now = self.env.now
        by_domain: dict[str, list[str]] = {}
        for rcpt in recipients:
            by_domain.setdefault(domain_of(rcpt), []).append(rcpt)
        for domain, rcpts in by_domain.items():
            if domain in self.local_domains and self.deliver_local is not None:
                for rcpt in rcpts:
                    reply = self.deliver_local(message, rcpt, now)
                    if reply.permanent:
                        self._bounce(message, [rcpt], reply)
                continue
            self._activate(Delivery(message, domain, rcpts, now))

    def _activate(self, delivery: Delivery) -> None:
        self.active += 1
        self._record_active()
        if not self.scheduler.offer(delivery):
            self._suspend(delivery)

    def _start(self, delivery: Delivery, dest: Destination) -> None:
        self.env.process(self._deliver(delivery, dest))

    # ------------------------------------------------------------ the deferred queue
    def _queue_runner(self, interval: float):
        """Scan the deferred queue every ``interval`` seconds from t=0 (as qmgr does)."""
        env = self.env
        heap = self._deferred
        while True:
            horizon = env.now + self._slack
            while heap and heap[0][0] <= horizon:
                _, _, delivery = heapq.heappop(heap)
                self.deferred -= 1
                self._activate(delivery)
            self._record_deferred()
            yield env.timeout(interval)

    def _schedule(self, delivery: Delivery, eligible: float) -> None:
        self.deferred += 1
        self._record_deferred()
        if self.policy.queue_run_interval is None:
            wake = self.env.timeout(max(0.0, eligible - self.env.now))
            wake.callbacks.append(lambda _event, d=delivery: self._wake(d))
        else:
            self._seq += 1
            heapq.heappush(self._deferred, (eligible, self._seq, delivery))

    def _wake(self, delivery: Delivery) -> None:
        self.deferred -= 1
        self._record_deferred()
        self._activate(delivery)

    def _site_failure(self, dest: Destination) -> None:
        """A connection-level failure: throttle, and if the destination died, defer what
        waited for it and revive it after the dead time."""
        scheduler = self.scheduler
        held = scheduler.failed(dest)
        if held is None:
            return
        for delivery in held:
            self._suspend(delivery)
        revive = self.env.timeout(scheduler.dead_time)
        revive.callbacks.append(lambda _event, d=dest: scheduler.revive(d))

    # ------------------------------------------------------------ one delivery attempt
    def _pick_ip(self, delivery: Delivery) -> str | None:
        """The source address of this attempt, or ``None`` when warm-up caps forbid all."""
        if delivery.source_ip is not None and not self._changes_ip and self.assigner is None:
            ip: str | None = delivery.source_ip
        else:
            ip = self._choose_ip(delivery)
        if self.warmup is not None and not self.warmup.admit(ip, self.env.now):
            # a capped address: take the next one of the pool that may still send today
            others = [o for o in self.ips if o != ip]
            ip = next((o for o in others if self.warmup.admit(o, self.env.now)), None)
        delivery.source_ip = ip
        return ip

    def _choose_ip(self, delivery: Delivery) -> str:
        message = delivery.message
        if self.assigner is not None:
            key = message.group if self.assigner.strategy == "dedicated" else message.sender
            return self.assigner.pick(key, message.sender_class, self.env.now)
        ips = self.ips
        if len(ips) == 1:
            return ips[0]
        if self.ip_selection == "sender-hash":
            return ips[zlib.crc32(message.sender.encode()) % len(ips)]
        if self.ip_selection == "random":
            return ips[int(self.rng.integers(len(ips)))]
        self._rr += 1
        return ips[(self._rr - 1) % len(ips)]

    def _deliver(self, delivery: Delivery, dest: Destination):
        """One delivery attempt: try MX hosts in order until one gives a session."""
        env = self.env
        message = delivery.message
        recipients = delivery.recipients
        delivery.attempts += 1
        ip = self._pick_ip(delivery)
        result = None
        host = None
        started = env.now
        if ip is None:
            site_reply, hosts = smtp.WARMUP_CAP, []
        else:
            site_reply, hosts = mx_route(
                self.resolver,
                delivery.domain,
                self.nexthop,
                self.relay_below.get(delivery.domain),
            )
        for host in hosts[: self.mx_address_limit]:
            started = env.now
            result = yield from self.servers[host].session(
                message, recipients, self.connect_timeout, ip, self.asn
            )
            site_reply = result.site_reply
            if site_reply is None:
                break
        self.active -= 1
        self._record_active()
        causes = None
        if site_reply is not None:
            replies = [site_reply] * len(recipients)
            session_at = math.nan
            if site_reply.transient and site_reply is not smtp.WARMUP_CAP:
                self._site_failure(dest)
        else:
            replies = result.replies
            causes = result.causes
            session_at = result.session_at
            self.scheduler.succeeded(dest)
            self.policy.after_success(now=env.now, destination=host)
        self._settle_attempt(delivery, ip or "", host, started, session_at, replies, causes)
        self.scheduler.done(dest)

    def _settle_attempt(
        self, delivery, ip, host, started, session_at, replies, causes=None
    ) -> None:
        env = self.env
        message = delivery.message
        table = self.log.messages
        attempts = self.log.attempts
        now = env.now
        deferred: list[str] = []
        bounced: list[str] = []
        last_transient = None
        last_permanent = None
        for i, (rcpt, reply) in enumerate(zip(delivery.recipients, replies, strict=True)):
            row = message.rows[rcpt]
            table.attempts[row] += 1
            if reply.ok:
                outcome = "sent"
            elif reply.transient:
                outcome = "deferred"
                deferred.append(rcpt)
                last_transient = reply
            else:
                outcome = "bounced"
                bounced.append(rcpt)
                last_permanent = reply
            attempts.add(
                message.id,
                rcpt,
                self.name,
                ip,
                host,
                started,
                session_at,
                now,
                reply.code,
                reply.enhanced,
                outcome,
            )
            if not reply.ok:
                table.final_code[row] = reply.code
                table.final_enhanced_code[row] = reply.enhanced
                # a refusal for what others did from this address or network
                cause = causes[i] if causes else None
                if cause is not None and message.legitimate:
                    table.mark_collateral(row, cause)
        if bounced:
            self._bounce(message, bounced, last_permanent)
        if deferred:
            delivery.recipients = deferred
            self._defer(delivery, last_transient, host or delivery.domain)

    def _suspend(self, delivery: Delivery) -> None:
        """Defer without a connection: the destination is dead."""
        now = self.env.now
        message = delivery.message
        table = self.log.messages
        reply = smtp.SUSPENDED
        delivery.attempts += 1
        self.active -= 1
        self._record_active()
        for rcpt in delivery.recipients:
            row = message.rows[rcpt]
            table.attempts[row] += 1
            table.final_code[row] = reply.code
            table.final_enhanced_code[row] = reply.enhanced
            self.log.attempts.add(
                message.id,
                rcpt,
                self.name,
                "",
                None,
                now,
                math.nan,
                now,
                reply.code,
                reply.enhanced,
                "deferred",
            )
        self._defer(delivery, reply, delivery.domain)

    def _defer(self, delivery: Delivery, reply: smtp.Reply, destination: str) -> None:
        """Hand a failed delivery to the retry policy: hold it, or expire it.

        ``destination`` keys the policy's retry data (Exim keeps them per host).
        """
        now = self.env.now
        message = delivery.message
        if not message.retries:
            # spamware: fire and forget, never a second attempt and never a bounce
            table = self.log.messages
            for rcpt in delivery.recipients:
                table.settle(message.rows[rcpt], "expired", reply.code, reply.enhanced)
            return
        if delivery.first_failure is None:
            delivery.first_failure = now
        eligible = self.policy.after_failure(
            now=now,
            arrival=delivery.arrival,
            first_failure=delivery.first_failure,
            attempts=delivery.attempts,
            destination=destination,
            is_bounce=message.is_dsn,
        )
        if eligible is None:
            self._expire(delivery, reply)
            return
        warning = getattr(self.policy, "delay_warning", None)
        if (
            warning
            and not delivery.warned
            and not message.is_dsn
            and now - message.created_at >= warning
            and self.on_bounce is not None
        ):
            delivery.warned = True
            self.on_bounce(self, message, list(delivery.recipients), reply, "delayed")
        self._schedule(delivery, eligible)

    def _expire(self, delivery: Delivery, reply: smtp.Reply) -> None:
        message = delivery.message
        table = self.log.messages
        status = "dropped" if message.is_dsn else "expired"
        for rcpt in delivery.recipients:
            table.settle(message.rows[rcpt], status, reply.code, reply.enhanced)
        if not message.is_dsn and self.on_bounce is not None:
            self.on_bounce(self, message, list(delivery.recipients), reply, "expired")

    def _bounce(self, message: Message, recipients: list[str], reply: smtp.Reply) -> None:
        table = self.log.messages
        status = "dropped" if message.is_dsn else "bounced"
        for rcpt in recipients:
            table.settle(message.rows[rcpt], status, reply.code, reply.enhanced)
        if not message.is_dsn and message.retries and self.on_bounce is not None:
            self.on_bounce(self, message, recipients, reply, "failed")

    # ------------------------------------------------------------ levels
    def _record_active(self) -> None:
        self.log.levels.record(self.env.now, self._active_series, self.active)

    def _record_deferred(self) -> None:
        self.log.levels.record(self.env.now, self._deferred_series, self.deferred)
