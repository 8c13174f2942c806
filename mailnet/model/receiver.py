"""Receiving organisations and the blocklists they consult.

A ``Receiver`` holds one organisation's policies, shared by all of its MX hosts: the
DNSBLs it subscribes to and what it does with a listed client, its local IP reputation
(with rate limiting and rejection), greylisting, and content filtering into inbox or spam
folder. ``BlocklistNetwork`` is every DNSBL of the world with the sensors that feed them:
spam-trap hits, user complaints and spam seen in transit, reported by every receiver.

The checks happen in a session in the order a Postfix receiver configures them: unknown
recipients first, then DNSBLs and reputation (once per session, for the client address),
then greylisting (per recipient). Decisions are the pure policies of ``mailnet.policies``;
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
from mailnet.policies.blocklists import Blocklist
from mailnet.policies.filtering import ContentFilter
from mailnet.policies.greylisting import Greylist
from mailnet.policies.listings import empty_listings
from mailnet.policies.reputation import ReputationTable
from mailnet.records import ScoreLog
from mailnet.scenario import Receiver as ReceiverConfig


class CollateralCause(StrEnum):
    """Why legitimate mail was refused or misfiled for what others sent from its address or
    network. A blocklist cause is written ``blocklist:NAME:SCOPE`` (:func:`blocklist_cause`)."""

    BLOCKLIST = "blocklist"
    REPUTATION = "reputation"
    FILTER = "filter"


def blocklist_cause(name: str, scope: str) -> str:
    """The collateral cause of a refusal by blocklist ``name`` listing ``scope``."""
    return f"{CollateralCause.BLOCKLIST}:{name}:{scope}"


class BlocklistNetwork:
    """Every blocklist of the scenario; observations reach all of them."""

    def __init__(self, lists: dict[str, Blocklist]):
        self.lists = lists

    def observe(self, kind: str, ip: str, asn: int, now: float) -> None:
        """A trap hit, complaint or sighting of spam from ``ip`` at ``now``."""
        for blocklist in self.lists.values():
            blocklist.observe(kind, ip, asn, now)

    def frame(self, now: float) -> pd.DataFrame:
        """``listings.parquet``: every listing period of every list."""
        frames = [b.records_frame(now) for b in self.lists.values()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty_listings()
        return pd.concat(frames, ignore_index=True)


@dataclass(slots=True)
class Verdict:
    """A policy reply with its collateral cause: what the client's address or network did
    (``blocklist:NAME:SCOPE``, ``reputation``), so that damage done to legitimate mail by
    other senders can be counted; ``None`` for a reply that does not depend on them
    (greylisting treats every new triplet alike)."""

    reply: smtp.Reply
    cause: str | None


class Receiver:
    """One receiving organisation's policies (``[receivers.NAME]``)."""

    def __init__(
        self, name: str, config: ReceiverConfig, network: BlocklistNetwork, rng: np.random.Generator
    ):
        self.name = name
        self.network = network
        self.subscriptions = [(network.lists[n], action) for n, action in config.blocklists.items()]
        self.scopes = tuple(config.blocklist_scopes)
        g, r, f = config.greylisting, config.reputation, config.filter
        self.greylist = None if g is None else Greylist.from_config(g)
        self.reputation = None if r is None else ReputationTable.from_config(r)
        self.filter = None if f is None else ContentFilter.from_config(f, rng)

    def session_verdict(self, ip: str, asn: int, now: float) -> Verdict | None:
        """What the receiver says to client ``ip`` for this whole session, if not OK."""
        for blocklist, action in self.subscriptions:
            listing = blocklist.listed(ip, asn, now, scopes=self.scopes)
            if listing is not None:
                return Verdict(
                    blocklist.reply(action, ip), blocklist_cause(blocklist.name, listing.scope)
                )
        if self.reputation is not None:
            reply = self.reputation.decide(ip, now)
            if reply is not None:
                return Verdict(reply, CollateralCause.REPUTATION)
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

    def file(self, is_spam: bool, ip: str, now: float) -> tuple[str, bool]:
        """Inbox or spam folder for one accepted message, and whether the placement is
        due to the client's reputation (a misfiled ham message that a perfect score would
        have put in the inbox). The receiver learns from what it filed."""
        if self.filter is None:
            folder, by_score = "inbox", False
        else:
            folder, by_score = self.filter.place(is_spam, self.score(ip, now))
        self.observe("spam" if folder == "spam" else "ham", ip, now)
        return folder, by_score

    def observe(self, kind: str, ip: str, now: float) -> None:
        """Evidence about client ``ip`` (ham, spam, trap, complaint) for its reputation."""
        if self.reputation is not None:
            self.reputation.observe(kind, ip, now)


def sample_scores(
    env: simpy.Environment,
    receivers: list[Receiver],
    ips: list[str],
    scores: ScoreLog,
    interval: float,
) -> Generator[simpy.Event, Any, None]:
    """Process: record every receiver's score for every address in ``ips``, from t=0 every
    ``interval`` seconds (the reputation table of a run)."""
    while True:
        now = env.now
        for receiver in receivers:
            for ip in ips:
                scores.record(now, receiver.name, ip, receiver.score(ip, now))
        yield env.timeout(interval)
