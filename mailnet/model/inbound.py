"""Inbound SMTP servers (MX hosts): sessions, backlog, outages and replies.

An ``MxServer`` runs ``sessions`` SMTP sessions in parallel; further connections wait
FIFO in a backlog of ``backlog`` places and beyond it are refused (421 4.3.2). During an
outage a connection times out (after the client's smtp_connect_timeout) or is refused.
A session lasts one service time and answers each recipient: 250 for an existing
mailbox, 550 5.1.1 for an unknown one, 452 4.2.2 for a full one, 450 4.2.1 for one that
receives beyond its rate limit. What it accepts goes to ``accept``: the mailbox store for
a primary, the relay queue for a backup or relay.

A server with ``verify_recipients`` off (a backup's default) accepts unknown users too;
its queue then meets the primary's 550 and bounces them itself (mail-facts.md §11). A
domain's own MX hosts trust each other (``trusted``, from :func:`own_hosts`): a session
from one of them is neither blocklist-checked, reputation-checked nor greylisted, and
what it hands over is judged by the address that handed the mail to the domain's first
MX host (the external relay of the Received: chain), which that host noted on the
message.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from mailnet import smtp
from mailnet.model.message import Message, address_exists
from mailnet.model.receiver import Receiver
from mailnet.model.session_slots import SessionSlots
from mailnet.model.stepping import Step
from mailnet.policies.outages import OutageSchedule
from mailnet.policies.reputation import TokenBuckets
from mailnet.randomness import BlockDraws
from mailnet.recorders import LevelRecorder
from mailnet.scenario import Distribution, Scenario, Server

FIRST_BLOCK = 16
"""The size of a server's first block of service times: a world of 10,000 domains has
14,000 servers, most of which see a handful of sessions (blocks then double)."""
LAST_BLOCK = 64
"""The largest block of a server's service times: a block lives until used up, so 14,000
servers hold at most 29 MB of them however long the run (at 4096 values, 1.8 GB once
each had drawn that many). Per value, a block of 64 lognormal draws costs within 10 %
of one of 4096: the draws themselves dominate."""

Accept = Callable[[Message, list[str], float, str, str], None]
"""``accept(message, recipients, now, host, client_ip)``: take mail the MX accepted."""


def service_sampler(dist: Distribution, rng: np.random.Generator) -> Callable[[], float]:
    """A zero-argument function drawing service times (seconds) from ``dist``."""
    if dist.dist == "constant":
        value = float(dist.mean or 0.0)
        return lambda: value
    if dist.dist == "exponential":
        mean = float(dist.mean or 0.0)
        return BlockDraws(
            lambda n: rng.exponential(mean, n), size=LAST_BLOCK, first=FIRST_BLOCK
        ).next
    if dist.dist == "uniform":
        low, high = float(dist.low or 0.0), float(dist.high or 0.0)
        return BlockDraws(
            lambda n: rng.uniform(low, high, n), size=LAST_BLOCK, first=FIRST_BLOCK
        ).next
    mean, sd = float(dist.mean or 0.0), float(dist.sd or 0.0)
    sigma2 = math.log1p((sd / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2
    sigma = math.sqrt(sigma2)
    return BlockDraws(
        lambda n: rng.lognormal(mu, sigma, n), size=LAST_BLOCK, first=FIRST_BLOCK
    ).next


class SessionResult:
    """What one connection achieved: a site-level failure (``site_reply``), or a reply per
    recipient (``replies``, with their harm ``causes``); ``session_at`` is when the
    session began (seconds; NaN without one). A plain class, not a dataclass: compiled,
    it is built and read without Python-level calls (one per session)."""

    __slots__ = ("causes", "replies", "session_at", "site_reply")

    def __init__(
        self,
        site_reply: smtp.Reply | None,
        session_at: float,
        replies: list[smtp.Reply],
        causes: list[str | None] | None = None,
    ):
        self.site_reply = site_reply
        self.session_at = session_at
        self.replies = replies
        self.causes = causes


class MxServer:
    """One MX host (``[servers.NAME]``). ``accept`` receives what it takes; ``receiver``
    (optional) is the organisation whose policies it applies; ``mailbox_full`` (a
    primary's mailbox store) says whether a recipient's mailbox is full at a time."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: Server,
        *,
        service_time: Callable[[], float],
        outages: OutageSchedule,
        levels: LevelRecorder,
        rng: np.random.Generator,
        receiver: Receiver | None = None,
    ):
        self.env = env
        self.name = name
        self.ip = config.ip or ""
        self.connect_time = config.connect_time
        self.backlog = None if config.backlog == "unlimited" else config.backlog
        self.outages = outages
        self._service_time = service_time
        self._sessions = SessionSlots(env, config.sessions)
        self._record_level = levels.record  # bound once: a call per session change
        self._busy_series = levels.series_id("server", name, "sessions")
        self._backlog_series = levels.series_id("server", name, "backlog")
        self._recorded_busy = -1  # the levels last recorded (-1: none yet)
        self._recorded_backlog = -1
        self.accept: Accept | None = None
        self.receiver = receiver
        self._rng = rng
        # a primary's mailbox store: whether a recipient's mailbox is full at a time
        self.mailbox_full: Callable[[str, float], bool] | None = None
        self._rate = config.recipient_rate_limit
        self._burst = float(config.recipient_burst)
        self._buckets = None if self._rate is None else TokenBuckets(self._rate, self._burst)
        self._verify = config.verify_recipients
        self._notes_origin = config.role != "primary"
        self.trusted: frozenset[str] = frozenset()

    def set_sessions(self, sessions: int) -> None:
        """Run ``sessions`` sessions from now on (a change during the run): waiting
        connections take new places at once; with fewer, running sessions finish."""
        slots = self._sessions
        slots.capacity = sessions
        slots.grant_first()
        self._record()

    def session(
        self,
        message: Message,
        recipients: list[str],
        connect_timeout: float,
        client_ip: str = "",
        asn: int = 0,
    ) -> Step:
        """Generator for the client's attempt (:mod:`~mailnet.model.stepping`): connect,
        wait for a session, transact.

        Returns a ``SessionResult``; times are seconds of simulated time. A session whose
        every recipient is refused before DATA ends without the service time.
        """
        env = self.env
        yield self.connect_time
        outages = self.outages
        mode = outages.mode_at(env._now) if outages.windows else None
        if mode == "timeout":
            yield max(0.0, connect_timeout - self.connect_time)
            return SessionResult(smtp.CONNECT_TIMEOUT, math.nan, [])
        if mode == "refuse":
            return SessionResult(smtp.CONNECT_REFUSED, math.nan, [])
        sessions = self._sessions
        if (
            self.backlog is not None
            and sessions.count >= sessions.capacity
            and len(sessions.queue) >= self.backlog
        ):
            return SessionResult(smtp.BACKLOG_FULL, math.nan, [])
        grant = sessions.take()
        self._record()
        try:
            if grant is not None:  # else the slot is taken now, without an event
                yield grant
            session_at = env._now
            self._record()
            trusted = client_ip in self.trusted
            replies, causes = self._rcpt_replies(message, recipients, client_ip, asn, trusted)
            # by index, not zip(..., strict=True): compiled, a keyword argument to zip costs
            # a generic call (about 1,000 instructions) where the index loop is native
            accepted = [r for i, r in enumerate(recipients) if replies[i].ok]
            if accepted:
                yield self._service_time()
                if self.mailbox_full is not None or self._buckets is not None:
                    # Per-recipient state (full mailboxes, rate limits) is judged at DATA time.
                    replies = [
                        self._final_reply(r, replies[i]) if replies[i].ok else replies[i]
                        for i, r in enumerate(recipients)
                    ]
                    accepted = [r for i, r in enumerate(recipients) if replies[i].ok]
            if accepted and self.accept is not None:
                self._hand_over(message, accepted, client_ip, trusted)
            return SessionResult(None, session_at, replies, causes)
        finally:
            sessions.release()
            self._record()

    def _hand_over(
        self, message: Message, accepted: list[str], client_ip: str, trusted: bool
    ) -> None:
        """Pass accepted recipients to ``accept`` with the address their checks use: the
        client's, or for a trusted client the external relay noted by the first MX."""
        assert self.accept is not None
        now = self.env._now
        if not trusted:
            if self._notes_origin:
                for rcpt in accepted:
                    message.note_origin(rcpt, client_ip)
            self.accept(message, accepted, now, self.name, client_ip)
            return
        by_origin: dict[str, list[str]] = {}
        for rcpt in accepted:
            origin = message.origin(rcpt)
            by_origin.setdefault(client_ip if origin is None else origin, []).append(rcpt)
        for origin, rcpts in by_origin.items():
            self.accept(message, rcpts, now, self.name, origin)

    def _rcpt_replies(
        self, message: Message, recipients: list[str], client_ip: str, asn: int, trusted: bool
    ) -> tuple[list[smtp.Reply], list[str | None] | None]:
        """RCPT-stage replies: unknown users (when verified), then the receiver's client
        and triplet checks, which a trusted client skips; the harm cause of each reply
        (``None``: none has one)."""
        receiver = None if trusted else self.receiver
        verify = self._verify
        if receiver is None:  # no policy to consult: no causes either
            if not verify:
                return [smtp.OK] * len(recipients), None
            return [smtp.OK if address_exists(r) else smtp.NO_SUCH_USER for r in recipients], None
        now = self.env._now
        verdict = receiver.session_verdict(client_ip, asn, now, message)
        greylisting = receiver.greylist is not None
        replies: list[smtp.Reply] = []
        causes: list[str | None] = []
        for rcpt in recipients:
            if verify and not address_exists(rcpt):
                replies.append(smtp.NO_SUCH_USER)
                causes.append(None)
            elif verdict is not None:
                replies.append(verdict.reply)
                causes.append(verdict.cause)
            elif not greylisting:
                replies.append(smtp.OK)
                causes.append(None)
            else:
                grey = receiver.recipient_verdict(client_ip, message.sender, rcpt, now)
                replies.append(smtp.OK if grey is None else grey.reply)
                causes.append(None if grey is None else grey.cause)
        return replies, causes

    def _final_reply(self, recipient: str, reply: smtp.Reply) -> smtp.Reply:
        """The reply after DATA for a recipient accepted at RCPT: full or rate-limited."""
        now = self.env._now
        full = self.mailbox_full
        if full is not None and full(recipient, now):
            return smtp.MAILBOX_FULL
        if self._buckets is not None and not self._buckets.take(recipient, now):
            return smtp.RECIPIENT_RATE
        return reply

    def _record(self) -> None:
        """Record the sessions in use and the backlog, each where it changed (a series
        is a step function: a repeated level adds nothing to it)."""
        busy, waiting = self._sessions.count, len(self._sessions.queue)
        if busy != self._recorded_busy:
            self._recorded_busy = busy
            self._record_level(self.env._now, self._busy_series, busy)
        if waiting != self._recorded_backlog:
            self._recorded_backlog = waiting
            self._record_level(self.env._now, self._backlog_series, waiting)


def own_hosts(scenario: Scenario) -> dict[str, frozenset[str]]:
    """The addresses each server trusts: those of the other hosts of every domain it
    serves (the domain's MX hosts and the servers their relays pass mail to)."""
    servers = scenario.servers
    trusted: dict[str, set[str]] = {name: set() for name in servers}
    for name, domain in scenario.domains.items():
        hosts = [mx.host for mx in domain.mx] if domain.mx else [name]
        group = [h for h in hosts if h in servers]
        for host in group:  # a relay's final server joins the group (relay_to chains)
            target = servers[host].relay_to
            if target is not None and target not in group:
                group.append(target)
        ips = {servers[h].ip or "" for h in group} - {""}
        for host in group:
            trusted[host] |= ips - {servers[host].ip}
    return {name: frozenset(ips) for name, ips in trusted.items()}
