"""Decoded batches kept for the next reader: same records, bounded memory, damage still found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.embedded.codec import HEADER_SIZE, read_prefix
from storage.embedded.decoded import Decoded, DecodedBatches
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.embedded.partition import Partition
from storage.errors import CorruptData, OffsetOutOfRange
from storage.records import NewRecord, Record, TopicConfig

pytestmark = pytest.mark.anyio


def batch(n: int, size: int = 100) -> Decoded:
    return Decoded.of([Record(i, 0, None, b"v") for i in range(n)], 0, 0, bytes(size))


def test_a_batch_payload_is_counted_once_and_only_without_headers() -> None:
    assert batch(3).payload == 3
    keyed = Decoded.of([Record(0, 0, b"key", b"value"), Record(1, 0, None, None)], 0, 0, bytes(90))
    assert keyed.payload == 8
    assert Decoded.of([Record(0, 0, None, b"v", (("h", b"x"),))], 0, 0, bytes(90)).payload is None


def test_the_cache_forgets_the_least_recently_read_batch_first() -> None:
    cache = DecodedBatches(budget_bytes=300)
    cache.put(1, 0, batch(1))
    cache.put(1, 1, batch(1))
    cache.put(1, 2, batch(1))
    assert cache.get(1, 0) is not None  # now the most recent
    cache.put(1, 3, batch(1))  # over budget: batch 1 goes
    assert cache.get(1, 1) is None
    assert all(cache.get(1, base) is not None for base in (0, 2, 3))
    assert cache.held_bytes == 300
    cache.put(1, 3, batch(1, size=50))  # a batch kept again replaces the first
    assert cache.held_bytes == 250


def test_the_cache_keys_on_the_partition_instance() -> None:
    cache = DecodedBatches(budget_bytes=1000)
    cache.put(1, 0, batch(2))
    assert cache.get(2, 0) is None  # another partition (or a re-created topic)
    cache.put(1, 5, batch(1, size=2000))  # larger than the whole budget: not kept
    assert cache.get(1, 5) is None
    cache.forget(1)
    assert (len(cache), cache.held_bytes) == (0, 0)


async def open_store(path: Path, cache_bytes: int) -> EmbeddedLogStore:
    options = EngineOptions(shards=1, decoded_cache_bytes=cache_bytes)
    return await EmbeddedLogStore.open(str(path), options=options)


async def test_reads_from_the_cache_serve_what_decoding_serves(tmp_path: Path) -> None:
    store = await open_store(tmp_path, 1 << 20)
    try:
        await store.create_topic("t", 1, TopicConfig())
        for b in range(5):
            batch = [NewRecord(f"{b}-{i}".encode(), b"k" if i % 2 else None) for i in range(7)]
            await store.append("t", 0, batch)
        cache = store._decoded
        assert cache is not None
        first = [await store.read("t", 0, o, max_records=9, max_bytes=40) for o in range(35)]
        hits = cache.hits
        again = [await store.read("t", 0, o, max_records=9, max_bytes=40) for o in range(35)]
        assert cache.hits > hits
        assert again == first
        assert [r.offset for r in first[3].records] == list(range(3, 12))
        assert len(cache) == 5
        await store.delete_topic("t")
        assert (len(cache), cache.held_bytes) == (0, 0)  # a deleted topic's batches go
    finally:
        await store.close()


def flip_byte(path: Path, position: int, mask: int) -> None:
    with path.open("r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ mask]))


async def test_a_read_of_cached_batches_goes_straight_to_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once read, batches are found again without walking the index or the chain."""
    store = await open_store(tmp_path, 1 << 20)
    try:
        await store.create_topic("t", 1, TopicConfig())
        for b in range(4):
            await store.append("t", 0, [NewRecord(b"%d-%d" % (b, i)) for i in range(5)])
        first = await store.read("t", 0, 5, max_records=100)
        walks: list[int] = []
        original = Partition._gather

        def counted(self: Partition, offset: int, stop: int, max_bytes: int) -> Any:
            walks.append(offset)
            return original(self, offset, stop, max_bytes)

        monkeypatch.setattr(Partition, "_gather", counted)
        again = await store.read("t", 0, 5, max_records=100)
        assert again == first
        assert walks == []
        partial = await store.read("t", 0, 5, max_records=7)  # ends inside a batch
        assert [r.offset for r in partial.records] == list(range(5, 12))
        assert walks == [10]  # the first batch came straight; the cut one the long way
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("where", "at", "mask"),
    [
        ("a record, under the CRC", HEADER_SIZE + 20, 0x10),
        ("the base offset, outside it", 7, 0x01),  # its low byte
        ("the length, outside it", 11, 0x40),
    ],
)
async def test_damage_after_a_batch_was_cached_is_still_detected(
    tmp_path: Path, where: str, at: int, mask: int
) -> None:
    """Damage that reaches the disk while the batch sits decoded in memory is
    reported by the next read, as it would be without the cache; the base offset
    and length are not under the CRC, and a batch found with them changed is
    never served, under any offset."""
    store = await open_store(tmp_path, 1 << 20)
    try:
        await store.create_topic("t", 1, TopicConfig())
        for b in range(3):
            await store.append("t", 0, [NewRecord(b"value-%d-%d" % (b, i)) for i in range(10)])
        assert len((await store.read("t", 0, 0, max_records=100)).records) == 30
        (segment,) = sorted(tmp_path.rglob("*.log"))
        _base, size = read_prefix(segment.read_bytes(), 0)
        flip_byte(segment, size + at, mask)  # in the second batch
        served = await store.read("t", 0, 0, max_records=100)
        assert [r.offset for r in served.records] == list(range(10))  # up to the damage
        with pytest.raises(CorruptData):
            await store.read("t", 0, 10, max_records=100)
    finally:
        await store.close()


async def test_batches_gone_to_retention_are_not_served_from_the_cache(tmp_path: Path) -> None:
    store = await open_store(tmp_path, 1 << 20)
    try:
        config = TopicConfig(segment_bytes=300, retention_ms=None)
        await store.create_topic("t", 1, config)
        for _ in range(6):
            await store.append("t", 0, [NewRecord(b"x" * 40) for _ in range(3)])
        cached = await store.read("t", 0, 0, max_records=100)
        assert len(cached.records) == 18
        limited = TopicConfig.from_dict({**config.to_dict(), "retention_bytes": 300})
        await store.update_topic_config("t", limited)
        assert await store.enforce_retention() > 0
        start = (await store.offsets("t", 0)).start_offset
        assert start > 0
        with pytest.raises(OffsetOutOfRange):
            await store.read("t", 0, 0, max_records=100)
        rest = await store.read("t", 0, start, max_records=100)
        assert [r.offset for r in rest.records] == list(range(start, 18))
    finally:
        await store.close()


new_records = st.builds(
    NewRecord,
    value=st.one_of(st.none(), st.binary(max_size=30)),
    key=st.one_of(st.none(), st.binary(max_size=8)),
    headers=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.binary(max_size=4)), max_size=1).map(
        tuple
    ),
    timestamp=st.integers(0, 2**40),  # given, so both stores hold the same records
)
reads = st.tuples(st.integers(0, 60), st.integers(1, 30), st.integers(1, 300))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(new_records, min_size=1, max_size=8), min_size=1, max_size=10),
    asked=st.lists(reads, min_size=1, max_size=12),
)
async def test_cached_reads_serve_exactly_what_uncached_reads_serve(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[NewRecord]],
    asked: list[tuple[int, int, int]],
) -> None:
    cached = await open_store(tmp_path_factory.mktemp("cached"), 1 << 20)
    plain = await open_store(tmp_path_factory.mktemp("plain"), 0)
    try:
        config = TopicConfig(segment_bytes=500)  # several segments: runs end at a segment
        for store in (cached, plain):
            await store.create_topic("t", 1, config)
            for records in batches:
                await store.append("t", 0, records)
        end = sum(map(len, batches))
        await cached.read("t", 0, 0, max_records=end, max_bytes=1 << 20)  # every batch cached
        for offset, max_records, max_bytes in asked:
            at = min(offset, end)
            want = await plain.read("t", 0, at, max_records=max_records, max_bytes=max_bytes)
            got = await cached.read("t", 0, at, max_records=max_records, max_bytes=max_bytes)
            assert got == want
    finally:
        await cached.close()
        await plain.close()


async def test_damage_to_a_lone_cached_batch_is_detected(tmp_path: Path) -> None:
    """A read that the cache serves with one batch compares the stored bytes with
    the bytes that passed the CRC: one flipped bit and the long way reports it."""
    store = await open_store(tmp_path, 1 << 20)
    try:
        await store.create_topic("t", 1, TopicConfig())
        await store.append("t", 0, [NewRecord(b"value-%d" % i) for i in range(10)])
        await store.read("t", 0, 0, max_records=100)  # decoded, and kept
        cached = await store.read("t", 0, 0, max_records=100)
        again = await store.read("t", 0, 0, max_records=100)
        assert again.records is cached.records  # both the cache's batch, not decoded again
        (segment,) = sorted(tmp_path.rglob("*.log"))
        flip_byte(segment, HEADER_SIZE + 30, 0x04)
        with pytest.raises(CorruptData):
            await store.read("t", 0, 0, max_records=100)
    finally:
        await store.close()
