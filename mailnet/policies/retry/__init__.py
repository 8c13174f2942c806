"""Retry policies of real MTAs and webmail senders: when a deferred message is tried again.

``base`` holds the policy protocol and the typed parameters; one module per MTA family
(``postfix``, ``exim``, ``qmail``, ``sendmail``, ``exchange``, ``rfc5321``, and
``schedule`` for fixed schedules with the measured ``webmail`` ones); ``registry`` names
the presets and builds policies (``make_retry_policy``); ``inspect`` traces attempt times
and summarises the presets for ``mailnet presets``. Presets reproduce mail-facts.md §1-6;
all times are seconds (floats).
"""

from mailnet.policies.retry.base import PolicyBase, RetryParams, RetryParamsError, RetryPolicy
from mailnet.policies.retry.exchange import (
    ExchangeOnlineParams,
    ExchangeOnlineRetry,
    ExchangeParams,
    ExchangeRetry,
)
from mailnet.policies.retry.exim import EximParams, EximRetry
from mailnet.policies.retry.inspect import (
    AttemptTrace,
    attempt_offsets,
    describe_presets,
    expiry_time,
    presets_table,
    trace_attempts,
)
from mailnet.policies.retry.postfix import PostfixParams, PostfixRetry
from mailnet.policies.retry.qmail import QmailParams, QmailRetry
from mailnet.policies.retry.registry import (
    PRESETS,
    Preset,
    make_retry_policy,
    resolve_retry,
    retry_params,
)
from mailnet.policies.retry.rfc5321 import Rfc5321Params, Rfc5321Retry
from mailnet.policies.retry.schedule import ScheduleParams, ScheduleRetry
from mailnet.policies.retry.sendmail import SendmailParams, SendmailRetry

__all__ = [
    "PRESETS",
    "AttemptTrace",
    "ExchangeOnlineParams",
    "ExchangeOnlineRetry",
    "ExchangeParams",
    "ExchangeRetry",
    "EximParams",
    "EximRetry",
    "PolicyBase",
    "PostfixParams",
    "PostfixRetry",
    "Preset",
    "QmailParams",
    "QmailRetry",
    "RetryParams",
    "RetryParamsError",
    "RetryPolicy",
    "Rfc5321Params",
    "Rfc5321Retry",
    "ScheduleParams",
    "ScheduleRetry",
    "SendmailParams",
    "SendmailRetry",
    "attempt_offsets",
    "describe_presets",
    "expiry_time",
    "make_retry_policy",
    "presets_table",
    "resolve_retry",
    "retry_params",
    "trace_attempts",
]
