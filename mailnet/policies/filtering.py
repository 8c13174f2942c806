"""Content filtering at the receiver: inbox or spam folder, swayed by the sender's score.

Pure decisions, no simulation engine. ``ContentFilter.place(is_spam, score, u)`` files one
message with the uniform ``u`` (the message's own draw, or one from the Generator the
filter was built with), and ``blame`` tells whose reputation misfiled a ham message. A
filter trusts mail from a well-reputed sender more: as the score falls, ham is misfiled
more often and spam slips through less often.
"""

from __future__ import annotations

from numpy.random import Generator

from mailnet.policies.reputation import blame
from mailnet.scenario import FilterConfig


def _lerp(at_worst: float, at_best: float, score: float) -> float:
    return at_worst + (at_best - at_worst) * score


class ContentFilter:
    """Spam-folder placement with error rates linear in the sending IP's score.

    For a reputation ``score`` s in [0, 1] (1 good, e.g. ``ReputationTable.score``):

    - false-positive rate (ham to the spam folder): ``fp = fp_worst + (fp_base - fp_worst) * s``
    - false-negative rate (spam to the inbox): ``fn = fn_worst + (fn_base - fn_worst) * s``

    so ``fp_base``/``fn_base`` hold for a perfect score and ``fp_worst``/``fn_worst`` for
    score 0. Usually ``fp_worst >= fp_base`` and ``fn_worst <= fn_base``; other orders are
    accepted (a filter that ignores reputation has equal pairs).

    Defaults are model choices [U]; no per-placement rates are public (mail-facts.md §9
    has only the ~20 % inbox non-placement of bulk mail, Return Path 2009 [S]): 0.1 % of
    ham misfiled and 5 % of spam missed from a well-reputed IP; 20 % and 0.5 % from one
    with score 0.
    """

    def __init__(
        self,
        fp_base: float = 0.001,
        fn_base: float = 0.05,
        *,
        fp_worst: float = 0.2,
        fn_worst: float = 0.005,
        rng: Generator,
    ):
        for name, value in (
            ("fp_base", fp_base),
            ("fn_base", fn_base),
            ("fp_worst", fp_worst),
            ("fn_worst", fn_worst),
        ):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability, got {value}")
        self.fp_base = float(fp_base)
        self.fn_base = float(fn_base)
        self.fp_worst = float(fp_worst)
        self.fn_worst = float(fn_worst)
        self.rng = rng

    @classmethod
    def from_config(cls, config: FilterConfig, rng: Generator) -> ContentFilter:
        """The filter of ``[receivers.NAME.filter]``, drawing from ``rng``."""
        return cls(
            config.fp_base,
            config.fn_base,
            fp_worst=config.fp_worst,
            fn_worst=config.fn_worst,
            rng=rng,
        )

    @staticmethod
    def _check(score: float) -> float:
        if not 0 <= score <= 1:
            raise ValueError(f"score must be in [0, 1], got {score}")
        return float(score)

    def fp_rate(self, score: float) -> float:
        """Probability that ham from an IP with ``score`` lands in the spam folder."""
        return _lerp(self.fp_worst, self.fp_base, self._check(score))

    def fn_rate(self, score: float) -> float:
        """Probability that spam from an IP with ``score`` lands in the inbox."""
        return _lerp(self.fn_worst, self.fn_base, self._check(score))

    def place(self, is_spam: bool, score: float, u: float | None = None) -> str:
        """``"inbox"`` or ``"spam"`` for one message, by the uniform ``u`` in [0, 1) (one
        draw from ``rng`` when not given): spam goes to the inbox when ``u < fn_rate``,
        ham to the spam folder when ``u < fp_rate``."""
        if u is None:
            u = float(self.rng.random())
        if is_spam:
            return "inbox" if u < self.fn_rate(score) else "spam"
        return "spam" if u < self.fp_rate(score) else "inbox"

    def blame(self, u: float, scores: tuple[float, float, float]) -> str | None:
        """Who earned the misfiling of a ham message placed with ``u`` at the first of
        ``scores`` (actual, without others' earned bad evidence, without any:
        ``ReputationTable.scores``): ``"others"``, ``"own"`` or ``None`` (the filter's
        ordinary false positive). Exact when ``fp_worst >= fp_base``."""
        return blame(scores, lambda s: u < self.fp_rate(min(1.0, max(0.0, s))))
