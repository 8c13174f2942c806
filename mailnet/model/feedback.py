"""Reputation feedback: who hears about mail that reached a mailbox, and about complaints.

The blocklists' sensors see spam-trap hits and spam in transit, the receiving
organisation's reputation table sees every filed message and every complaint, and the
sender's provider hears of complaints through its feedback loop (mail-facts.md §7).
Recipients complain about a message in their inbox with their sender group's
``complaints`` probability, drawn from the message's own substream (``message_uniform``),
so that a recipient's complaint does not depend on how much other mail the run holds.
"""

from __future__ import annotations

import numpy as np

from mailnet.model.message import Message, message_uniform, stream_key
from mailnet.model.receiver import BlocklistNetwork, Receiver
from mailnet.model.submission import SubmissionServer
from mailnet.scenario import Scenario


class ReputationFeedback:
    """The sensors and feedback loops of one world.

    ``asns`` maps provider addresses to their AS (others are in AS 0); ``complaints``
    maps sender groups to the probability that a recipient complains about a message
    filed to the inbox; ``providers`` are the MSAs whose feedback loops hear of
    complaints (filled in when the providers are built).
    """

    def __init__(
        self,
        blocklists: BlocklistNetwork,
        asns: dict[str, int],
        complaints: dict[str, float],
        rng: np.random.Generator,
    ):
        self.blocklists = blocklists
        self._asns = asns
        self._complaints = complaints
        self._stream = stream_key(rng)
        self.providers: dict[str, SubmissionServer] = {}

    @classmethod
    def for_scenario(
        cls, scenario: Scenario, blocklists: BlocklistNetwork, rng: np.random.Generator
    ) -> ReputationFeedback:
        """Provider addresses and complaint rates as ``scenario`` gives them."""
        asns = {ip: p.asn for p in scenario.providers.values() for ip in p.ips}
        complaints = {name: g.complaints for name, g in scenario.senders.items()}
        return cls(blocklists, asns, complaints, rng)

    def asn_of(self, ip: str) -> int:
        """The AS of a client address (0 for addresses of no provider)."""
        return self._asns.get(ip, 0)

    def complaint_rate(self, message: Message) -> float:
        """Probability that a recipient complains about ``message`` in the inbox."""
        return self._complaints.get(message.group, 0.0)

    def complains(self, rate: float, message: Message, recipient: str) -> bool:
        """Whether ``recipient`` complains about ``message``: the message's own draw in the
        substream keyed by the ``complaints`` stream."""
        return message_uniform(self._stream, message, message.index(recipient)) < rate

    def complaint(
        self, message: Message, ip: str, asn: int, receiver: Receiver | None, now: float
    ) -> None:
        """A recipient marks the message as spam: the receiver, the lists and the
        sender's provider (through its feedback loop) all hear of it."""
        self.blocklists.observe("complaint", ip, asn, now, message.group)
        if receiver is not None:
            receiver.observe("complaint", ip, now, message)
        msa = self.providers.get(message.provider)
        if msa is not None:
            msa.record(message.sender, "complaint")
