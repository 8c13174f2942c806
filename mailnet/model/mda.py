"""The delivery agent behind a primary MX: what happens to mail it accepted.

For each accepted recipient, in this order: a spam-trap hit or spam in transit is
reported to the blocklists (and a trap hit to the receiver), the receiver files the
message into the inbox or the spam folder, a recipient may complain about mail in the
inbox, and the mailbox stores it.
"""

from __future__ import annotations

from mailnet.message_table import MessageTable
from mailnet.model.feedback import ReputationFeedback
from mailnet.model.mailbox import Mailboxes
from mailnet.model.message import SPAM, Message, domain_of, is_trap
from mailnet.model.receiver import Receiver


class DeliveryAgent:
    """Files and stores what one primary MX accepted; ``receiver`` is its organisation
    (``None``: no filtering, everything goes to the inbox)."""

    def __init__(
        self,
        receiver: Receiver | None,
        mailboxes: Mailboxes,
        feedback: ReputationFeedback,
        table: MessageTable,
    ):
        self.receiver = receiver
        self.mailboxes = mailboxes
        self.feedback = feedback
        self._table = table

    def accept(
        self, message: Message, recipients: list[str], now: float, host: str, client_ip: str
    ) -> None:
        """The MX ``host`` accepted ``recipients`` of ``message`` from ``client_ip`` at
        ``now``: observe, file, store (an ``MxServer.accept``)."""
        receiver = self.receiver
        feedback = self.feedback
        blocklists = feedback.blocklists
        table = self._table
        store = self.mailboxes.store
        is_spam = message.sender_class == SPAM
        asn = feedback.asn_of(client_ip)
        complaints = feedback.complaint_rate(message)
        for rcpt in recipients:
            row = message.row_of(rcpt)
            trap = is_trap(rcpt)
            if trap:
                blocklists.observe("trap", client_ip, asn, now, message.group)
                if receiver is not None:
                    receiver.observe("trap", client_ip, now, message)
            elif is_spam:
                blocklists.observe("spam", client_ip, asn, now, message.group)
            if receiver is not None:
                folder, cause = receiver.file(message, rcpt, client_ip, now)
                if cause is not None and message.legitimate:
                    table.mark_collateral(row, cause)
            else:
                folder = "inbox"
            table.folder[row] = folder
            table.stored_by[row] = host
            if (
                folder == "inbox"
                and complaints
                and not trap
                and feedback.complains(complaints, message, rcpt)
            ):
                feedback.complaint(message, client_ip, asn, receiver, now)
            store(row, rcpt, domain_of(rcpt), now)
