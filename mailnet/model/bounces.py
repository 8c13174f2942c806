"""Delivery status notifications (RFC 3464) and the bounce feedback of providers.

When an MTA gives up on recipients (``failed``: a 5xx reply, or ``expired`` in the
queue) or has held them past the retry policy's warning age (``delayed``), it sends a DSN
from the null sender to the original sender, from its own queue. A hard bounce also
counts against the sender at its provider (the bounce rate ESPs act on). Spamware that
never retries gets no DSNs, and a DSN never causes another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailnet import smtp
from mailnet.model.message import Message, MessageFactory
from mailnet.model.submission import SubmissionServer

if TYPE_CHECKING:
    from mailnet.model.outbound import OutboundMta


class Bounces:
    """The ``on_bounce`` hook of every MTA. ``providers`` are the MSAs that hear of hard
    bounces (filled in when the providers are built)."""

    def __init__(self, messages: MessageFactory):
        self._messages = messages
        self.providers: dict[str, SubmissionServer] = {}

    def __call__(
        self,
        mta: OutboundMta,
        message: Message,
        recipients: list[str],
        reply: smtp.Reply,
        kind: str,
    ) -> None:
        """``mta`` reports ``recipients`` of ``message`` as ``kind`` (failed, delayed or
        expired) with ``reply``: count a hard bounce, send the DSN."""
        if kind == "failed" and reply.permanent and message.provider in self.providers:
            self.providers[message.provider].record(message.sender, "bounce", len(recipients))
        if not message.sender or not message.retries:
            return
        dsn = self._messages.new("", message.sender_class, mta.name, [message.sender], is_dsn=True)
        self._messages.link_dsn(dsn, message, kind, recipients[0])
        mta.submit(dsn, [message.sender])
