"""Our partitioner must agree with Kafka's, or a user's events and table row split apart."""

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streams.core.partitioning import murmur2, partition_for

# Vectors from Kafka's own UtilsTest (the Java client), as signed 32-bit ints.
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _random_keys(count: int) -> list[bytes]:
    rng = random.Random(20261125)  # noqa: S311 - test data
    keys = [rng.randbytes(rng.randrange(0, 64)) for _ in range(count)]
    keys += [f"user-{i}".encode() for i in range(200)]
    keys += ["Zoë-東京-🙂".encode(), b"", b"\x00", b"\xff" * 7]
    return keys


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS.items())
def test_murmur2_matches_the_java_client(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_a_known_user_lands_where_java_puts_it() -> None:
    assert partition_for(b"u1", 12) == 4


def test_murmur2_matches_aiokafka_for_many_keys() -> None:
    for key in _random_keys(2_000):
        # aiokafka returns the same 32 bits unsigned; we return them signed, like Java.
        assert murmur2(key) & 0xFFFFFFFF == aiokafka_murmur2(key), key
        assert -(2**31) <= murmur2(key) < 2**31


@pytest.mark.parametrize("partitions", [1, 2, 3, 8, 12, 64, 1000])
def test_partition_for_matches_aiokafkas_default_partitioner(partitions: int) -> None:
    all_partitions = list(range(partitions))
    for key in _random_keys(500):
        expected = DefaultPartitioner()(key, all_partitions, all_partitions)
        assert partition_for(key, partitions) == expected, key
