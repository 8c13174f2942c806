"""Stepped generators and session slots keep the exact event order of SimPy processes and
``simpy.Resource``: the same clients, run both ways on a grid of times full of ties, log
the same timeline."""

from __future__ import annotations

import random

import simpy

from mailnet.model import stepping
from mailnet.model.session_slots import SessionSlots


def _plan(seed: int, clients: int, short: bool) -> list[tuple[float, float, float]]:
    """(arrival, connect, service) per client, on a coarse grid so that many events tie;
    ``short``: half the sessions end without a service time (every recipient refused)."""
    rng = random.Random(seed)
    if short:
        return [
            (rng.randint(0, 4) * 0.5, rng.choice([0.0, 0.5]), rng.choice([0, 0, 0.5, 1.0]))
            for _ in range(clients)
        ]
    return [
        (rng.randint(0, 6) * 0.5, rng.choice([0.0, 0.5]), rng.randint(0, 4) * 0.5)
        for _ in range(clients)
    ]


def _run(
    lean: bool, seed: int, capacity: int = 2, short: bool = False
) -> list[tuple[str, int, float, int, int]]:
    env = simpy.Environment()
    log: list[tuple[str, int, float, int, int]] = []
    slots = SessionSlots(env, capacity) if lean else simpy.Resource(env, capacity=capacity)

    def state() -> tuple[int, int]:
        return slots.count, len(slots.queue)

    def client(i: int, connect: float, service: float):
        log.append(("start", i, env.now, *state()))
        yield connect if lean else env.timeout(connect)
        request = slots.take() if lean else slots.request()
        log.append(("request", i, env.now, *state()))
        try:
            if request is not None:  # None: a slot taken at once, without an event
                yield request
            log.append(("granted", i, env.now, *state()))
            if service > 0:
                yield service if lean else env.timeout(service)
        finally:
            if lean:
                slots.release()
            else:
                slots.release(request)
            log.append(("released", i, env.now, *state()))

    def arrivals():
        for i, (at, connect, service) in enumerate(_plan(seed, 40, short)):
            if at > env.now:
                yield env.timeout(at - env.now)
            if lean:
                stepping.start(env, client(i, connect, service))
            else:
                env.process(client(i, connect, service))

    def resize():  # a capacity change in the middle of the ties, as set_sessions does
        yield env.timeout(1.5)
        if lean:
            slots.capacity = 4
            slots.grant_first()
        else:
            slots._capacity = 4
            slots._trigger_put(None)
        log.append(("resize", -1, env.now, *state()))

    def ticker():  # a SimPy process logging at the same times
        while env.now < 6:
            log.append(("tick", -1, env.now, *state()))
            yield env.timeout(0.5)

    env.process(arrivals())
    env.process(resize())
    env.process(ticker())
    env.run()
    return log


def test_stepped_clients_and_slots_log_simpys_timeline() -> None:
    for seed in range(20):
        simpy_log, lean_log = _run(False, seed), _run(True, seed)
        assert len(simpy_log) > 100
        assert lean_log == simpy_log, seed


def test_slots_taken_and_released_without_events_keep_simpys_timeline() -> None:
    """Short sessions on one or two slots: releases tie with waiting connections, where a
    release that skipped its event when others were due at the same time would grant a
    waiter late."""
    for capacity in (1, 2):
        for seed in range(40):
            simpy_log = _run(False, seed, capacity, short=True)
            assert _run(True, seed, capacity, short=True) == simpy_log, (capacity, seed)


def test_a_stopped_stepper_does_nothing_more() -> None:
    env = simpy.Environment()
    seen: list[float] = []

    def ticks():
        while True:
            yield 1.0
            seen.append(env.now)

    stepper = stepping.start(env, ticks())
    env.run(until=3.5)
    stepper.stop()
    env.run(until=10)
    assert seen == [1.0, 2.0, 3.0]


def test_a_generator_ends_at_done_as_at_its_return():
    """Yielding ``DONE`` ends a stepped generator where it is, as returning does: nothing
    after it runs, and no event is left for it."""
    env = simpy.Environment()
    log: list[tuple[str, float]] = []

    def ends_at_done():
        yield 1.0
        log.append(("done", env.now))
        yield stepping.DONE
        log.append(("after done", env.now))  # never reached

    def returns():
        yield 2.0
        log.append(("returned", env.now))

    stepping.start(env, ends_at_done())
    stepping.start(env, returns())
    env.run()
    assert log == [("done", 1.0), ("returned", 2.0)]
    assert env.peek() == float("inf")
