"""Mail clients (MUAs): populations of senders that compose and submit messages.

A ``SenderPopulation`` of ``count`` clients sends as one Poisson stream of rate
``count * rate`` (each message from a uniformly chosen client), or replays explicit
messages or a CSV trace. Inter-arrival times are drawn in blocks. Each message has
1 + Poisson(recipients - 1) recipients, each in a domain drawn by weight; a fraction
``invalid_recipients`` of them names a mailbox that does not exist and a fraction ``traps``
a spam trap. Campaigns add bursts: ``size`` messages at uniform random times within
``over`` seconds, every ``every`` seconds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from mailnet.errors import key_path
from mailnet.model import stepping
from mailnet.policies.sending_cycle import SendingClock, slot_multipliers
from mailnet.randomness import BlockDraws
from mailnet.scenario import Campaigns, Domain, SenderGroup
from mailnet.scenario.traces import address_problem, domain_names, read_trace, trace_path

Submit = Callable[[str, list[str]], object]
"""``submit(sender_address, recipients)``: hand a message to the provider's MSA (what it
returns is not used)."""


class SenderPopulation:
    """The clients of one ``[senders.NAME]`` group."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        group: SenderGroup,
        *,
        domain: str,
        submit: Submit,
        rng: np.random.Generator,
        domains: dict[str, Domain],
        base_dir: Path | None = None,
        source: str = "<scenario>",
        campaign_rng: np.random.Generator,
    ):
        self.env = env
        self.name = name
        self.group = group
        self.domain = domain
        self._submit = submit
        self._rng = rng
        self._domains = domains
        self._recipients = self._recipient_drawer()
        self._stream: stepping.Stepper | None = None
        if group.campaigns is not None:
            env.process(self._campaigns(group.campaigns, campaign_rng))
        if group.rate is not None:
            total = group.count * group.rate
            if total > 0:
                self._stream = stepping.start(env, self._poisson(total))
        elif group.messages is not None:
            names = domain_names(domains)
            plan = [
                (m.at, self.address(m.sender), [address_problem(r, names)[1] for r in m.to])
                for m in group.messages
            ]
            env.process(self._replay(plan))
        elif group.trace is not None:
            env.process(self._replay(self._read_trace(group.trace, base_dir, source)))

    def address(self, index: int) -> str:
        """The envelope address of client ``index`` of this group."""
        return f"{self.name}{index}@{self.domain}"

    def _recipient_drawer(self):
        """A function giving the recipients of one generated message."""
        rng = self._rng
        group = self.group
        if not group.domains:
            return None
        names = list(group.domains)
        weights = np.array([group.domains[d] for d in names], dtype=float)
        # bisect on the floats gives numpy's searchsorted(side="right") index, at a
        # fraction of a numpy scalar call's cost
        cumulative = np.cumsum(weights / weights.sum()).tolist()
        uniforms = BlockDraws(rng.random)
        extra = group.recipients - 1.0
        counts = BlockDraws(lambda n: rng.poisson(extra, n)) if extra > 0 else None
        invalid, traps = group.invalid_recipients, group.traps
        default = Domain()
        users = [self._domains.get(d, default).users for d in names]
        last = len(names) - 1

        def draw() -> list[str]:
            n = 1 + (int(counts.next()) if counts is not None else 0)
            recipients = []
            for _ in range(n):
                k = min(bisect_right(cumulative, uniforms.next()), last)
                user = int(uniforms.next() * users[k])
                kind = uniforms.next() if invalid or traps else 1.0
                if kind < invalid:
                    recipients.append(f"nosuchuser{user}@{names[k]}")
                elif kind < invalid + traps:
                    recipients.append(f"trap{user}@{names[k]}")
                else:
                    recipients.append(f"u{user}@{names[k]}")
            # one recipient has no duplicate to drop
            return recipients if n == 1 else list(dict.fromkeys(recipients))

        return draw

    def set_rate(self, rate: float | None) -> None:
        """Send at ``rate`` per client and second from now on (a change during the run);
        the Poisson stream starts afresh, which memorylessness makes exact."""
        if self._stream is not None:
            self._stream.stop()
        total = self.group.count * (rate or 0.0)
        self._stream = stepping.start(self.env, self._poisson(total)) if total > 0 else None

    def _poisson(self, total_rate: float) -> stepping.Step:
        """The message stream, stepped (:mod:`~mailnet.model.stepping`): one event per
        message."""
        rng = self._rng
        gap = self._gaps(total_rate)
        senders = BlockDraws(lambda n: rng.integers(0, self.group.count, n))
        draw, submit, next_sender = self._recipients, self._submit, senders.next
        name, domain = self.name, self.domain
        while True:
            yield gap()
            # the address of client k (self.address), inlined: once per message
            submit(f"{name}{int(next_sender())}@{domain}", draw())

    def _gaps(self, total_rate: float) -> Callable[[], float]:
        """The time to the next message from now: exponential at ``total_rate``, or
        shaped by the group's daily and weekly ``cycle``."""
        rng = self._rng
        cycle = self.group.cycle
        if cycle is None:
            return BlockDraws(lambda n: rng.exponential(1.0 / total_rate, n)).next
        clock = SendingClock(slot_multipliers(cycle.hourly, cycle.weekly), total_rate)
        unit = BlockDraws(rng.standard_exponential)
        env = self.env
        return lambda: clock.next_time(env._now, unit.next()) - env._now

    def _campaigns(
        self, campaign: Campaigns, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, None]:
        """Bursts of ``size`` messages at uniform random times in ``[t, t + over)``."""
        env = self.env
        draw = self._recipients
        start = campaign.start
        while True:
            if start > env._now:
                yield env.timeout(start - env._now)
            times = (
                np.sort(start + rng.uniform(0.0, campaign.over, campaign.size))
                if campaign.over > 0
                else np.full(campaign.size, start)
            )
            senders = rng.integers(0, self.group.count, campaign.size)
            # Python floats and ints: event times are compared as floats everywhere
            for t, k in zip(times.tolist(), senders.tolist(), strict=True):
                if t > env._now:
                    yield env.timeout(t - env._now)
                self._submit(self.address(k), draw())
            start += campaign.every

    def _replay(self, plan: list[tuple[float, str, list[str]]]):
        env = self.env
        for at, sender, recipients in sorted(plan, key=lambda p: p[0]):
            if at > env._now:
                yield env.timeout(at - env._now)
            self._submit(sender, list(dict.fromkeys(recipients)))

    def _read_trace(
        self, trace: str, base_dir: Path | None, source: str
    ) -> list[tuple[float, str, list[str]]]:
        """The trace's messages, checked as at load time (``mailnet.scenario.traces``)."""
        key = key_path(["senders", self.name, "trace"])
        rows = read_trace(
            trace_path(trace, base_dir), self.group, domain_names(self._domains), source, key
        )
        return [
            (at, sender if isinstance(sender, str) else self.address(sender), recipients)
            for at, sender, recipients in rows
        ]
