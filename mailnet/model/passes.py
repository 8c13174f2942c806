"""A message's passes through one MTA's active queue, and the non-delivery notification
each pass sends when it ends (Postfix's qmgr)."""

from __future__ import annotations

from collections.abc import Callable

from mailnet import smtp
from mailnet.model.message import Message

Report = Callable[[Message, list[str], smtp.Reply], None]
"""``report(message, recipients, reply)``: send one non-delivery notification for the
``recipients`` bounced in a pass (``reply``: the last bounce's)."""


class ActivePasses:
    """The messages of one MTA that are in a pass through its active queue.

    A pass holds a message from the moment its submission or one of its deliveries enters
    the active queue until the last of its deliveries then in progress settles (sent,
    bounced or deferred); a delivery that starts while another is in progress joins the
    same pass. As Postfix's qmgr (``qmgr_active.c`` qmgr_active_done; mail-facts.md §12):
    when every recipient of the pass has been tried, one non-delivery notification
    reports all those bounced in it, and none is sent before. Mail that gets no DSN (a
    DSN itself, spamware that never retries) is not tracked.
    """

    __slots__ = ("_open", "_report")

    def __init__(self, report: Report):
        self._report = report
        self._open: dict[int, _Pass] = {}

    def open(self, message: Message) -> None:
        """One more delivery (or the submission) of ``message`` in its pass."""
        if message.is_dsn or not message.retries:
            return
        entry = self._open.get(message.id)
        if entry is None:
            entry = self._open[message.id] = _Pass()
        entry.open += 1

    def bounced(self, message: Message, recipients: list[str], reply: smtp.Reply) -> None:
        """``recipients`` of ``message`` bounced in its pass, which is open."""
        if message.is_dsn or not message.retries:
            return
        entry = self._open[message.id]
        entry.bounced.extend(recipients)
        entry.reply = reply

    def close(self, message: Message) -> None:
        """A delivery of ``message`` settled: the last one ends the pass and reports the
        recipients bounced in it."""
        if message.is_dsn or not message.retries:
            return
        entry = self._open[message.id]
        entry.open -= 1
        if entry.open:
            return
        del self._open[message.id]
        if entry.reply is not None:
            self._report(message, entry.bounced, entry.reply)


class _Pass:
    __slots__ = ("bounced", "open", "reply")

    def __init__(self) -> None:
        self.open = 0
        self.bounced: list[str] = []
        self.reply: smtp.Reply | None = None
