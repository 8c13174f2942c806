"""A receiver's local IP reputation and its graded response: accept, rate-limit or reject.

Pure decisions, no simulation engine. ``ReputationTable`` keeps exponentially decaying
good and bad evidence per source IP, turns it into a score in [0, 1] and, in ``decide``,
into the replies large receivers send (mail-facts.md §7). ``TokenBucket`` is the rate
limiter used here and by the outbound controls. Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailnet.scenario import ReputationConfig
from mailnet.smtp import Reply
from mailnet.units import DAY

_EPS = 1e-9
"""Slack on token counts so that refills like ``(1/60) * 60`` still make a whole token."""


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``; starts full.

    ``take(now)`` spends one token if there is one; times must not decrease.
    """

    __slots__ = ("_t", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float = 0.0):
        if rate < 0 or burst < 1:
            raise ValueError("a token bucket needs rate >= 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._t = float(now)

    def _refill(self, now: float) -> None:
        if now < self._t:
            raise ValueError(f"time went back from {self._t} to {now}")
        self._tokens = min(self.burst, self._tokens + self.rate * (now - self._t))
        self._t = now

    def available(self, now: float) -> float:
        """Tokens in the bucket at ``now``."""
        self._refill(now)
        return self._tokens

    def take(self, now: float, n: float = 1.0) -> bool:
        """Spend ``n`` tokens at ``now`` if the bucket holds them; whether it did."""
        self._refill(now)
        if self._tokens + _EPS >= n:
            self._tokens = max(0.0, self._tokens - n)
            return True
        return False


WEIGHTS = {"ham": 1.0, "spam": 1.0, "trap": 50.0, "complaint": 100.0}
"""Evidence per observation. Model choices [U]: a complaint counts like 100 messages, so a
0.3 % complaint rate (Gmail's "never reach" line, mail-facts.md §7) alone gives a score of
about 0.77; a trap hit counts like 50 spam messages."""

STYLES = ("gmail", "microsoft", "yahoo")


def throttle_reply(style: str, ip: str) -> Reply:
    """A receiver's temporary IP-reputation rate limit (mail-facts.md §7, smtp.codes [S])."""
    if style == "gmail":
        return Reply(
            421,
            "4.7.28",
            f"[{ip}] Our system has detected an unusual rate of "
            "unsolicited mail originating from your IP address. To protect our users "
            "from spam, mail sent from your IP address has been temporarily rate "
            "limited.",
        )
    if style == "microsoft":
        return Reply(
            451,
            "4.7.650",
            f"The mail server [{ip}] has been temporarily rate "
            "limited due to IP reputation. (S775)",
        )
    if style == "yahoo":
        return Reply(
            421,
            "4.7.0",
            f"[TSS04] Messages from {ip} temporarily deferred due to "
            "unexpected volume or user complaints",
        )
    raise ValueError(f"unknown reply style {style!r}; use one of {STYLES}")


def reject_reply(style: str, ip: str) -> Reply:
    """A receiver's permanent IP-reputation block, 550 5.7.1.

    The Microsoft text is S3150 (mail-facts.md §7); the Gmail and Yahoo texts are
    paraphrases in their providers' wording [U].
    """
    if style == "gmail":
        return Reply(
            550,
            "5.7.1",
            f"[{ip}] Our system has detected an unusual rate of "
            "unsolicited mail originating from your IP address. To protect our users "
            "from spam, mail sent from your IP address has been blocked.",
        )
    if style == "microsoft":
        return Reply(
            550,
            "5.7.1",
            f"Unfortunately, messages from [{ip}] weren't sent. Please "
            "contact your Internet service provider since part of their network is on "
            "our block list (S3150).",
        )
    if style == "yahoo":
        return Reply(
            550, "5.7.1", f"[{ip}] Messages from this IP are not accepted due to poor reputation"
        )
    raise ValueError(f"unknown reply style {style!r}; use one of {STYLES}")


@dataclass(slots=True)
class _Evidence:
    t: float
    good: float = 0.0
    bad: float = 0.0


class ReputationTable:
    """Per-IP reputation as one receiver sees it, and the reply it gives for it.

    Scoring. Each observation adds ``weights[kind]`` to the IP's good evidence ``G``
    (kind ``"ham"``) or bad evidence ``B`` (``"spam"``, ``"trap"``, ``"complaint"``); both
    decay by half every ``half_life`` seconds. The score is the decayed share of good
    evidence, with a prior worth ``prior_weight`` observations of score ``prior``::

        score = (prior_weight * prior + G) / (prior_weight + G + B)

    It lies in [0, 1] (1 good), falls with every bad observation, rises with every good
    one, and drifts back to ``prior`` as evidence decays. An IP never seen scores
    ``prior``. Without decay it is one minus the weighted spam share: an IP sending 20 %
    spam (and no complaints) tends to 0.8.

    Response (``decide``): score below ``reject_below`` -> 550 5.7.1; below
    ``throttle_below`` -> accepted while the IP's token bucket (``throttle_rate``
    messages/s, ``throttle_burst``) has a token, else a temporary rate-limit reply; else
    accepted. Reply texts by ``style``: ``"gmail"`` (421 4.7.28), ``"microsoft"``
    (451 4.7.650), ``"yahoo"`` (421 4.7.0 [TSS04]); see mail-facts.md §7.

    Defaults are model choices, not measured values [U]: a 7-day half-life, a prior of
    1.0 worth 10 observations (an unknown IP is trusted until it shows otherwise), throttle
    below 0.8 at 1 message/min with a burst of 10, reject below 0.5.
    """

    def __init__(
        self,
        half_life: float = 7 * DAY,
        *,
        prior: float = 1.0,
        prior_weight: float = 10.0,
        throttle_below: float = 0.8,
        reject_below: float = 0.5,
        throttle_rate: float = 1 / 60,
        throttle_burst: float = 10,
        style: str = "gmail",
        weights: dict[str, float] | None = None,
    ):
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        if not 0 <= prior <= 1 or prior_weight <= 0:
            raise ValueError("prior must be in [0, 1] and prior_weight positive")
        if not 0 <= reject_below <= throttle_below <= 1:
            raise ValueError("need 0 <= reject_below <= throttle_below <= 1")
        if style not in STYLES:
            raise ValueError(f"unknown reply style {style!r}; use one of {STYLES}")
        self.half_life = float(half_life)
        self.prior = float(prior)
        self.prior_weight = float(prior_weight)
        self.throttle_below = float(throttle_below)
        self.reject_below = float(reject_below)
        self.throttle_rate = float(throttle_rate)
        self.throttle_burst = float(throttle_burst)
        self.style = style
        self.weights = {**WEIGHTS, **(weights or {})}
        unknown = set(self.weights) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"unknown evidence kinds {sorted(unknown)}; use {sorted(WEIGHTS)}")
        self._evidence: dict[str, _Evidence] = {}
        self._buckets: dict[str, TokenBucket] = {}

    @classmethod
    def from_config(cls, config: ReputationConfig) -> ReputationTable:
        """The table of ``[receivers.NAME.reputation]``."""
        return cls(
            config.half_life,
            prior=config.prior,
            prior_weight=config.prior_weight,
            throttle_below=config.throttle_below,
            reject_below=config.reject_below,
            throttle_rate=config.throttle_rate,
            throttle_burst=config.throttle_burst,
            style=config.style,
        )

    def _decayed(self, ip: str, now: float) -> _Evidence | None:
        ev = self._evidence.get(ip)
        if ev is None:
            return None
        if now < ev.t:
            raise ValueError(f"time went back for {ip}: {ev.t} then {now}")
        if now > ev.t:
            factor = 0.5 ** ((now - ev.t) / self.half_life)
            ev.good *= factor
            ev.bad *= factor
            ev.t = now
        return ev

    def observe(self, kind: str, ip: str, now: float, count: float = 1) -> None:
        """Add ``count`` observations of ``kind`` (ham, spam, trap, complaint) at ``now``."""
        weight = self.weights.get(kind)
        if weight is None:
            raise ValueError(f"unknown evidence kind {kind!r}; use one of {sorted(WEIGHTS)}")
        ev = self._decayed(ip, now)
        if ev is None:
            ev = self._evidence[ip] = _Evidence(now)
        if kind == "ham":
            ev.good += weight * count
        else:
            ev.bad += weight * count

    def evidence(self, ip: str, now: float) -> tuple[float, float]:
        """Decayed ``(good, bad)`` evidence for ``ip`` at ``now``."""
        ev = self._decayed(ip, now)
        return (ev.good, ev.bad) if ev else (0.0, 0.0)

    def score(self, ip: str, now: float) -> float:
        """Reputation of ``ip`` at ``now`` in [0, 1], 1 best (formula in the class doc)."""
        good, bad = self.evidence(ip, now)
        pw = self.prior_weight
        return (pw * self.prior + good) / (pw + good + bad)

    def decide(self, ip: str, now: float) -> Reply | None:
        """Reply to one delivery attempt from ``ip`` at ``now``: ``None`` accepts it.

        A throttled IP that is let through spends a token, so call it once per attempt.
        """
        s = self.score(ip, now)
        if s < self.reject_below:
            return reject_reply(self.style, ip)
        if s < self.throttle_below:
            bucket = self._buckets.get(ip)
            if bucket is None:
                bucket = self._buckets[ip] = TokenBucket(
                    self.throttle_rate, self.throttle_burst, now
                )
            if not bucket.take(now):
                return throttle_reply(self.style, ip)
        return None
