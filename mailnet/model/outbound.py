"""The outbound MTA: queue manager, destination scheduler and SMTP client.

One ``OutboundMta`` per sending hop (a provider's outbound server, or a backup MX relaying
to its primary). Queued mail is plain ``Delivery`` records: the active queue is a FIFO
per destination, the deferred queue a heap of eligible times scanned by one queue-runner
process. Only a delivery in progress is a SimPy process.

The destination scheduler follows Postfix's qmgr (mail-facts.md §1): a concurrency window
per destination that starts at initial_destination_concurrency, grows by the positive
feedback per successful session up to destination_concurrency_limit, and shrinks by the
negative feedback per site-level failure (connection or greeting) to a floor of 1. Each
such failure adds 1/window to the failed pseudo-cohorts; once they reach the
failed_cohort_limit the destination is dead for minimal_backoff_time: its mail is deferred
without a connection ("delivery temporarily suspended"), then the window is reset.
Per-recipient 4xx and 5xx replies do not throttle.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from mailnet import smtp
from mailnet.model.dns import Resolver
from mailnet.model.inbound import MxServer
from mailnet.model.message import Delivery, Message, address_exists, domain_of
from mailnet.records import EventLog


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Connection limits of one MTA; defaults are Postfix's (mail-facts.md §1)."""

    max_connections: int = 100
    destination_concurrency_limit: int = 20
    initial_destination_concurrency: int = 5
    failed_cohort_limit: float = 1.0
    negative_feedback: float = 1.0
    positive_feedback: float = 1.0
    connect_timeout: float = 30.0
    mx_address_limit: int = 5
    dead_time: float = 300.0


class DestinationQueue:
    """Per-destination state of the scheduler: FIFO of ready mail and the window."""

    __slots__ = ("busy", "dead", "fail_cohorts", "name", "reason", "todo", "waiting", "window")

    def __init__(self, name: str, window: float):
        self.name = name
        self.todo: deque[Delivery] = deque()
        self.window = window
        self.busy = 0
        self.fail_cohorts = 0.0
        self.dead = False
        self.waiting = False
        # why the destination is (or was last) dead: its latest connection failure
        self.reason = smtp.SUSPENDED


BounceHook = Callable[["OutboundMta", Message, list[str], smtp.Reply, str], None]
"""``(mta, message, recipients, reply, kind)`` with kind ``failed`` or ``delayed``."""


class OutboundMta:
    """A sending MTA with its IP pool, queue, retry policy and destination scheduler.

    ``servers`` maps MX host names to servers; ``local_domains`` are delivered straight to
    ``deliver_local``; ``relay_below`` gives, per domain, the preference of this host's
    own MX record, so a backup MX only relays to more preferred hosts (RFC 5321 §5.1);
    ``nexthop`` sends every message to that one host instead of looking up MX records
    (a provider's smarthost, or an inbound relay's final server).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        ips: list[str],
        ip_selection: str,
        config: SchedulerConfig,
        policy,
        resolver: Resolver,
        servers: dict[str, MxServer],
        log: EventLog,
        rng: np.random.Generator,
        local_domains: set[str] | None = None,
        deliver_local: Callable[[Message, str, float], smtp.Reply] | None = None,
        relay_below: dict[str, int] | None = None,
        on_bounce: BounceHook | None = None,
        nexthop: str | None = None,
        asn: int | dict[str, int] = 0,
        assigner=None,
        warmup=None,
    ):
        self.env = env
        self.name = name
        self.ips = list(ips)
        self.ip_selection = ip_selection
        self.config = config
        self.policy = policy
        self.resolver = resolver
        self.servers = servers
        self.log = log
        self.rng = rng
        self.local_domains = local_domains or set()
        self.deliver_local = deliver_local
        self.relay_below = relay_below or {}
        self.on_bounce = on_bounce
        self.nexthop = nexthop
        self._asn = asn
        self.assigner = assigner
        self.warmup = warmup
        self._queues: dict[str, DestinationQueue] = {}
        self._waiting: deque[DestinationQueue] = deque()
        self._deferred: list[tuple[float, int, Delivery]] = []
        self._seq = 0
        self._rr = 0
        self.busy = 0
        self.active = 0
        self.deferred = 0
        self._active_series = log.levels.series_id("mta", name, "active")
        self._deferred_series = log.levels.series_id("mta", name, "deferred")
        self._changes_ip = bool(getattr(policy, "changes_source_ip", False))
        self._slack = float(getattr(policy, "scan_slack", 0.0))
        if policy.queue_run_interval is not None:
            env.process(self._queue_runner(float(policy.queue_run_interval)))

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
        dest = self._queues.get(delivery.domain)
        if dest is None:
            dest = DestinationQueue(delivery.domain, self.config.initial_destination_concurrency)
            self._queues[delivery.domain] = dest
        self.active += 1
        self._record_active()
        if dest.dead:
            self._suspend(delivery)
            return
        dest.todo.append(delivery)
        self._dispatch(dest)

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
        delivery.eligible = eligible
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

    # ------------------------------------------------------------ scheduling
    def _dispatch(self, dest: DestinationQueue) -> None:
        limit = self.config.max_connections
        while dest.todo and dest.busy < dest.window and not dest.dead:
            if self.busy >= limit:
                if not dest.waiting:
                    dest.waiting = True
                    self._waiting.append(dest)
                return
            delivery = dest.todo.popleft()
            dest.busy += 1
            self.busy += 1
            self.env.process(self._deliver(delivery, dest))

    def _release(self, dest: DestinationQueue) -> None:
        dest.busy -= 1
        self.busy -= 1
        self._dispatch(dest)
        waiting = self._waiting
        while waiting and self.busy < self.config.max_connections:
            other = waiting.popleft()
            other.waiting = False
            self._dispatch(other)

    def _throttle(self, dest: DestinationQueue) -> None:
        cfg = self.config
        dest.fail_cohorts += 1.0 / max(dest.window, 1.0)
        dest.window = max(1.0, dest.window - cfg.negative_feedback)
        if dest.fail_cohorts >= cfg.failed_cohort_limit and not dest.dead:
            dest.dead = True
            while dest.todo:
                self._suspend(dest.todo.popleft())
            revive = self.env.timeout(cfg.dead_time)
            revive.callbacks.append(lambda _event, d=dest: self._revive(d))

    def _revive(self, dest: DestinationQueue) -> None:
        dest.dead = False
        dest.window = self.config.initial_destination_concurrency
        dest.fail_cohorts = 0.0
        self._dispatch(dest)

    def _unthrottle(self, dest: DestinationQueue) -> None:
        cfg = self.config
        dest.fail_cohorts = 0.0
        if (
            dest.window < cfg.destination_concurrency_limit
            and dest.window < dest.busy + cfg.initial_destination_concurrency
        ):
            dest.window = min(
                cfg.destination_concurrency_limit, dest.window + cfg.positive_feedback
            )

    # ------------------------------------------------------------ one delivery attempt
    def asn_of(self, ip: str) -> int:
        asn = self._asn
        return asn.get(ip, 0) if isinstance(asn, dict) else asn

    def _pick_ip(self, delivery: Delivery) -> str | None:
        """The source address of this attempt, or ``None`` when warm-up caps forbid all."""
        if delivery.source_ip is not None and not self._changes_ip and self.assigner is None:
            ip = delivery.source_ip
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
            return self.assigner.pick(
                key, message.sender_class, self.env.now, attempt_index=delivery.attempts - 1
            )
        ips = self.ips
        if len(ips) == 1:
            return ips[0]
        if self.ip_selection == "sender-hash":
            return ips[zlib.crc32(message.sender.encode()) % len(ips)]
        if self.ip_selection == "random":
            return ips[int(self.rng.integers(len(ips)))]
        self._rr += 1
        return ips[(self._rr - 1) % len(ips)]

    def _deliver(self, delivery: Delivery, dest: DestinationQueue):
        """One delivery attempt: try MX hosts in order until one gives a session."""
        env = self.env
        message = delivery.message
        recipients = delivery.recipients
        delivery.attempts += 1
        ip = self._pick_ip(delivery)
        domain = delivery.domain
        result = None
        host = None
        started = env.now
        resolver = self.resolver
        if ip is None:
            site_reply, hosts = smtp.WARMUP_CAP, []
        elif self.nexthop is not None:
            site_reply, hosts = None, [self.nexthop]
        elif domain in resolver.null_mx:
            site_reply, hosts = smtp.NULL_MX, []
        elif not resolver.knows(domain):
            site_reply, hosts = smtp.DNS_NXDOMAIN, []
        else:
            site_reply = resolver.lookup_fault(domain)
            hosts = (
                []
                if site_reply is not None
                else resolver.mx_hosts(domain, below=self.relay_below.get(domain))
            )
            if site_reply is None and not hosts:
                # A relay with no more preferred host left: RFC 5321 §5.1, bounce.
                site_reply = smtp.Reply(554, "5.4.6", "mail for domain loops back to myself")
        for host in hosts[: self.config.mx_address_limit]:
            started = env.now
            result = yield from self.servers[host].session(
                message, recipients, self.config.connect_timeout, ip, self.asn_of(ip)
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
                if host is not None:
                    dest.reason = _suspension(host, self.servers[host].ip, site_reply)
                self._throttle(dest)
        else:
            replies = result.replies
            causes = result.causes
            session_at = result.session_at
            self._unthrottle(dest)
            self.policy.after_success(now=env.now, destination=host)
        self._settle_attempt(delivery, ip or "", host, started, session_at, replies, causes)
        self._release(dest)

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
                reply.text,
            )
            if not reply.ok:
                table.final_code[row] = reply.code
                table.final_enhanced_code[row] = reply.enhanced
                table.final_reply[row] = reply.text
                cause = causes[i] if causes else None
                if cause is not None and cause != "greylisting" and message.legitimate:
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
        dest = self._queues.get(delivery.domain)
        reply = smtp.SUSPENDED if dest is None else dest.reason
        delivery.attempts += 1
        self.active -= 1
        self._record_active()
        for rcpt in delivery.recipients:
            row = message.rows[rcpt]
            table.attempts[row] += 1
            table.final_code[row] = reply.code
            table.final_enhanced_code[row] = reply.enhanced
            table.final_reply[row] = reply.text
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
                reply.text,
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
                table.settle(message.rows[rcpt], "expired", reply.code, reply.enhanced, reply.text)
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
            table.settle(message.rows[rcpt], status, reply.code, reply.enhanced, reply.text)
        if not message.is_dsn and self.on_bounce is not None:
            self.on_bounce(self, message, list(delivery.recipients), reply, "expired")

    def _bounce(self, message: Message, recipients: list[str], reply: smtp.Reply) -> None:
        table = self.log.messages
        status = "dropped" if message.is_dsn else "bounced"
        for rcpt in recipients:
            table.settle(message.rows[rcpt], status, reply.code, reply.enhanced, reply.text)
        if not message.is_dsn and message.retries and self.on_bounce is not None:
            self.on_bounce(self, message, recipients, reply, "failed")

    # ------------------------------------------------------------ levels
    def _record_active(self) -> None:
        self.log.levels.record(self.env.now, self._active_series, self.active)

    def _record_deferred(self) -> None:
        self.log.levels.record(self.env.now, self._deferred_series, self.deferred)


def _suspension(host: str, ip: str, failure: smtp.Reply) -> smtp.Reply:
    """The deferral of mail for a destination that ``failure`` at ``host`` made dead, with
    Postfix's reason text (the failure as its SMTP client words it)."""
    if failure.code == 421 and failure.enhanced == "4.4.1":
        why = f"connect to {host}[{ip}]:25: {failure.text}"
    else:
        why = f"host {host}[{ip}] refused to talk to me: {failure}"
    text = f"delivery temporarily suspended: {why}"
    return smtp.Reply(smtp.SUSPENDED.code, smtp.SUSPENDED.enhanced, text)


def local_delivery(mailboxes, table) -> Callable[[Message, str, float], smtp.Reply]:
    """A ``deliver_local`` that stores into ``mailboxes`` or answers 550 5.1.1."""

    def deliver(message: Message, recipient: str, now: float) -> smtp.Reply:
        if not address_exists(recipient):
            return smtp.NO_SUCH_USER
        table.stored_by[message.rows[recipient]] = message.provider
        mailboxes.store(message.rows[recipient], recipient, domain_of(recipient), now)
        return smtp.OK

    return deliver
