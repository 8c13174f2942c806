"""The SMTP client of one sending hop: its retry preset's client (connect timeout, host
limits, concurrency, memory of failing hosts; :mod:`mailnet.policies.retry.client`) with
the keys the hop sets itself over it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailnet.model.destinations import DestinationScheduler, Start, dead_time
from mailnet.model.host_status import HostMemory, host_memory
from mailnet.policies.retry import RetryPolicy
from mailnet.policies.retry.client import ClientParams
from mailnet.scenario import Provider, Server

SchedulerFactory = Callable[[Start], DestinationScheduler]
"""Builds the MTA's destination scheduler around its ``start`` callback."""


@dataclass(frozen=True, slots=True)
class HopClient:
    """What the outbound MTA needs of its client: the destination ``scheduler`` factory,
    ``connect_timeout`` (seconds), ``mx_address_limit`` and ``mx_session_limit`` (``None``:
    no limit), the ``memory`` of failing hosts (``None``: none) and ``split_recipients``
    (one delivery per recipient)."""

    scheduler: SchedulerFactory
    connect_timeout: float
    mx_address_limit: int | None
    mx_session_limit: int | None
    memory: HostMemory | None
    split_recipients: bool

    @classmethod
    def for_provider(cls, config: Provider, policy: RetryPolicy) -> HopClient:
        """A provider's client: a client key it sets (``smtp_connect_timeout``,
        ``smtp_mx_address_limit``, ``smtp_mx_session_limit``, ``max_connections``) wins
        over the preset's; the postfix preset's values are the keys' defaults."""
        client = policy.client()
        given = config.model_fields_set

        def pick(key: str, preset: Any) -> Any:
            return getattr(config, key) if key in given else preset

        wait = dead_time(policy)
        total = pick("max_connections", client.max_connections or config.max_connections)
        return cls(
            _scheduler(
                client,
                total,
                wait,
                lambda start: DestinationScheduler.for_provider(start, config, wait),
            ),
            pick("smtp_connect_timeout", client.connect_timeout),
            pick("smtp_mx_address_limit", client.mx_address_limit),
            pick("smtp_mx_session_limit", client.mx_session_limit),
            host_memory(client, policy),
            client.recipients_per_delivery == 1,
        )

    @classmethod
    def for_relay(cls, config: Server, policy: RetryPolicy) -> HopClient:
        """A backup MX's or relay's client: its preset's, with the server's
        ``max_connections`` when it sets it (else the client's total, else 20)."""
        client = policy.client()
        wait = dead_time(policy)
        total = config.max_connections
        if "max_connections" not in config.model_fields_set and client.max_connections:
            total = client.max_connections  # qmail's concurrencyremote
        return cls(
            _scheduler(
                client,
                total,
                wait,
                lambda start: DestinationScheduler.for_relay(start, total, wait),
            ),
            client.connect_timeout,
            client.mx_address_limit,
            client.mx_session_limit,
            host_memory(client, policy),
            client.recipients_per_delivery == 1,
        )


def _scheduler(
    client: ClientParams, total: int, wait: float, postfix: SchedulerFactory
) -> SchedulerFactory:
    """The scheduler factory of ``client``'s concurrency model: ``postfix`` (qmgr's windows
    and dead destinations), else fixed limits with no feedback and no dead destinations,
    ``total`` deliveries at once."""
    if client.concurrency == "postfix":
        return postfix
    limit = total
    if client.concurrency == "per-destination" and client.destination_limit is not None:
        limit = client.destination_limit

    def unthrottled(start: Start) -> DestinationScheduler:
        return DestinationScheduler(
            start,
            max_connections=total,
            destination_concurrency_limit=limit,
            initial_destination_concurrency=limit,
            failed_cohort_limit=math.inf,
            negative_feedback=0.0,
            positive_feedback=0.0,
            dead_time=wait,
        )

    return unthrottled
