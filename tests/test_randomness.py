"""Named random streams: reproducible per name, independent across names."""

import zlib

import numpy as np

from mailnet.randomness import BlockDraws, RandomStreams, stream_key


def test_same_seed_and_name_give_the_same_stream():
    a = RandomStreams(7).get("servers.mx.outages").random(5)
    b = RandomStreams(7).get("servers.mx.outages").random(5)
    assert np.array_equal(a, b)


def test_a_stream_does_not_depend_on_other_streams_or_their_draws():
    lone = RandomStreams(7).get("dns").random(3)
    busy = RandomStreams(7)
    busy.get("mailboxes").random(1000)
    assert np.array_equal(busy.get("dns").random(3), lone)


def test_names_that_collide_under_crc32_get_different_streams():
    # a classic crc32 collision: a 32-bit hash of the name would give both one stream
    assert zlib.crc32(b"plumless") == zlib.crc32(b"buckeroo")
    streams = RandomStreams(1)
    assert not np.array_equal(streams.get("plumless").random(4), streams.get("buckeroo").random(4))


def test_stream_keys_are_injective():
    names = ["a", "a\x00", "\x00a", "", "servers.mx1", "servers.mx1.", "é", "e\u0301"]
    assert len({stream_key(n) for n in names}) == len(names)


def test_block_draws_draw_each_block_when_the_one_before_is_used_up():
    # two block streams sharing one generator interleave their blocks as drawn: the first
    # at construction, each further one at the draw that needs it
    rng = np.random.default_rng(3)
    a = BlockDraws(rng.random, size=3)
    b = BlockDraws(lambda n: rng.integers(0, 100, n), size=2)
    got = [a.next() for _ in range(3)] + [b.next() for _ in range(3)] + [a.next()]
    ref = np.random.default_rng(3)
    a1, b1, b2, a2 = ref.random(3), ref.integers(0, 100, 2), ref.integers(0, 100, 2), ref.random(3)
    assert got == [*a1.tolist(), *b1.tolist(), b2[0], a2[0]]
    assert all(type(v) is float for v in got)  # integer draws come as floats too
