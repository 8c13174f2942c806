"""The outbound MTA: queue manager and SMTP client of one sending hop.

One ``OutboundMta`` per sending hop (a provider's outbound server, or a backup MX or
relay passing mail on). Queued mail is plain ``Delivery`` records: the active queue is a
FIFO per destination kept by the :class:`~mailnet.model.destinations.DestinationScheduler`
(Postfix's concurrency windows and dead destinations), the deferred queue a
:class:`~mailnet.model.deferred.DeferredQueue`. Only a delivery in progress is stepped
on the event list (:mod:`~mailnet.model.stepping`). Which hosts an attempt tries comes from :func:`~mailnet.model.routing.mx_route`,
which address it leaves from from :class:`~mailnet.model.sources.SourceAddresses`. The
SMTP client is the retry preset's own (``policy.client()``): its connect timeout, host
limits, concurrency and per-host memory (:mod:`~mailnet.model.host_status`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
import simpy

from mailnet import smtp
from mailnet.message_table import MessageTable
from mailnet.model import stepping
from mailnet.model.deferred import DeferredQueue, ScanClocks
from mailnet.model.destinations import Destination
from mailnet.model.dns import Resolver
from mailnet.model.hop_client import HopClient
from mailnet.model.host_status import HostMemory
from mailnet.model.inbound import MxServer, SessionResult
from mailnet.model.message import Delivery, Message
from mailnet.model.passes import ActivePasses
from mailnet.model.routing import mx_route
from mailnet.model.sources import SourceAddresses
from mailnet.model.stepping import Step
from mailnet.policies.outbound_controls import SenderStats
from mailnet.policies.retry import PolicyBase, RetryPolicy
from mailnet.records import EventLog
from mailnet.scenario import Provider, Server

BounceHook = Callable[["OutboundMta", Message, list[str], smtp.Reply, str], None]
"""``(mta, message, recipients, reply, kind)`` with kind ``failed``, ``delayed`` or
``expired``."""

LocalDelivery = Callable[[Message, str, float], smtp.Reply]
"""``deliver(message, recipient, now)``: store into a local mailbox; the reply says how."""


class OutboundMta:
    """A sending MTA with its IP pool, queue, retry policy and destination scheduler.

    Build one with :meth:`for_provider` or :meth:`for_relay`. ``servers`` maps MX host
    names to servers; ``local_domains`` are delivered straight to ``deliver_local``;
    ``relay_below`` gives, per domain, the preference of this host's own MX record, so a
    backup MX only relays to more preferred hosts (RFC 5321 §5.1); ``nexthop`` sends
    every message to that one host instead of looking up MX records (a provider's
    smarthost, or an inbound relay's final server). ``client`` is the hop's SMTP client
    (:class:`~mailnet.model.hop_client.HopClient`: scheduler, connect timeout, host and
    session limits, memory of failing hosts); a relay bounces a copy that reaches
    ``hopcount_limit`` hops.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        *,
        sources: SourceAddresses,
        client: HopClient,
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        local_domains: set[str] | None = None,
        deliver_local: LocalDelivery | None = None,
        relay_below: dict[str, int] | None = None,
        on_bounce: BounceHook | None = None,
        nexthop: str | None = None,
        asn: int = 0,
        hopcount_limit: int | None = None,
        scans: ScanClocks,
    ):
        self.env = env
        self._schedule: stepping.Schedule = env.schedule  # type: ignore[assignment]  # bound once
        self.name = name
        self.sources = sources
        self.ips = sources.ips
        self.scheduler = client.scheduler(self._start)
        self.policy = policy
        self.resolver = resolver
        self.servers = servers
        # bound once: the log is an interpreted object, read by name on every attempt
        self._messages: MessageTable = log.messages
        self._add_attempt = log.attempts.add
        # a summary-only log drops the connection keys of a message of several recipients
        # at this MTA once none of its deliveries here is in a session (``closed``); it
        # needs to be told, since two of them can share a key. The deliveries of each such
        # message in a session here, counted only for a log that asks
        self._closed: Callable[[int, str, float], None] | None = getattr(
            log.attempts, "closed", None
        )
        self._in_session: dict[int, int] = {}
        self.connect_timeout = client.connect_timeout
        self.mx_address_limit = client.mx_address_limit
        sessions = client.mx_session_limit
        self.mx_session_limit = math.inf if sessions is None else sessions
        self.memory = client.memory
        self.split_recipients = client.split_recipients
        self._waits = policy.client().waits_for_hosts
        self.local_domains = local_domains or set()
        self.deliver_local = deliver_local
        self.relay_below = relay_below or {}
        self.on_bounce = on_bounce
        self.nexthop = nexthop
        self.asn = asn
        self.hopcount_limit = hopcount_limit
        self.active = 0
        self.passes = ActivePasses(self._report_bounces)
        self._active_series = log.levels.series_id("mta", name, "active")
        self._record_level = log.levels.record
        # Postfix and most presets keep no per-destination retry data: nothing to tell them
        noop = getattr(type(policy), "after_success", None) is PolicyBase.after_success
        self._after_success = None if noop else policy.after_success
        self._changes_ip = bool(getattr(policy, "changes_source_ip", False))
        interval = policy.queue_run_interval
        self.deferred = DeferredQueue(
            env,
            self._activate,
            log.levels,
            log.levels.series_id("mta", name, "deferred"),
            interval=None if interval is None else float(interval),
            slack=float(getattr(policy, "scan_slack", 0.0)),
            clocks=scans,
        )

    @classmethod
    def for_provider(
        cls,
        env: simpy.Environment,
        name: str,
        config: Provider,
        *,
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        stats: SenderStats | None,
        deliver_local: LocalDelivery,
        on_bounce: BounceHook,
        scans: ScanClocks,
    ) -> OutboundMta:
        """A provider's outbound MTA (``[providers.NAME]``). ``rng`` draws source
        addresses; ``stats`` are the per-sender counts its pools may read; its own
        domains are delivered by ``deliver_local``. The client is the policy's, with the
        client keys the provider sets over it."""
        return cls(
            env,
            name,
            sources=SourceAddresses.for_provider(config, rng, stats),
            client=HopClient.for_provider(config, policy),
            policy=policy,
            resolver=resolver,
            servers=servers,
            log=log,
            local_domains=set(config.local_domains),
            deliver_local=deliver_local,
            on_bounce=on_bounce,
            nexthop=config.relay_host,
            asn=config.asn,
            scans=scans,
        )

    @classmethod
    def for_relay(
        cls,
        env: simpy.Environment,
        name: str,
        config: Server,
        *,
        policy: RetryPolicy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        on_bounce: BounceHook | None = None,
        scans: ScanClocks,
    ) -> OutboundMta:
        """The queue of a backup MX or relay server (``[servers.NAME]``): it sends from
        its own address with its own preset's client; ``max_connections``, when the
        server sets it, wins over the client's total."""
        below = resolver.preferences(name) if config.role == "backup" else {}
        return cls(
            env,
            name,
            sources=SourceAddresses([config.ip or ""], "round-robin", rng),
            client=HopClient.for_relay(config, policy),
            policy=policy,
            resolver=resolver,
            servers=servers,
            log=log,
            relay_below=below,
            on_bounce=on_bounce,
            nexthop=config.relay_to,
            hopcount_limit=config.hopcount_limit,
            scans=scans,
        )

    # ------------------------------------------------------------ entering the queue
    def submit(self, message: Message, recipients: list[str]) -> None:
        """Queue a message (or relay it): local recipients are delivered at once. This
        is the message's first pass through the active queue."""
        now = self.env._now
        passes = self.passes
        passes.open(message)
        if len(recipients) == 1:  # most mail: no grouping to do
            rcpt = recipients[0]
            # domain_of, inlined and interned: a queued delivery keeps its domain
            by_domain = {sys.intern(rcpt.rpartition("@")[2]): [rcpt]}
        else:
            by_domain = {}
            for rcpt in recipients:
                by_domain.setdefault(sys.intern(rcpt.rpartition("@")[2]), []).append(rcpt)
        local, activate = self.local_domains, self._activate
        for domain, rcpts in by_domain.items():
            if domain in local and self.deliver_local is not None:
                for rcpt in rcpts:
                    reply = self.deliver_local(message, rcpt, now)
                    if reply.permanent:
                        self._bounce(message, [rcpt], reply)
                continue
            if self.split_recipients:
                for rcpt in rcpts:
                    activate(Delivery(message, domain, [rcpt], now))
                continue
            activate(Delivery(message, domain, rcpts, now))
        passes.close(message)

    def accept(
        self, message: Message, recipients: list[str], now: float, host: str, client_ip: str
    ) -> None:
        """Take mail the MX host of this relay accepted (an ``MxServer.accept``); a copy
        at ``hopcount_limit`` hops is bounced (5.4.0), so that no loop runs forever."""
        limit = self.hopcount_limit
        self.passes.open(message)  # a copy bounced here is reported with the pass
        if limit is not None:
            over = [r for r in recipients if message.add_hop(r) >= limit]
            if over:
                self._bounce(message, over, smtp.TOO_MANY_HOPS)
                recipients = [r for r in recipients if r not in over]
        if recipients:
            self.submit(message, recipients)
        self.passes.close(message)

    def _activate(self, delivery: Delivery) -> None:
        self.passes.open(delivery.message)
        self.active += 1
        self._record_level(self.env._now, self._active_series, self.active)
        if not self.scheduler.offer(delivery):
            self._suspend(delivery)

    def _start(self, delivery: Delivery, dest: Destination) -> None:
        stepping.launch(self._schedule, self._deliver(delivery, dest))

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
        revive.callbacks.append(lambda _event: scheduler.revive(dest))

    # ------------------------------------------------------------ one delivery attempt
    def _deliver(self, delivery: Delivery, dest: Destination) -> Step:
        """One delivery attempt: MX hosts in order, recipients with a 4xx moving on.

        As Postfix's smtp_connect_inet (``smtp_connect.c``): at most ``mx_address_limit``
        hosts and ``mx_session_limit`` sessions; a failed connection counts against the
        first limit only. The host that reaches either limit, or the last one, is the
        final host. At a host that is not final, a recipient answered 4xx is kept for the
        next host in this same delivery (``smtp_trouble.c``, smtp_rcpt_fail); 2xx and 5xx
        are final anywhere. Each session records its own attempt rows, and so does a
        failed connection to a host that is not the final one (``passed_on``, no
        session): the mail log needs its host and its time. A host the
        client's memory holds is skipped without a connection and counts against no
        limit; when every host is held, :meth:`_skip` settles the attempt.
        """
        env = self.env
        domain = delivery.domain
        delivery.attempts += 1
        started = env._now
        ip = self.sources.pick(delivery, started, self._changes_ip)
        source = ip or ""
        site_reply: smtp.Reply | None
        hosts: list[str]
        if ip is None:
            site_reply, hosts = smtp.WARMUP_CAP, []
        else:
            site_reply, hosts = mx_route(
                self.resolver, domain, self.nexthop, self.relay_below.get(domain)
            )
        memory = self.memory
        if memory is not None and hosts:
            hosts, held = self._unheld(domain, hosts)
            if not hosts:
                self._skip(delivery, dest, source, held)
                return
        limit = self.mx_address_limit
        if limit is not None and len(hosts) > limit:
            hosts = hosts[:limit]
        last = len(hosts) - 1
        servers, timeout, asn = self.servers, self.connect_timeout, self.asn
        message = delivery.message
        tracked = self._enter(message)
        sessions = 0
        host = None
        # declared: a session's generator returns Any, and compiled code reads the fields
        # of an Any by name (a generic lookup each) but of a SessionResult as C fields
        result: SessionResult | None = None
        for i, host in enumerate(hosts):
            started = env._now
            result = yield from servers[host].session(
                message, delivery.recipients, timeout, source, asn
            )
            assert result is not None
            site_reply = result.site_reply
            if memory is not None:
                self._remember(memory, domain, host, site_reply)
            if site_reply is not None:
                if i < last:
                    # the recipients go on to the next host: rows of their own, so that
                    # the time spent here is on record
                    self._settle_attempt(
                        delivery,
                        source,
                        host,
                        (started, math.nan),
                        replies=[site_reply] * len(delivery.recipients),
                        causes=None,
                        keep=True,
                    )
                continue  # a failed connection is no session (smtp_connect.c)
            sessions += 1
            if i == last or sessions >= self.mx_session_limit:
                break  # the final host
            if not any(reply.transient for reply in result.replies):
                break
            if sessions == 1:
                self.scheduler.succeeded(dest)
            self._settle_attempt(
                delivery,
                source,
                host,
                (started, result.session_at),
                replies=result.replies,
                causes=result.causes,
                keep=True,
            )
            if self._after_success is not None:
                self._after_success(now=env._now, destination=host)
        if memory is not None and sessions == 0 and host is not None and site_reply is not None:
            memory.delivery_failed(domain, env._now, site_reply)
        self.active -= 1
        self._record_level(env._now, self._active_series, self.active)
        self._finish(
            delivery,
            dest,
            (source, host, started),
            sessions=sessions,
            failure=site_reply,
            result=result,
        )
        if tracked:
            self._leave(message.id)
        self.scheduler.done(dest)
        self.passes.close(message)
        yield stepping.DONE

    def _enter(self, message: Message) -> bool:
        """A delivery of ``message`` starts its sessions here: count it if the log asks
        and the message has several recipients (whether it was counted)."""
        if self._closed is None or message.rows is None:
            return False
        self._in_session[message.id] = self._in_session.get(message.id, 0) + 1
        return True

    def _leave(self, message_id: int) -> None:
        """A delivery of a message of several recipients has settled its last attempt
        here: with none of its others in a session, tell the log."""
        left = self._in_session[message_id] - 1
        if left:
            self._in_session[message_id] = left
            return
        del self._in_session[message_id]
        assert self._closed is not None
        self._closed(message_id, self.name, self.env._now)

    def _unheld(self, domain: str, hosts: list[str]) -> tuple[list[str], tuple[str, float]]:
        """The hosts the memory lets this attempt try, and the last held host with the
        earliest time a held host comes free."""
        assert self.memory is not None
        now = self.env._now
        usable: list[str] = []
        held, release = hosts[-1], math.inf
        for host in hosts:
            until = self.memory.held_until(domain, host, self.servers[host].ip, now)
            if until is None:
                usable.append(host)
            else:
                held, release = host, min(release, until)
        return usable, (held, release)

    def _remember(
        self, memory: HostMemory, domain: str, host: str, failure: smtp.Reply | None
    ) -> None:
        ip = self.servers[host].ip
        if failure is None:
            memory.succeeded(domain, host, ip)
        else:
            memory.failed(domain, host, ip, self.env._now, failure)

    def _skip(
        self, delivery: Delivery, dest: Destination, source: str, held: tuple[str, float]
    ) -> None:
        """Settle an attempt whose every host is held: ``skipped`` rows, no connection.
        Exim and Exchange keep the mail until a host comes free (or it is older than the
        policy's lifetime); qmail and Sendmail count it as a failed attempt of the
        message."""
        assert self.memory is not None
        now = self.env._now
        host, release = held
        self.active -= 1
        self._record_active()
        reply = self.memory.skip_reply(delivery.domain, host)
        replies = [reply] * len(delivery.recipients)
        self._settle_attempt(
            delivery,
            source,
            None,
            (now, math.nan),
            replies=replies,
            causes=None,
            keep=True,
            skipped=True,
        )
        if not self._waits or not delivery.message.retries:
            self._defer(delivery, reply, delivery.domain)
        elif now - delivery.arrival >= self.policy.lifetime:
            self._expire(delivery, reply)
        else:
            self.deferred.hold(delivery, release)
        self.scheduler.done(dest)
        self.passes.close(delivery.message)

    def _finish(
        self,
        delivery: Delivery,
        dest: Destination,
        where: tuple[str, str | None, float],
        *,
        sessions: int,
        failure: smtp.Reply | None,
        result: SessionResult | None,
    ) -> None:
        """Settle the rest of a delivery at its final host. ``where``: source address,
        final host and the start of its connection; ``sessions`` held in this delivery;
        ``failure`` the final host's failure (or ``result`` its session)."""
        source, host, started = where
        site_reply = failure
        if site_reply is None:
            assert result is not None  # the final session
            assert host is not None
            if sessions == 1:
                self.scheduler.succeeded(dest)
            if self._after_success is not None:
                self._after_success(now=self.env._now, destination=host)
            replies, causes, session_at = result.replies, result.causes, result.session_at
        else:
            # no host left: the rest get the last failure, which throttles the destination
            # unless a session was held in this delivery
            if sessions == 0 and site_reply.transient and site_reply is not smtp.WARMUP_CAP:
                if host is not None:
                    dest.reason = _suspension(host, self.servers[host].ip, site_reply)
                self._site_failure(dest)
            replies, causes, session_at = [site_reply] * len(delivery.recipients), None, math.nan
        self._settle_attempt(
            delivery, source, host, (started, session_at), replies=replies, causes=causes
        )

    def _settle_attempt(
        self,
        delivery: Delivery,
        ip: str,
        host: str | None,
        times: tuple[float, float],
        *,
        replies: list[smtp.Reply],
        causes: list[str | None] | None,
        keep: bool = False,
        skipped: bool = False,
        suspended: bool = False,
    ) -> None:
        """Record one attempt per recipient and settle each: sent, bounced or deferred.
        ``times`` are the attempt's start and the session's start (NaN without one).
        ``keep``: the host is not the final one, so the recipients answered 4xx stay in
        ``delivery`` for the next host instead of being deferred (their rows say
        ``passed_on``, with this host's reply: no deferral). ``skipped``: no host was tried, a
        transient reply's rows say ``skipped``. ``suspended``: deferred without a
        connection (outcome ``suspended``). Neither is counted in the row's ``attempts``."""
        started, session_at = times
        message = delivery.message
        message_id, name = message.id, self.name
        table = self._messages
        add = self._add_attempt
        counts = None if suspended or skipped else table.attempts
        now = self.env._now
        deferred: list[str] = []
        bounced: list[str] = []
        last_transient = None
        last_permanent = None
        for i, rcpt in enumerate(delivery.recipients):  # by index: see MxServer.session
            reply = replies[i]
            row = message.row_of(rcpt)
            if counts is not None:  # no connection: not an attempt on the receiver
                counts[row] += 1
            code = reply.code
            ok = 200 <= code < 300  # reply.ok, inlined: once per recipient
            if ok:
                outcome = "sent"
            elif 400 <= code < 500:  # reply.transient
                if skipped:
                    outcome = "skipped"
                elif suspended:
                    outcome = "suspended"
                else:
                    outcome = "passed_on" if keep else "deferred"
                deferred.append(rcpt)
                last_transient = reply
            else:
                outcome = "bounced"
                bounced.append(rcpt)
                last_permanent = reply
            add(
                message_id,
                rcpt,
                name,
                ip,
                host,
                started,
                session_at,
                now,
                code,
                reply.enhanced,
                outcome,
                reply.text,
            )
            if not ok:
                table.final_code[row] = reply.code
                table.final_enhanced_code[row] = reply.enhanced
                table.final_reply[row] = reply.text
                # a refusal for what others did from this address or network
                cause = causes[i] if causes else None
                if cause is not None and message.legitimate:
                    table.mark_collateral(row, cause)
        if last_permanent is not None:
            self._bounce(message, bounced, last_permanent)
        if last_transient is not None:
            delivery.recipients = deferred
            if not keep:
                self._defer(delivery, last_transient, host or delivery.domain)

    def _suspend(self, delivery: Delivery) -> None:
        """Defer without a connection: the destination is dead."""
        now = self.env._now
        delivery.attempts += 1
        self.active -= 1
        self._record_active()
        # the deferral names the failure that made the destination dead, as Postfix does
        reason = self.scheduler.destination(delivery.domain).reason
        replies = [reason] * len(delivery.recipients)
        self._settle_attempt(
            delivery, "", None, (now, math.nan), replies=replies, causes=None, suspended=True
        )
        self.passes.close(delivery.message)

    def _defer(self, delivery: Delivery, reply: smtp.Reply, destination: str) -> None:
        """Hand a failed delivery to the retry policy: hold it, or expire it.

        ``destination`` keys the policy's retry data (Exim keeps them per host).
        """
        now = self.env._now
        message = delivery.message
        if not message.retries:
            # spamware: fire and forget, never a second attempt and never a bounce
            table = self._messages
            for rcpt in delivery.recipients:
                table.settle(
                    message.row_of(rcpt), "expired", reply.code, reply.enhanced, reply.text
                )
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
            and now - delivery.arrival >= warning
            and self.on_bounce is not None
        ):
            delivery.warned = True
            self.on_bounce(self, message, list(delivery.recipients), reply, "delayed")
        self.deferred.hold(delivery, eligible)

    def _expire(self, delivery: Delivery, reply: smtp.Reply) -> None:
        message = delivery.message
        table = self._messages
        status = "dropped" if message.is_dsn else "expired"
        for rcpt in delivery.recipients:
            table.settle(message.row_of(rcpt), status, reply.code, reply.enhanced, reply.text)
        if not message.is_dsn and self.on_bounce is not None:
            self.on_bounce(self, message, list(delivery.recipients), reply, "expired")

    def _bounce(self, message: Message, recipients: list[str], reply: smtp.Reply) -> None:
        """Settle ``recipients`` as bounced; the message's pass reports them when it ends."""
        table = self._messages
        status = "dropped" if message.is_dsn else "bounced"
        for rcpt in recipients:
            table.settle(message.row_of(rcpt), status, reply.code, reply.enhanced, reply.text)
        self.passes.bounced(message, recipients, reply)

    def _report_bounces(self, message: Message, recipients: list[str], reply: smtp.Reply) -> None:
        """The end of a pass in which ``recipients`` bounced: one notification."""
        if self.on_bounce is not None:
            self.on_bounce(self, message, recipients, reply, "failed")

    # ------------------------------------------------------------ levels
    def _record_active(self) -> None:
        self._record_level(self.env._now, self._active_series, self.active)


def _suspension(host: str, ip: str, failure: smtp.Reply) -> smtp.Reply:
    """The deferral of mail for a destination that ``failure`` at ``host`` made dead, with
    Postfix's reason text (the failure as its SMTP client words it)."""
    if failure.code == 421 and failure.enhanced == "4.4.1":
        why = f"connect to {host}[{ip}]:25: {failure.text}"
    else:
        why = f"host {host}[{ip}] refused to talk to me: {failure}"
    text = f"delivery temporarily suspended: {why}"
    return smtp.Reply(smtp.SUSPENDED.code, smtp.SUSPENDED.enhanced, text)
