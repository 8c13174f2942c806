"""A receiver's local reputation and its graded response: accept, rate-limit or reject.

Pure decisions, no simulation engine. ``ReputationTable`` keeps exponentially decaying
good and bad evidence per key (a source IP, or an authenticated sending domain), turns it
into a score in [0, 1] and, in ``judge``, into the replies large receivers send
(mail-facts.md §7, §19). It also tells who earned a harmful verdict (:func:`blame`): the
bad evidence other senders earned on the key, the sender's own, or neither (a new
address's volume limit, a filter's ordinary errors). ``TokenBucket`` is the rate limiter
used here and by the outbound controls. Times are seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

from mailnet.policies.reputation_replies import STYLES, reject_reply, throttle_reply
from mailnet.scenario import ReputationConfig
from mailnet.smtp import Reply
from mailnet.units import DAY

__all__ = [
    "OTHERS",
    "OWN",
    "STYLES",
    "ReputationTable",
    "TokenBucket",
    "TokenBuckets",
    "blame",
    "reject_reply",
    "throttle_reply",
]

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


class TokenBuckets:
    """A :class:`TokenBucket` per key, all with one ``rate`` (tokens per second) and
    ``burst``; each starts full at its key's first ``take``.

    A bucket that has refilled to full is in the state of a new one, so it can no longer
    change an answer: every ``burst / rate`` seconds (the time to refill from empty) the
    first ``take`` drops the full ones. Memory thus follows the keys active in the last
    two such periods, for one comparison per ``take``. Times must not decrease.
    """

    __slots__ = ("_buckets", "_period", "_sweep_at", "burst", "rate")

    def __init__(self, rate: float, burst: float):
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}
        self._period = self.burst / self.rate if self.rate > 0 else math.inf
        self._sweep_at = self._period

    def take(self, key: str, now: float) -> bool:
        """Spend one of ``key``'s tokens at ``now`` if it has one; whether it did."""
        if now >= self._sweep_at:
            self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Drop the buckets full at ``now``, without refilling the others (their next
        ``take`` refills them in one step, as it would have)."""
        rate, burst = self.rate, self.burst
        full = [k for k, b in self._buckets.items() if b._tokens + rate * (now - b._t) >= burst]
        for key in full:
            del self._buckets[key]
        self._sweep_at = now + self._period


WEIGHTS = {"ham": 1.0, "spam": 1.0, "trap": 50.0, "complaint": 100.0}
"""Evidence per observation. Model choices [U]: a complaint counts like 100 messages, so a
0.3 % complaint rate (Gmail's "never reach" line, mail-facts.md §7) alone gives a score of
about 0.77; a trap hit counts like 50 spam messages."""


def score_at_complaint_rate(rate: float, weight: float = WEIGHTS["complaint"]) -> float:
    """The score of a key whose only bad evidence is complaints on ``rate`` of its
    delivered mail: ``1 / (1 + weight * rate)`` (no prior, no decay)."""
    return 1.0 / (1.0 + weight * rate)


STYLE_THRESHOLDS: dict[str, tuple[float, float]] = {
    # Gmail's sender guidelines (support.google.com/mail/answer/81126, mail-facts.md §7,
    # §19): keep the spam rate reported in Postmaster Tools below 0.10 % and never reach
    # 0.30 % (no mitigation above it; BAD reputation is "almost always rejected"). Rate
    # limiting from 0.1 %, rejection from 0.3 %: scores 0.909 and 0.769.
    "gmail": (score_at_complaint_rate(0.001), score_at_complaint_rate(0.003)),
    # Yahoo (senders.yahooinc.com/best-practices, mail-facts.md §19) publishes only the
    # 0.3 % line, answered with 421 4.7.0 [TSS04] deferrals; rejection from 1 % is a model
    # choice [U, plausible 0.5-2 %]. Scores 0.769 and 0.5.
    "yahoo": (score_at_complaint_rate(0.003), score_at_complaint_rate(0.01)),
    # Microsoft publishes no complaint line for Outlook.com (its May 2025 high-volume
    # sender requirements are SPF, DKIM and DMARC, mail-facts.md §19); SNDS turns an
    # address yellow when more than 10 % of its mail gets a spam verdict (§17): rate
    # limiting (S775) below 0.9, blocking (S3150) below 0.5 [U, plausible 0.1-0.8].
    "microsoft": (0.9, 0.5),
}
"""``(throttle_below, reject_below)`` of each reply style, from its published thresholds."""

OTHERS = "others"
"""Blame: the bad evidence other senders earned on the key made the verdict harmful."""
OWN = "own"
"""Blame: the sender's own earned bad evidence did (self-inflicted)."""


def blame(scores: tuple[float, float, float], harmed: Callable[[float], bool]) -> str | None:
    """Who earned a harmful verdict, from a key's ``scores`` (as ``ReputationTable.scores``:
    actual, without the bad evidence others earned, without any earned bad evidence).

    ``OTHERS`` when the verdict would not have been harmful without what others earned;
    else ``OWN`` when it would not have been without any earned bad evidence; else
    ``None`` (the key's prior, or evidence nobody earned such as a filter's own false
    positives, would have done it anyway). ``harmed(score)`` tells whether a score gives
    the harmful verdict; it must be monotone (harmful for every lower score).
    """
    if not harmed(scores[1]):
        return OTHERS
    if not harmed(scores[2]):
        return OWN
    return None


@dataclass(slots=True)
class _Evidence:
    t: float
    good: float = 0.0
    bad: float = 0.0
    earned: float = 0.0  # the part of bad that a sender earned: not a filter's error


class ReputationTable:
    """Reputation per key (an IP, or a sending domain) as one receiver sees it, the reply
    it gives for it, and who earned that reply.

    Scoring. Each observation adds ``weights[kind]`` to the key's good evidence ``G``
    (kind ``"ham"``) or bad evidence ``B`` (``"spam"``, ``"trap"``, ``"complaint"``); both
    decay by half every ``half_life`` seconds. The score is the decayed share of good
    evidence, with a prior worth ``prior_weight`` observations of score ``p``::

        score = (prior_weight * p + G) / (prior_weight + G + B)

    It lies in [0, 1] (1 good), falls with every bad observation, rises with every good
    one, and drifts back to ``p`` as evidence decays. A key never seen scores ``p``.
    Without decay it is one minus the weighted spam share: an IP sending 20 % spam (and
    no complaints) tends to 0.8.

    New addresses. ``p`` is ``prior`` for a key the receiver knows from before the run,
    ``new_prior`` for one of ``new_keys`` (addresses a provider is warming up): a receiver
    starts an address it has never seen with little trust and limits its volume (Gmail:
    "increase volume slowly" from a new IP, mail-facts.md §19). A new key may deliver
    ``max(new_daily, warm_growth * G)`` messages a day (a token bucket holding an hour's
    worth), so its allowance grows as it earns good evidence and shrinks again when it
    goes quiet. Defaults from Twilio SendGrid's published warm-up schedule (mail-facts.md
    §20): 20 an hour on day 0 (480 a day) rising about 1.4-fold a day, so ``new_daily``
    500 and ``warm_growth`` 0.4 a day [plausible 0.2-1.0]; ``new_prior`` 0.8 is a model
    choice [U, plausible 0.5-1.0].

    Attribution. Bad evidence is *earned* unless it is a filter's false positive (ham
    filed as spam, ``earned=False``); earned evidence is also kept per ``party`` (a sender
    group) so that :meth:`scores` can remove what others, or anyone, earned.

    Response (``judge``): score below ``reject_below`` -> 550 5.7.1; below
    ``throttle_below`` -> accepted while the key's token bucket (``throttle_rate``
    messages/s, ``throttle_burst``) has a token, else a temporary rate-limit reply; else
    accepted (a new key within its allowance). Thresholds default to the style's
    published lines (``STYLE_THRESHOLDS``); other defaults are model choices [U]: a 7-day
    half-life, a prior of 1.0 worth 10 observations for known keys, 1 message/min with a
    burst of 10 when throttled.
    """

    def __init__(
        self,
        half_life: float = 7 * DAY,
        *,
        prior: float = 1.0,
        prior_weight: float = 10.0,
        throttle_below: float | None = None,
        reject_below: float | None = None,
        throttle_rate: float = 1 / 60,
        throttle_burst: float = 10,
        style: str = "gmail",
        weights: dict[str, float] | None = None,
        new_keys: Collection[str] = (),
        new_prior: float = 0.8,
        new_daily: float = 500.0,
        warm_growth: float = 0.4,
    ):
        if style not in STYLES:
            raise ValueError(f"unknown reply style {style!r}; use one of {STYLES}")
        throttle_default, reject_default = STYLE_THRESHOLDS[style]
        throttle_below = throttle_default if throttle_below is None else throttle_below
        reject_below = min(throttle_below, reject_default) if reject_below is None else reject_below
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        if not (0 <= prior <= 1 and 0 <= new_prior <= 1) or prior_weight <= 0:
            raise ValueError("prior and new_prior must be in [0, 1] and prior_weight positive")
        if not 0 <= reject_below <= throttle_below <= 1:
            raise ValueError("need 0 <= reject_below <= throttle_below <= 1")
        if new_daily <= 0 or warm_growth < 0:
            raise ValueError("new_daily must be positive and warm_growth not negative")
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
        self.new_keys = frozenset(new_keys)
        self.new_prior = float(new_prior)
        self.new_daily = float(new_daily)
        self.warm_growth = float(warm_growth)
        self._evidence: dict[str, _Evidence] = {}
        self._own: dict[tuple[str, str], _Evidence] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._cold: dict[str, TokenBucket] = {}

    @classmethod
    def from_config(
        cls, config: ReputationConfig, new_keys: Collection[str] = ()
    ) -> ReputationTable:
        """The table of ``[receivers.NAME.reputation]``; ``new_keys`` are new addresses."""
        return cls(
            config.half_life,
            prior=config.prior,
            prior_weight=config.prior_weight,
            throttle_below=config.throttle_below,
            reject_below=config.reject_below,
            throttle_rate=config.throttle_rate,
            throttle_burst=config.throttle_burst,
            style=config.style,
            new_keys=new_keys,
            new_prior=config.new_prior,
            new_daily=config.new_daily,
            warm_growth=config.warm_growth,
        )

    def _decay(self, ev: _Evidence, key: str, now: float) -> _Evidence:
        if now < ev.t:
            raise ValueError(f"time went back for {key}: {ev.t} then {now}")
        if now > ev.t:
            factor = 0.5 ** ((now - ev.t) / self.half_life)
            ev.good *= factor
            ev.bad *= factor
            ev.earned *= factor
            ev.t = now
        return ev

    def _decayed(self, key: str, now: float) -> _Evidence | None:
        ev = self._evidence.get(key)
        if ev is not None and now != ev.t:  # already decayed to ``now``: nothing to do
            self._decay(ev, key, now)
        return ev

    def observe(
        self,
        kind: str,
        key: str,
        now: float,
        count: float = 1,
        *,
        party: str | None = None,
        earned: bool = True,
    ) -> None:
        """Add ``count`` observations of ``kind`` (ham, spam, trap, complaint) at ``now``;
        bad evidence is credited to ``party`` when ``earned`` (not a filter's error)."""
        weight = self.weights.get(kind)
        if weight is None:
            raise ValueError(f"unknown evidence kind {kind!r}; use one of {sorted(WEIGHTS)}")
        ev = self._decayed(key, now)
        if ev is None:
            ev = self._evidence[key] = _Evidence(now)
        if kind == "ham":
            ev.good += weight * count
            return
        ev.bad += weight * count
        if earned:
            ev.earned += weight * count
            if party is not None:
                own = self._own.get((key, party))
                if own is None:
                    own = self._own[key, party] = _Evidence(now)
                self._decay(own, key, now).earned += weight * count

    def evidence(self, key: str, now: float) -> tuple[float, float]:
        """Decayed ``(good, bad)`` evidence for ``key`` at ``now``."""
        ev = self._decayed(key, now)
        return (ev.good, ev.bad) if ev else (0.0, 0.0)

    def _score(self, key: str, good: float, bad: float) -> float:
        pw = self.prior_weight
        prior = self.new_prior if key in self.new_keys else self.prior
        return (pw * prior + good) / (pw + good + max(bad, 0.0))

    def score(self, key: str, now: float) -> float:
        """Reputation of ``key`` at ``now`` in [0, 1], 1 best (formula in the class doc)."""
        ev = self._decayed(key, now)
        if ev is None:
            return self._score(key, 0.0, 0.0)
        return self._score(key, ev.good, ev.bad)

    def scores(self, key: str, now: float, party: str | None) -> tuple[float, float, float]:
        """``key``'s score at ``now``; without the earned bad evidence of senders other
        than ``party``; and without any earned bad evidence (for :func:`blame`)."""
        ev = self._decayed(key, now)
        if ev is None:
            s = self._score(key, 0.0, 0.0)
            return s, s, s
        own = self._own.get((key, party)) if party is not None else None
        mine = 0.0 if own is None else self._decay(own, key, now).earned
        good, bad = ev.good, ev.bad
        return (
            self._score(key, good, bad),
            self._score(key, good, bad - ev.earned + mine),
            self._score(key, good, bad - ev.earned),
        )

    def _harmful(self, score: float) -> bool:
        return score < self.throttle_below

    def judge(
        self, key: str, now: float, party: str | None = None, *, client: str | None = None
    ) -> tuple[Reply | None, str | None]:
        """Reply to one delivery attempt for ``key`` at ``now`` (``None`` accepts it), and
        who earned a refusal (:func:`blame` for ``party``; ``None`` for a new key's volume
        limit). With ``client``, ``key`` is a sending domain and ``client`` the address
        the reply names.

        A throttled or new key that is let through spends a token: call it once per attempt.
        """
        s = self.score(key, now)
        ip, domain = (key, None) if client is None else (client, key)
        reply = None
        if s < self.reject_below:
            reply = reject_reply(self.style, ip, domain)
        elif s < self.throttle_below:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(
                    self.throttle_rate, self.throttle_burst, now
                )
            if not bucket.take(now):
                reply = throttle_reply(self.style, ip, domain)
        if reply is not None:
            return reply, blame(self.scores(key, now, party), self._harmful)
        if key in self.new_keys and not self._within_allowance(key, now):
            return throttle_reply(self.style, ip, domain), None
        return None, None

    def decide(self, key: str, now: float) -> Reply | None:
        """The reply of :meth:`judge` alone."""
        return self.judge(key, now)[0]

    def _within_allowance(self, key: str, now: float) -> bool:
        """Whether a new key may deliver one more message now (class doc: new addresses)."""
        good = self.evidence(key, now)[0]
        daily = max(self.new_daily, self.warm_growth * good)
        bucket = self._cold.get(key)
        if bucket is None:
            bucket = self._cold[key] = TokenBucket(daily / DAY, max(1.0, daily / 24), now)
        else:
            bucket.available(now)  # refill at the old rate up to now
            bucket.rate, bucket.burst = daily / DAY, max(1.0, daily / 24)
        return bucket.take(now)
