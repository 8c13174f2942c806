"""The named retry presets and ``make_retry_policy``, which builds a policy from a name
(or a custom schedule) and a table of parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from numpy.random import Generator
from pydantic import ValidationError

from mailnet.policies.retry.base import PolicyBase, RetryParams, RetryParamsError, RetryPolicy
from mailnet.policies.retry.exchange import ExchangeOnlineRetry, ExchangeRetry
from mailnet.policies.retry.exim import EximRetry
from mailnet.policies.retry.postfix import PostfixRetry
from mailnet.policies.retry.qmail import QmailRetry
from mailnet.policies.retry.rfc5321 import Rfc5321Retry
from mailnet.policies.retry.schedule import ScheduleRetry
from mailnet.policies.retry.sendmail import SendmailRetry
from mailnet.policies.retry.webmail import AOL, GMAIL, GMX, HOTMAIL, YAHOO


@dataclass(frozen=True, slots=True)
class Preset:
    """A named retry policy: ``policy`` is its class, ``defaults`` the parameters that
    differ from that class's own defaults (the measured webmail offsets)."""

    name: str
    summary: str
    policy: type[PolicyBase]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def validate(self, given: Mapping[str, Any] | None = None) -> RetryParams:
        """The typed parameters: the defaults overridden by ``given`` (file values: seconds
        or text such as "15m"). Raises ``RetryParamsError`` naming the bad parameter."""
        model = self.policy.Params
        try:
            return model.model_validate({**self.defaults, **(given or {})})
        except ValidationError as exc:
            raise RetryParamsError.from_validation(exc, self.name, model) from None

    def build(self, params: Mapping[str, Any] | None, rng: Generator | None) -> RetryPolicy:
        """A fresh policy with ``params`` over the defaults; ``rng`` only for Exim H rules."""
        return self.policy(self.validate(params), rng, name=self.name)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "postfix",
            "Postfix qmgr backoff clamp(age, 300 s, 4000 s), scans every 300 s, 5 d lifetime",
            PostfixRetry,
        ),
        Preset(
            "exim",
            "Exim retry rule F,2h,15m; G,16h,1h,1.5; F,4d,6h per destination, -q30m runner",
            EximRetry,
        ),
        Preset(
            "qmail",
            "qmail-send attempts at (20k)^2 s after injection, 7 d queuelifetime",
            QmailRetry,
        ),
        Preset(
            "sendmail",
            "Sendmail -q30m runs, each retrying (MinQueueAge 0), 5 d queuereturn, 4 h warning",
            SendmailRetry,
        ),
        Preset(
            "exchange",
            "Exchange Server: 6 retries 5 min apart, then every 15 min, 2 d expiry",
            ExchangeRetry,
        ),
        Preset(
            "exchange-online",
            "Exchange Online: retries 15 min apart doubling to hourly, 24 h expiry",
            ExchangeOnlineRetry,
        ),
        Preset(
            "rfc5321",
            "RFC 5321 §4.5.4.1: two tries in the first hour, then every 2 h, 5 d give-up",
            Rfc5321Retry,
        ),
        Preset(
            "gmail",
            "Gmail retry times measured by Pagani et al. 2016; retries change source IP",
            ScheduleRetry,
            {"offsets": GMAIL, "changes_source_ip": True},
        ),
        Preset(
            "yahoo",
            "Yahoo retry times measured by Pagani et al. 2016",
            ScheduleRetry,
            {"offsets": YAHOO},
        ),
        Preset(
            "hotmail",
            "Hotmail retry times measured by Pagani et al. 2016, then every 4 min",
            ScheduleRetry,
            {"offsets": HOTMAIL},
        ),
        Preset(
            "gmx",
            "GMX/mail.com retry times measured by Pagani et al. 2016",
            ScheduleRetry,
            {"offsets": GMX},
        ),
        Preset(
            "aol",
            "AOL retry times measured by Pagani et al. 2016; gives up after the fourth retry",
            ScheduleRetry,
            {"offsets": AOL, "repeat_last_gap": False},
        ),
    )
}
"""Every named policy, by name. Webmail presets (gmail ... aol) are :class:`ScheduleRetry`."""

CUSTOM = Preset("custom", "A schedule given in the scenario file", ScheduleRetry)
"""A custom schedule (``retry = { offsets = [...], lifetime = ... }``)."""


def make_retry_policy(
    spec: str | Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    rng: Generator | None = None,
) -> RetryPolicy:
    """Build a retry policy from a preset name or a custom schedule.

    ``spec`` is a name from :data:`PRESETS` (case and ``_``/``-`` insensitive), a mapping
    ``{"preset": name, <param>: value, ...}``, or a custom schedule
    ``{"offsets": [...], "lifetime": ..., "repeat_last_gap": bool}`` with offsets after
    the first attempt (see :class:`ScheduleRetry`; lifetime defaults to 5 d). ``params``
    override the preset's defaults; durations may be seconds or text such as "500ms",
    "90s", "15m", "2h", "5d". ``rng`` is needed only by Exim H rules.

    Raises ``ValueError`` with a one-line message on an unknown preset or a malformed
    spec, and its subclass ``RetryParamsError`` on an unknown parameter (naming it and
    the known ones) or a bad value.
    """
    preset, given = resolve_retry(spec, params)
    return preset.build(given, rng)


def retry_params(
    spec: str | Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> RetryParams:
    """The typed parameters ``make_retry_policy(spec, params)`` would use, without building
    the policy; raises as it does."""
    preset, given = resolve_retry(spec, params)
    return preset.validate(given)


def resolve_retry(
    spec: str | Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> tuple[Preset, dict[str, Any]]:
    """The preset a spec names and the parameters given for it (``params`` win over
    parameters written in a mapping spec). Raises ``ValueError`` on a bad spec."""
    given: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        given.update(spec)
        if "preset" in given:
            name = given.pop("preset")
        elif "offsets" in given:
            given.update(params or {})
            return CUSTOM, given
        else:
            raise ValueError(
                "a retry mapping needs 'preset' or 'offsets' "
                f"(got keys: {', '.join(map(str, spec)) or 'none'})"
            )
    else:
        name = spec
    if not isinstance(name, str):
        raise ValueError(f"retry preset must be a name, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ValueError(f"unknown retry preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    given.update(params or {})
    return PRESETS[key], given
