"""Faults that last: on/off episodes per entity, drawn lazily from keyed random numbers.

A full mailbox stays full for hours and a domain's DNS breaks for an episode, so a retry
meets the state it left. ``Episodes`` is an alternating renewal process per key (a
mailbox address, a domain): exponential "on" periods of mean ``mean_on`` and "off"
periods of mean ``mean_on * (1 - share) / share``, so that a share ``share`` of the keys
is on at any time. It starts stationary: a key is on at t=0 with probability ``share``
(the residual of an exponential period is exponential again).

Draws are keyed, not taken from a shared stream: the k-th number of key ``name`` is
splitmix64 of a 64-bit seed derived from ``(stream, name)`` plus k. So a key's whole
timeline is fixed by the run's seed, the stream name and the key alone: it stays the same
when other traffic, other keys or the order of queries change. A key's state is created
on its first query (one blake2b hash, about 1 us) and advanced only past the periods
that ended, so a query costs a dict lookup and a comparison.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import numpy as np

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_TO_UNIT = 2.0**-53


def _mix(x: int) -> int:
    """splitmix64's output function: a bijection of 64-bit integers with full avalanche."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform(seed: int, k: int) -> float:
    """The k-th uniform number in [0, 1) of the keyed sequence ``seed``."""
    return (_mix((seed + (k + 1) * _GAMMA) & _MASK) >> 11) * _TO_UNIT


def stream_key(rng: np.random.Generator, name: str) -> bytes:
    """A 16-byte key derived from ``rng``'s seed sequence and ``name``, without drawing
    from ``rng`` (its other users see the same numbers)."""
    seq = rng.bit_generator.seed_seq
    assert isinstance(seq, np.random.SeedSequence)
    data = name.encode("utf-8")
    child = np.random.SeedSequence(
        seq.entropy, spawn_key=(*seq.spawn_key, len(data), int.from_bytes(data, "little"))
    )
    return child.generate_state(4, np.uint32).tobytes()


def key_seed(key: bytes, name: str) -> int:
    """The 64-bit seed of ``name``'s sequence under ``key``."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "little")


class Episodes:
    """On/off episodes per key (see the module). ``key`` comes from ``stream_key``.

    ``share`` in (0, 1]: 1 means always on. Queries of one key must come at times that do
    not decrease (simulated time), as the state moves forward only.
    """

    __slots__ = ("_key", "_mean_off", "_mean_on", "_share", "_state")

    def __init__(self, share: float, mean_on: float, key: bytes):
        if not 0.0 < share <= 1.0 or mean_on <= 0.0:
            raise ValueError("share must be in (0, 1] and mean_on positive")
        self._share = share
        self._mean_on = mean_on
        self._mean_off = mean_on * (1.0 - share) / share
        self._key = key
        # name -> [seed, draws used, on, end of the current period (seconds)]
        self._state: dict[str, list] = {}

    def on(self, name: str, t: float) -> bool:
        """Whether ``name`` is in an episode at ``t`` (seconds)."""
        state = self._state.get(name)
        if state is None:
            if self._share >= 1.0:
                return True
            seed = key_seed(self._key, name)
            on = uniform(seed, 0) < self._share
            state = [seed, 1, on, 0.0]
            state[3] = self._period(state)
            self._state[name] = state
        while state[3] <= t:
            state[2] = not state[2]
            state[3] += self._period(state)
        return state[2]

    def _period(self, state: list) -> float:
        """The length of the next period of ``state`` (on or off, by ``state[2]``)."""
        u = uniform(state[0], state[1])
        state[1] += 1
        mean = self._mean_on if state[2] else self._mean_off
        return -mean * math.log1p(-u)

    def windows(self, name: str, until: float) -> list[tuple[float, float]]:
        """``name``'s on periods ``[start, end)`` that begin before ``until``, from a fresh
        state (for inspection and tests; the state used by ``on`` is untouched)."""
        if self._share >= 1.0:
            return [(0.0, math.inf)]
        seed = key_seed(self._key, name)
        state = [seed, 1, uniform(seed, 0) < self._share, 0.0]
        out: list[tuple[float, float]] = []
        start = 0.0
        while start < until:
            end = start + self._period(state)
            if state[2]:
                out.append((start, end))
            state[2] = not state[2]
            start = end
        return out


class Windows:
    """Scheduled windows ``[start, end)``, each for some keys or for all (``None``)."""

    __slots__ = ("_windows",)

    def __init__(self, windows: Iterable[tuple[float, float, frozenset[str] | None]]):
        self._windows = sorted(windows, key=lambda w: (w[0], w[1]))

    def on(self, name: str, t: float) -> bool:
        """Whether a window covering ``name`` contains ``t``."""
        for start, end, keys in self._windows:
            if start > t:
                return False
            if t < end and (keys is None or name in keys):
                return True
        return False
