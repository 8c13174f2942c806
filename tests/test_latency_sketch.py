"""``LatencySketch`` adds its values to the DDSketch a block at a time: every bucket, count,
total and quantile must be those of adding them one by one with the DDSketch's own
``add``, including values on and next to a bucket's boundary, where numpy's logarithm and
the C library's can round differently."""

from __future__ import annotations

import numpy as np
from ddsketch import DDSketch

from mailnet import metrics  # noqa: F401  (metrics first: it imports sketch via cohort)
from mailnet.sketch import PENDING, RELATIVE_ACCURACY, LatencySketch, _add_to_sketch


def _buckets(sketch: DDSketch) -> dict[int, float]:
    store = sketch._store
    return {i + store.offset: n for i, n in enumerate(store.bins) if n}


def _boundaries(sketch: DDSketch) -> np.ndarray:
    """Every bucket boundary from 1 microsecond to 30 years and its two neighbours on
    each side: where a last-bit difference of the logarithm would change the key."""
    mapping = sketch._mapping
    keys = np.arange(-3000, 4500)
    edges = np.power(2.0, keys / mapping._multiplier)
    down = np.nextafter(edges, 0)
    up = np.nextafter(edges, np.inf)
    return np.concatenate(
        [edges, down, up, np.nextafter(down, 0), np.nextafter(up, np.inf), [0.0, 1e-320]]
    )


def test_block_adds_give_the_buckets_of_one_by_one_adds():
    one = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    block = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    rng = np.random.default_rng(3)
    values = np.concatenate([_boundaries(one), rng.lognormal(3, 3, 50_000)])
    for value in values.tolist():
        one.add(value)
    for part in np.array_split(values, 7):
        _add_to_sketch(block, part)
    assert _buckets(block) == _buckets(one)
    assert (block.count, block._zero_count) == (one.count, one._zero_count)
    for q in np.linspace(0, 1, 201):
        assert block.get_quantile_value(q) == one.get_quantile_value(q)


def test_buffered_sketch_equals_adding_one_by_one():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.exponential(300, 3 * PENDING + 17), np.zeros(5)]).tolist()
    rng.shuffle(values)
    sketch = LatencySketch()
    reference = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    total, peak = 0.0, -1.0
    for value in values:
        sketch.add(value)
        reference.add(value)
        total += value
        peak = max(peak, value)
    assert sketch.count == len(values)
    assert len(sketch.pending) < PENDING  # the buffer stays bounded
    assert (sketch.total, sketch.peak) == (total, peak)  # the same order of additions
    assert _buckets(sketch.sketch) == _buckets(reference)
    other = LatencySketch()
    other.add(7.5)
    sketch.merge(other)
    assert (sketch.count, sketch.total) == (len(values) + 1, total + 7.5)
    assert sketch.percentiles()["p99"] == sketch.quantile(0.99)
