"""The partitioner puts a key exactly where Kafka's Java producer would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.records.partitioner import (
    RoundRobin,
    choose_partition,
    murmur2,
    partition_for_key,
    to_positive,
)

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2: the Java client's own vectors (signed 32-bit results).
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS)
def test_murmur2_matches_kafka_utils_test(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_to_positive_clears_the_sign_bit_rather_than_negating() -> None:
    assert to_positive(-973932308) == -973932308 & 0x7FFFFFFF == 1173551340
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0
    assert to_positive(5) == 5


def test_partition_for_key_is_to_positive_murmur2_mod_n() -> None:
    # "21" hashes negative: abs() would give a different partition than Kafka.
    assert partition_for_key(b"21", 16) == 1173551340 % 16 == 12
    assert abs(-973932308) % 16 != 12
    assert partition_for_key(b"abc", 7) == 479470107 % 7


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=10_000))
def test_partition_for_key_is_in_range_and_stable(key: bytes, n: int) -> None:
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert partition_for_key(key, n) == p


@given(st.binary(max_size=64))
def test_murmur2_is_a_signed_32_bit_int(key: bytes) -> None:
    assert -(2**31) <= murmur2(key) < 2**31


def test_explicit_partition_wins_over_the_key() -> None:
    rr = RoundRobin()
    assert choose_partition(explicit=3, key=b"21", partitions=16, topic="t", round_robin=rr) == 3


def test_keyless_records_spread_round_robin_per_topic() -> None:
    rr = RoundRobin()
    picks = [
        choose_partition(explicit=None, key=None, partitions=3, topic="a", round_robin=rr)
        for _ in range(6)
    ]
    assert picks == [0, 1, 2, 0, 1, 2]
    assert rr.next("b", 3) == 0  # another topic has its own counter
