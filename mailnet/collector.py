"""Python's cyclic garbage collector, paused while a world is built and run.

A run frees its garbage by reference counting alone: the objects it drops (messages,
deliveries, events, rows in flight) hold no reference cycles, and the cycles there are
(components holding each other's bound methods) live as long as the world.
``tests/test_collector.py`` checks this on the golden world and the baseline. The
collector finds nothing, but it still walks every young container each time 700 more
are allocated, and the whole heap (hundreds of thousands of objects in a large world) at
each full collection: in the generated internet of 10,000 domains that walk was a third
of the run's CPU time. Pausing it changes no result; the collector's state is restored
afterwards, so the world's own cycles are collected once it is dropped.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Automatic cyclic collection off inside the block, as it was after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
