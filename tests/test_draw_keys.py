"""Message draw keys computed in blocks with numpy: the same keys, and so the same draws,
as :func:`mix64` one by one."""

from __future__ import annotations

import random

import numpy as np

from mailnet.model.message import (
    KEY_BLOCK,
    KEY_BLOCK_MAX,
    SMALL_INDEX,
    MessageFactory,
    draw_keys,
    group_key,
    message_uniform,
    mix64,
    mix64_block,
)
from mailnet.records import MessageTable

MASK = (1 << 64) - 1


def test_block_mix_is_mix64():
    rng = random.Random(7)
    values = [0, 1, MASK, MASK - 1, 1 << 63, (1 << 63) - 1] + [
        rng.getrandbits(64) for _ in range(2000)
    ]
    mixed = mix64_block(np.array(values, dtype=np.uint64)).tolist()
    assert mixed == [mix64(v) for v in values]


def test_draw_keys_are_the_keyed_mix_of_each_rank():
    group = group_key("users")
    assert draw_keys(group, 1, 200) == [mix64(group ^ mix64(r)) for r in range(1, 201)]
    assert draw_keys(MASK, 10**12, 3) == [mix64(MASK ^ mix64(r)) for r in range(10**12, 10**12 + 3)]


def test_factory_keys_across_blocks():
    """A group's n-th message (from 1) has key ``mix64(group ^ mix64(n))``, on either side
    of a block's end, whatever other groups send in between."""
    factory = MessageFactory(None, MessageTable())  # type: ignore[arg-type]
    factory.env = type("Env", (), {"_now": 0.0})()
    keys: dict[str, list[int]] = {"a": [], "b": []}
    for i in range(2 * KEY_BLOCK + 5):
        for group in ("a", "b") if i % 3 else ("a",):
            message = factory.new(
                f"{group}@isp.example", "ham", "isp", ["u@dest.example"], is_dsn=False, group=group
            )
            keys[group].append(message.draw_key)
    for group, drawn in keys.items():
        g = group_key(group)
        assert drawn == [mix64(g ^ mix64(n)) for n in range(1, len(drawn) + 1)]


def test_factory_keys_as_blocks_grow():
    """A group's blocks grow with the messages it sends, up to ``KEY_BLOCK_MAX``; its keys
    stay those of its ranks through every change of size."""
    factory = MessageFactory(None, MessageTable())  # type: ignore[arg-type]
    factory.env = type("Env", (), {"_now": 0.0})()
    n = 32 * KEY_BLOCK_MAX + 3 * KEY_BLOCK_MAX
    drawn = [
        factory.new(
            "a@isp.example", "ham", "isp", ["u@d.example"], is_dsn=False, group="a"
        ).draw_key
        for _ in range(n)
    ]
    g = group_key("a")
    assert drawn == [mix64(g ^ mix64(r)) for r in range(1, n + 1)]
    assert len(factory._keys["a"]) == KEY_BLOCK_MAX


def test_message_uniform_small_and_large_index():
    factory = MessageFactory(None, MessageTable())  # type: ignore[arg-type]
    factory.env = type("Env", (), {"_now": 0.0})()
    message = factory.new("s@isp.example", "ham", "isp", ["u@d.example"], is_dsn=False, group="g")
    stream = 0x1234_5678_9ABC_DEF0
    for index in (0, 1, SMALL_INDEX - 1, SMALL_INDEX, 1000):
        expected = (mix64(stream ^ message.draw_key ^ mix64(index)) >> 11) * 2.0**-53
        assert message_uniform(stream, message, index) == expected
