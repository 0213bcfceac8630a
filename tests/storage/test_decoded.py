"""Decoded batches kept for the next reader: same records, bounded memory, damage still found."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.embedded.codec import HEADER_SIZE, read_prefix
from storage.embedded.decoded import Decoded, DecodedBatches
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.errors import CorruptData
from storage.records import NewRecord, Record, TopicConfig

pytestmark = pytest.mark.anyio


def records(n: int) -> Decoded:
    return Decoded.of([Record(i, 0, None, b"v") for i in range(n)])


def test_a_batch_payload_is_counted_once_and_only_without_headers() -> None:
    assert records(3).payload == 3
    keyed = Decoded.of([Record(0, 0, b"key", b"value"), Record(1, 0, None, None)])
    assert keyed.payload == 8
    assert Decoded.of([Record(0, 0, None, b"v", (("h", b"x"),))]).payload is None


def test_the_cache_forgets_the_least_recently_read_batch_first() -> None:
    cache = DecodedBatches(budget_bytes=300)
    cache.put(1, 0, 100, records(1))
    cache.put(1, 1, 100, records(1))
    cache.put(1, 2, 100, records(1))
    assert cache.get(1, 0, 100) is not None  # now the most recent
    cache.put(1, 3, 100, records(1))  # over budget: batch 1 goes
    assert cache.get(1, 1, 100) is None
    assert all(cache.get(1, base, 100) is not None for base in (0, 2, 3))
    assert cache.held_bytes == 300


def test_the_cache_keys_on_the_partition_instance_and_the_stored_size() -> None:
    cache = DecodedBatches(budget_bytes=1000)
    cache.put(1, 0, 100, records(2))
    assert cache.get(2, 0, 100) is None  # another partition (or a re-created topic)
    assert cache.get(1, 0, 101) is None  # another batch at the same base
    cache.put(1, 5, 2000, records(1))  # larger than the whole budget: not kept
    assert cache.get(1, 5, 2000) is None
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


async def test_a_bit_flip_after_a_batch_was_cached_is_still_detected(tmp_path: Path) -> None:
    """Damage that reaches the disk while the batch sits decoded in memory is
    reported by the next read, as it would be without the cache."""
    store = await open_store(tmp_path, 1 << 20)
    try:
        await store.create_topic("t", 1, TopicConfig())
        for b in range(3):
            await store.append("t", 0, [NewRecord(b"value-%d-%d" % (b, i)) for i in range(10)])
        before = await store.read("t", 0, 0, max_records=100)
        assert len(before.records) == 30
        (segment,) = sorted(tmp_path.rglob("*.log"))
        data = segment.read_bytes()
        _base, size = read_prefix(data, 0)
        flip = size + HEADER_SIZE + 20  # inside the second batch's records
        with segment.open("r+b") as f:
            f.seek(flip)
            f.write(bytes([data[flip] ^ 0x10]))
        served = await store.read("t", 0, 0, max_records=100)
        assert [r.offset for r in served.records] == list(range(10))  # up to the damage
        with pytest.raises(CorruptData):
            await store.read("t", 0, 10, max_records=100)
    finally:
        await store.close()
