"""Receiving organisations and the blocklists they consult.

A ``Receiver`` holds one organisation's policies, shared by all of its MX hosts: the
DNSBLs it subscribes to and what it does with a listed client, its local reputation of
client addresses and of authenticated sending domains (with rate limiting, rejection and
the volume limit of new addresses), greylisting, and content filtering into inbox or spam
folder. ``BlocklistNetwork`` is every DNSBL of the world with the sensors that feed them:
spam-trap hits, user complaints and spam seen in transit, reported by every receiver.

The checks happen in a session in the order a Postfix receiver configures them: unknown
recipients first, then DNSBLs and reputation (once per session, for the client address
and the message's sending domain), then greylisting (per recipient).

Harm to legitimate mail is attributed as it happens: a refusal or misfiling that the bad
evidence *other* sender groups earned on the address, its network or its sending domain
would alone explain is collateral damage (its cause, e.g. ``reputation:domain``); one the
sender's own evidence explains is self-inflicted (the cause prefixed ``self:``); a new
address's volume limit and a filter's ordinary false positives are neither. Decisions are the pure policies of ``mailnet.policies``;
this module only connects them to the mail flow.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import simpy

from mailnet import smtp
from mailnet.model.message import Message, SenderClass, message_uniform, stream_key
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.filtering import ContentFilter
from mailnet.policies.greylisting import Greylist
from mailnet.policies.listings import empty_listings
from mailnet.policies.reputation import OTHERS, OWN, ReputationTable
from mailnet.records import SELF_PREFIX, ScoreLog
from mailnet.scenario import Receiver as ReceiverConfig
from mailnet.scenario import Scenario

_UNJUDGED = (1.0, 1.0, 1.0)
"""``ReputationTable.scores`` of a receiver that keeps no such reputation."""


class CollateralCause(StrEnum):
    """Why legitimate mail was refused or misfiled for what others sent from its address or
    network. A blocklist cause is written ``blocklist:NAME:SCOPE`` (:func:`blocklist_cause`)."""

    BLOCKLIST = "blocklist"
    REPUTATION = "reputation"
    FILTER = "filter"
    DOMAIN_REPUTATION = "reputation:domain"
    DOMAIN_FILTER = "filter:domain"


def harm_cause(cause: str, who: str | None) -> str | None:
    """The cause to record for a harm ``who`` earned (``reputation.blame``): ``cause`` for
    others' evidence (collateral), ``self:cause`` for the sender's own, ``None`` else."""
    if who == OTHERS:
        return cause
    if who == OWN:
        return SELF_PREFIX + cause
    return None


def blocklist_cause(name: str, scope: str) -> str:
    """The collateral cause of a refusal by blocklist ``name`` listing ``scope``."""
    return f"{CollateralCause.BLOCKLIST}:{name}:{scope}"


class BlocklistNetwork:
    """Every blocklist of the scenario; observations reach all of them.

    It also counts, per address, the list evidence each sender group earned there, so
    that a listing of an address can be blamed (``blame``).
    """

    def __init__(self, lists: dict[str, Blocklist]):
        self.lists = lists
        self._earned: dict[str, dict[str, int]] = {}

    def observe(self, kind: str, ip: str, asn: int, now: float, party: str | None = None) -> None:
        """A trap hit, complaint or sighting of spam from ``ip`` at ``now``, earned by
        sender group ``party`` (``None``: unknown)."""
        for blocklist in self.lists.values():
            blocklist.observe(kind, ip, asn, now)
        if self.lists:
            by_party = self._earned.setdefault(ip, {})
            key = party or ""
            by_party[key] = by_party.get(key, 0) + 1

    def blame(self, ip: str, scope: str, party: str) -> str:
        """Who earned a listing at ``scope`` that covers ``ip``, for mail of ``party``:
        ``OWN`` for an address listing when ``party`` earned at least half the list
        evidence reported from the address in the run (a model choice [U]: lists publish
        no per-event attribution), ``OTHERS`` otherwise, and always for a prefix or AS
        listing (the neighbours' addresses)."""
        if scope != "ip":
            return OTHERS
        by_party = self._earned.get(ip)
        if not by_party:
            return OTHERS
        return OWN if 2 * by_party.get(party, 0) >= sum(by_party.values()) else OTHERS

    def frame(self, now: float) -> pd.DataFrame:
        """``listings.parquet``: every listing period of every list."""
        frames = [b.records_frame(now) for b in self.lists.values()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty_listings()
        return pd.concat(frames, ignore_index=True)


@dataclass(slots=True)
class Verdict:
    """A policy reply with its harm cause (``harm_cause``): what the client's address,
    network or sending domain did (``blocklist:NAME:SCOPE``, ``reputation``,
    ``reputation:domain``) when other senders earned it, the same prefixed ``self:`` when
    the message's own sender group did, so that harm done to legitimate mail can be
    counted; ``None`` for a reply nobody earned (greylisting treats every new triplet
    alike; a new address's volume limit)."""

    reply: smtp.Reply
    cause: str | None


class Receiver:
    """One receiving organisation's policies (``[receivers.NAME]``).

    ``new_ips`` are addresses it has never seen before the run (a provider's warm-up
    addresses): little trust and a volume limit (``ReputationTable``). ``rng`` is the
    receiver's stream; its filter draws per message from a substream keyed by it.
    """

    def __init__(
        self,
        name: str,
        config: ReceiverConfig,
        network: BlocklistNetwork,
        rng: np.random.Generator,
        new_ips: tuple[str, ...] | frozenset[str] = (),
    ):
        self.name = name
        self.network = network
        self.subscriptions = [(network.lists[n], action) for n, action in config.blocklists.items()]
        self.scopes = tuple(config.blocklist_scopes)
        g, r, f = config.greylisting, config.reputation, config.filter
        self.greylist = None if g is None else Greylist.from_config(g)
        self.reputation = None if r is None else ReputationTable.from_config(r, new_ips)
        self.domains = None if r is None or not r.domain else ReputationTable.from_config(r)
        self.filter = None if f is None else ContentFilter.from_config(f, rng)
        self._filter_stream = stream_key(rng)

    def session_verdict(
        self, ip: str, asn: int, now: float, message: Message | None = None
    ) -> Verdict | None:
        """What the receiver says to client ``ip`` for this whole session (carrying
        ``message``), if not OK: blocklists, then the address's reputation, then the
        sending domain's."""
        party = None if message is None else message.group
        for blocklist, action in self.subscriptions:
            listing = blocklist.listed(ip, asn, now, scopes=self.scopes)
            if listing is not None:
                cause = blocklist_cause(blocklist.name, listing.scope)
                who = OTHERS if party is None else self.network.blame(ip, listing.scope, party)
                return Verdict(blocklist.reply(action, ip), harm_cause(cause, who))
        if self.reputation is not None:
            reply, earner = self.reputation.judge(ip, now, party)
            if reply is not None:
                return Verdict(reply, harm_cause(CollateralCause.REPUTATION, earner))
        if self.domains is not None and message is not None and message.domain:
            reply, earner = self.domains.judge(message.domain, now, party, client=ip)
            if reply is not None:
                return Verdict(reply, harm_cause(CollateralCause.DOMAIN_REPUTATION, earner))
        return None

    def recipient_verdict(self, ip: str, sender: str, recipient: str, now: float) -> Verdict | None:
        """Greylisting of one (client, sender, recipient) triplet."""
        if self.greylist is None:
            return None
        reply = self.greylist.check(ip, sender, recipient, now)
        return None if reply is None else Verdict(reply, None)

    def score(self, ip: str, now: float) -> float:
        """The client's reputation score in [0, 1] (1 when the receiver keeps none)."""
        return 1.0 if self.reputation is None else self.reputation.score(ip, now)

    def file(self, message: Message, recipient: str, ip: str, now: float) -> tuple[str, str | None]:
        """Inbox or spam folder for ``recipient``'s copy of ``message`` from ``ip``, and
        the harm cause to record when it is ham misfiled for a reputation (``harm_cause``).

        The filter sees the worse of the address's and the sending domain's scores and
        draws from the message's own substream. The receiver learns from what it filed:
        spam filed as spam is evidence its sender group earned, ham filed as spam is the
        filter's own error.
        """
        is_spam = message.sender_class == SenderClass.SPAM
        domain = message.domain if self.domains is not None else ""
        cause = None
        if self.filter is None:
            folder = "inbox"
        else:
            u = message_uniform(self._filter_stream, message, message.index(recipient))
            reputation = self.reputation
            score = 1.0 if reputation is None else reputation.score(ip, now)
            by_domain = False
            if domain:
                domain_score = self.domains.score(domain, now)  # type: ignore[union-attr]
                by_domain = domain_score < score
                score = min(score, domain_score)
            folder = self.filter.place(is_spam, score, u)
            if folder == "spam" and not is_spam:
                cause = self._misfiled(u, message, ip, now, by_domain)
        self.observe("spam" if folder == "spam" else "ham", ip, now, message, earned=is_spam)
        return folder, cause

    def _misfiled(
        self, u: float, message: Message, ip: str, now: float, by_domain: bool
    ) -> str | None:
        """The harm cause of ham filed as spam with the uniform ``u``."""
        assert self.filter is not None
        party = message.group
        ips = _UNJUDGED if self.reputation is None else self.reputation.scores(ip, now, party)
        doms = (
            self.domains.scores(message.domain, now, party)
            if self.domains is not None and message.domain
            else _UNJUDGED
        )
        who = self.filter.blame(
            u, (min(ips[0], doms[0]), min(ips[1], doms[1]), min(ips[2], doms[2]))
        )
        cause = CollateralCause.DOMAIN_FILTER if by_domain else CollateralCause.FILTER
        return harm_cause(cause, who)

    def observe(
        self,
        kind: str,
        ip: str,
        now: float,
        message: Message | None = None,
        *,
        earned: bool = True,
    ) -> None:
        """Evidence (ham, spam, trap, complaint) about client ``ip`` and, given
        ``message``, about its sending domain, credited to its sender group."""
        party = None if message is None else message.group
        if self.reputation is not None:
            self.reputation.observe(kind, ip, now, party=party, earned=earned)
        if self.domains is not None and message is not None and message.domain:
            self.domains.observe(kind, message.domain, now, party=party, earned=earned)


def sending_domains(scenario: Scenario) -> list[str]:
    """Every authenticated sending domain of the scenario's sender groups, sorted: a
    group's own ``domain``, else its provider's first local domain (the domain of its
    envelope senders, whose reputation the provider's customers share)."""
    return sorted(
        {
            group.domain or scenario.providers[group.provider].local_domains[0]
            for group in scenario.senders.values()
        }
    )


def sample_scores(
    env: simpy.Environment,
    receivers: list[Receiver],
    ips: list[str],
    domains: list[str],
    *,
    scores: ScoreLog,
    interval: float,
) -> Generator[simpy.Event, Any, None]:
    """Process: record every receiver's score for every address in ``ips`` and, at a
    receiver that keeps domain reputation, for every sending domain in ``domains``, from
    t=0 every ``interval`` seconds (the reputation table of a run)."""
    while True:
        now = env.now
        for receiver in receivers:
            name = receiver.name
            for ip in ips:
                scores.record(now, name, "ip", ip, receiver.score(ip, now))
            table = receiver.domains
            if table is not None:
                for domain in domains:
                    scores.record(now, name, "domain", domain, table.score(domain, now))
        yield env.timeout(interval)
