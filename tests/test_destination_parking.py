"""Parked destinations: an idle destination dropped and restored on demand decides as one
that was never dropped, and a scheduler keeps objects only for destinations in use."""

from __future__ import annotations

import importlib.util
import math
import types

import numpy as np
import pytest

from mailnet import compiled, smtp
from mailnet.model.destinations import Destination, DestinationScheduler
from mailnet.model.message import Delivery, Message

MESSAGE = Message(0, "a@isp.example", "ham", "isp", is_dsn=False, created_at=0.0)
DOMAINS = [f"d{i}.example" for i in range(6)]


def _from_source(module: str) -> types.ModuleType:
    """A fresh copy of ``module`` run from its source: a class to subclass even where the
    model runs compiled (``mailnet.compiled``), whose classes Python cannot subclass."""
    spec = importlib.util.spec_from_file_location(f"{module}_source", compiled.source(module))
    assert spec is not None
    assert spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


class NeverParks(_from_source("mailnet.model.destinations").DestinationScheduler):
    """The reference: every destination keeps its object for the whole run."""

    def _park(self, dest: Destination) -> None:
        pass


def _pair(**params) -> list[tuple[DestinationScheduler, list]]:
    out = []
    for cls in (DestinationScheduler, NeverParks):
        started: list[tuple[Delivery, Destination]] = []
        s = cls(lambda d, dest, log=started: log.append((d, dest)), **params)
        out.append((s, started))
    return out


def _state(s: DestinationScheduler, name: str) -> tuple:
    """What decides: without a failed-cohort limit a destination never dies, and its
    cohorts and reason are never read."""
    d = s.destination(name)
    state = (d.window, d.dead, d.busy, len(d.todo), d.waiting)
    if s.failed_cohort_limit == math.inf:
        return state
    return (*state, d.fail_cohorts, d.reason)


POSTFIX = {
    "max_connections": 4,
    "destination_concurrency_limit": 7,
    "initial_destination_concurrency": 2,
    "failed_cohort_limit": 1.0,
    "negative_feedback": 1.0,
    "positive_feedback": 1.0,
    "dead_time": 300.0,
}
UNTHROTTLED = POSTFIX | {
    "destination_concurrency_limit": 3,
    "initial_destination_concurrency": 3,
    "failed_cohort_limit": math.inf,
    "negative_feedback": 0.0,
    "positive_feedback": 0.0,
}


@pytest.mark.parametrize(("params", "seed"), [(POSTFIX, 1), (POSTFIX, 2), (UNTHROTTLED, 3)])
def test_parked_destinations_decide_as_ones_never_dropped(params, seed):
    """A random run of offers, successes, site failures, deaths and revivals gives the
    same starts, the same refusals and the same states with parking as without."""
    (parking, started), (reference, ref_started) = _pair(**params)
    rng = np.random.default_rng(seed)
    dead: list[tuple[Destination, Destination]] = []
    parks = 0
    for i in range(6000):
        op = rng.random()
        if op < 0.4:
            domain = DOMAINS[int(rng.integers(len(DOMAINS)))]
            delivery = Delivery(MESSAGE, domain, [f"u{i}@{domain}"], 0.0)
            assert parking.offer(delivery) == reference.offer(delivery)
        elif op < 0.93 and started:
            k = int(rng.integers(len(started)))
            (delivery, dest), (ref_delivery, ref_dest) = started.pop(k), ref_started.pop(k)
            assert delivery is ref_delivery
            if rng.random() < 0.7:
                parking.succeeded(dest)
                reference.succeeded(ref_dest)
            else:
                reply = smtp.Reply(421, "4.4.2", f"failure {i}")
                dest.reason = ref_dest.reason = reply
                held = parking.failed(dest)
                assert held == reference.failed(ref_dest)
                if held is not None:
                    dead.append((dest, ref_dest))
            before = len(parking._destinations)
            parking.done(dest)
            reference.done(ref_dest)
            parks += len(parking._destinations) < before
        elif dead:
            dest, ref_dest = dead.pop(0)
            parking.revive(dest)
            reference.revive(ref_dest)
        assert [(d, x.name) for d, x in started] == [(d, x.name) for d, x in ref_started]
        assert parking.busy == reference.busy
    assert parks > 500  # destinations were parked and restored often
    for name in DOMAINS:
        assert _state(parking, name) == _state(reference, name)


def test_a_scheduler_keeps_objects_only_for_destinations_in_use():
    s = DestinationScheduler(lambda d, dest: None, **POSTFIX)
    for domain in DOMAINS:
        s.offer(Delivery(MESSAGE, domain, [f"u@{domain}"], 0.0))
    a, b, c = (s.destination(d) for d in DOMAINS[:3])
    s.succeeded(a)
    s.done(a)  # idle, window widened: parked as its window
    s.done(b)  # idle, as new: dropped
    c.reason = smtp.Reply(421, "4.4.2", "timeout")
    assert s.failed(c) is None
    s.done(c)  # idle with a failed cohort: parked whole
    assert set(s._destinations) == set(DOMAINS[3:])
    assert s._parked == {DOMAINS[0]: 3, DOMAINS[2]: (1.0, 0.5, c.reason)}
    assert s.destination(DOMAINS[0]).window == 3
    assert s.destination(DOMAINS[1]).window == 2
    restored = s.destination(DOMAINS[2])
    assert (restored.window, restored.fail_cohorts, restored.reason) == (1.0, 0.5, c.reason)
    assert not s._parked
