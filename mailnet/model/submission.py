"""The provider's submission server (MSA): what a provider does before mail leaves.

Mail from the provider's own clients passes the outbound controls here, in this order:
suspension of senders with too many hard bounces or complaints (rejected, 554 5.7.1), the
outbound spam filter (rejected, 554 5.7.1), and the per-sender rate limit, which holds
mail at the MSA until the sender's token bucket allows it. What passes is handed to the
provider's outbound MTA.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import simpy

from mailnet import smtp
from mailnet.message_table import MessageTable
from mailnet.model.message import SPAM, Message, MessageFactory
from mailnet.model.outbound import OutboundMta
from mailnet.policies.outbound_controls import OutboundSpamFilter, SenderStats, SenderSuspension
from mailnet.scenario import Provider, SenderGroup

Submit = Callable[[str, list[str]], object]
"""``submit(sender_address, recipients)``: a client hands a message to its provider's MSA
(what it returns is not used)."""


class SenderShaper:
    """A token bucket per sender used as a shaper (GCRA): each message is released at the
    earliest time the bucket (``rate`` per second, ``burst`` deep) allows, in FIFO order."""

    def __init__(self, rate: float, burst: int):
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat: dict[str, float] = {}

    def release_time(self, sender: str, now: float) -> float:
        tat = self._tat.get(sender, now)
        release = max(now, tat - self._tolerance)
        self._tat[sender] = max(release, tat) + self._interval
        return release


class SubmissionServer:
    """One provider's MSA with its outbound controls (each optional). ``stats`` (per-sender
    sent, bounce and complaint counts) is kept only where a control reads it."""

    def __init__(
        self,
        env: simpy.Environment,
        mta: OutboundMta,
        table: MessageTable,
        messages: MessageFactory,
        stats: SenderStats | None,
        *,
        suspension: SenderSuspension | None = None,
        spam_filter: OutboundSpamFilter | None = None,
        shaper: SenderShaper | None = None,
    ):
        self.env = env
        self.mta = mta
        self._table = table
        self._messages = messages
        self.stats = stats
        self.suspension = suspension
        self.spam_filter = spam_filter
        self.shaper = shaper

    @classmethod
    def for_provider(
        cls,
        env: simpy.Environment,
        config: Provider,
        mta: OutboundMta,
        *,
        table: MessageTable,
        messages: MessageFactory,
        stats: SenderStats | None,
        filter_rng: np.random.Generator,
        suspensions: list[dict],
    ) -> SubmissionServer:
        """The MSA of ``[providers.NAME]`` with the controls it configures; suspensions
        are appended to ``suspensions``."""
        sus, spam, rate = config.suspension, config.outbound_filter, config.rate_limit
        return cls(
            env,
            mta,
            table,
            messages,
            stats,
            suspension=None
            if sus is None or stats is None
            else SenderSuspension.from_config(sus, stats, suspensions),
            spam_filter=None if spam is None else OutboundSpamFilter.from_config(spam, filter_rng),
            shaper=None if rate is None else SenderShaper(rate.rate, rate.burst),
        )

    def submit(
        self, sender: str, recipients: list[str], group: str, sender_class: str, retries: bool
    ) -> Message:
        """A client submits a message now; returns it (its rows record what happened)."""
        now = self.env._now
        message = self._messages.new(
            sender,
            sender_class,
            self.mta.name,
            recipients,
            is_dsn=False,
            group=group,
            retries=retries,
        )
        if self.suspension is not None and self.suspension.suspended(sender, now):
            self._reject(message, smtp.SUSPENDED_SENDER)
            return message
        if self.spam_filter is not None and self.spam_filter.blocks(sender_class == SPAM):
            self._reject(message, smtp.OUTBOUND_SPAM)
            return message
        if self.stats is not None:
            self.stats.record(sender, "sent", now, len(recipients))
        if self.shaper is None:
            self._release(message, recipients)
            return message
        release = self.shaper.release_time(sender, now)
        if release <= now:
            self._release(message, recipients)
        else:
            hold = self.env.timeout(release - now)
            hold.callbacks.append(lambda _e: self._release(message, recipients))
        return message

    def _release(self, message: Message, recipients: list[str]) -> None:
        """Hand ``message`` to the MTA now, and record when."""
        released, now = self._table.released_at, self.env._now
        for row in message.table_rows():
            released[row] = now  # MessageTable.release, inlined: once per recipient
        self.mta.submit(message, recipients)

    def submitter(self, group_name: str, group: SenderGroup) -> Submit:
        """The ``submit(sender, recipients)`` of the clients of sender group ``group``."""
        # a C-level call per message instead of a Python closure
        return partial(
            self.submit, group=group_name, sender_class=group.sender_class, retries=group.retries
        )

    def record(self, sender: str, kind: str, count: int = 1) -> None:
        """Feedback about mail already sent: a hard ``bounce`` or a ``complaint``."""
        target = self.suspension if self.suspension is not None else self.stats
        if target is not None:
            target.record(sender, kind, self.env._now, count)

    def _reject(self, message: Message, reply: smtp.Reply) -> None:
        # refused at submission: the client is told at once, so there is no DSN
        for row in message.table_rows():
            self._table.settle(row, "bounced", reply.code, reply.enhanced, reply.text)
