"""Named random streams: one independent numpy Generator per source of randomness.

``RandomStreams(seed).get("senders.users.arrivals")`` always returns the same stream for
the same seed and name, whatever other streams exist or how many draws they made. A
name's UTF-8 bytes, read as one integer together with their length, are the spawn key
of a ``SeedSequence`` rooted at the seed: an injective derivation (no hash, so two names
never share a stream, and it is stable across processes, unlike ``hash()``). Adding a
source or changing one parameter does not shift the draws of unrelated sources, and
replication r of every grid point sees the same inputs (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain

import numpy as np


class RandomStreams:
    """A factory of reproducible, independent generators keyed by name."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        """The generator for ``name`` (created on first use, then shared)."""
        stream = self._streams.get(name)
        if stream is None:
            sequence = np.random.SeedSequence(self.seed, spawn_key=stream_key(name))
            stream = np.random.Generator(np.random.PCG64(sequence))
            self._streams[name] = stream
        return stream


def stream_key(name: str) -> tuple[int, int]:
    """The spawn key of stream ``name``: its bytes as one integer, and their count (so
    that names differing only in trailing NUL bytes differ too)."""
    data = name.encode("utf-8")
    return (len(data), int.from_bytes(data, "little"))


class BlockDraws:
    """Scalar draws served from pre-drawn blocks: numpy scalar calls cost ~0.6 us each,
    a block of 4096 costs ~11 ns per value (des-performance.md).

    ``draw(n)`` gives a block of ``n`` values; the first block is drawn at once, each
    further one when the block before it is used up, so a stream's draws come at the same
    points of the run whoever shares it. :attr:`next` gives the next value as a Python
    float: a C-level iterator over the blocks as lists, so a value costs no Python frame.

    ``first``: the size of the first block, doubling up to ``size`` (default: ``size``
    from the start). For a draw whose values come one by one from the stream (uniform,
    exponential, normal, lognormal), blocks of any sizes give the same values in the
    same order; thousands of rarely used streams (one per MX host of a large world) then
    hold a few values each, not 32 KB.
    """

    __slots__ = ("next",)

    def __init__(
        self, draw: Callable[[int], np.ndarray], size: int = 4096, first: int | None = None
    ):
        start = size if first is None else min(first, size)
        self.next: Callable[[], float] = chain.from_iterable(
            _blocks(draw, _as_floats(draw(start)), start, size)
        ).__next__


def _blocks(
    draw: Callable[[int], np.ndarray], first: list[float], start: int, size: int
) -> Iterator[list[float]]:
    """``first`` (of ``start`` values), then a block drawn each time the one before is used
    up, each twice the size of the one before, up to ``size``."""
    yield first
    n = start
    while True:
        n = min(2 * n, size)
        yield _as_floats(draw(n))


def _as_floats(block: np.ndarray) -> list[float]:
    """The block as Python floats (integer draws too, as ``float(value)`` gives them)."""
    return block.astype(float, copy=False).tolist()
