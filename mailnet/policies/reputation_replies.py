"""What a large receiver says when it throttles or blocks for reputation.

Reply texts by style (mail-facts.md §7 and §19): ``gmail`` (421 4.7.28 rate limit, 550
5.7.1 block; a domain variant of each), ``microsoft`` (451 4.7.650 S775, 550 5.7.1
S3150), ``yahoo`` (421 4.7.0 [TSS04]). ``subject`` is the client's address in brackets,
or ``domain NAME`` for a verdict on the authenticated sending domain.
"""

from __future__ import annotations

from mailnet.smtp import Reply

STYLES = ("gmail", "microsoft", "yahoo")


def _check(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown reply style {style!r}; use one of {STYLES}")


def throttle_reply(style: str, ip: str, domain: str | None = None) -> Reply:
    """A receiver's temporary rate limit of ``ip`` (or, with ``domain``, of that sending
    domain): mail-facts.md §7, §19 (smtp.codes [S])."""
    _check(style)
    if style == "gmail":
        source = "your IP address" if domain is None else f"your DKIM domain [{domain}]"
        return Reply(
            421,
            "4.7.28",
            f"[{ip}] Our system has detected an unusual rate of "
            f"unsolicited mail originating from {source}. To protect our users "
            f"from spam, mail sent from {source} has been temporarily rate "
            "limited.",
        )
    if style == "microsoft":
        what = "IP reputation" if domain is None else f"domain reputation ({domain})"
        return Reply(
            451,
            "4.7.650",
            f"The mail server [{ip}] has been temporarily rate limited due to {what}. (S775)",
        )
    sender = ip if domain is None else f"{ip} for {domain}"
    return Reply(
        421,
        "4.7.0",
        f"[TSS04] Messages from {sender} temporarily deferred due to "
        "unexpected volume or user complaints",
    )


def reject_reply(style: str, ip: str, domain: str | None = None) -> Reply:
    """A receiver's permanent reputation block, 550 5.7.1.

    The Microsoft text is S3150 (mail-facts.md §7); the Gmail and Yahoo texts, and every
    domain variant, are paraphrases in their providers' wording [U].
    """
    _check(style)
    if style == "gmail":
        source = "your IP address" if domain is None else f"your DKIM domain [{domain}]"
        return Reply(
            550,
            "5.7.1",
            f"[{ip}] Our system has detected an unusual rate of "
            f"unsolicited mail originating from {source}. To protect our users "
            f"from spam, mail sent from {source} has been blocked.",
        )
    if style == "microsoft":
        if domain is not None:
            return Reply(
                550, "5.7.1", f"Unfortunately, messages from {domain} weren't sent (S3150)."
            )
        return Reply(
            550,
            "5.7.1",
            f"Unfortunately, messages from [{ip}] weren't sent. Please "
            "contact your Internet service provider since part of their network is on "
            "our block list (S3150).",
        )
    what = "this IP" if domain is None else f"{domain}"
    return Reply(
        550, "5.7.1", f"[{ip}] Messages from {what} are not accepted due to poor reputation"
    )
