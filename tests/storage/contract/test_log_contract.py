"""What every LogStore promises, run against each engine through open_backend."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from storage.errors import (
    InvalidConfig,
    InvalidTopicName,
    OffsetOutOfRange,
    PartitionNotFound,
    PartitionsCannotShrink,
    RecordTooLarge,
    TopicExists,
    TopicNotFound,
)
from storage.open import Backend, StorageConfig, open_backend
from storage.records import NewRecord, PackedRecords, TopicConfig, pack_records

pytestmark = pytest.mark.anyio

SMALL_SEGMENTS = TopicConfig(segment_bytes=1024, retention_ms=None)


async def fill(backend: Backend, topic: str, count: int, *, partition: int = 0) -> None:
    for i in range(count):
        await backend.log.append(topic, partition, [NewRecord(b"value-%04d" % i)])


# -- topics ---------------------------------------------------------------------------


async def test_create_get_list_describe_topic(backend: Backend) -> None:
    config = TopicConfig(retention_bytes=10_000)
    info = await backend.log.create_topic("acme~orders", 3, config)
    assert (info.name, info.partitions, info.config) == ("acme~orders", 3, config)
    await backend.log.create_topic("acme~audit", 1, TopicConfig())
    await backend.log.create_topic("other~x", 1, TopicConfig())
    assert await backend.log.get_topic("acme~orders") == info
    assert [t.name for t in await backend.log.list_topics("acme~")] == [
        "acme~audit",
        "acme~orders",
    ]
    assert len(await backend.log.list_topics()) == 3
    description = await backend.log.describe_topic("acme~orders")
    assert description.topic == info
    assert [p.partition for p in description.partitions] == [0, 1, 2]
    assert all(p.start_offset == p.end_offset == 0 for p in description.partitions)


async def test_update_topic_config(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    changed = TopicConfig(retention_ms=1000, max_record_bytes=10)
    info = await backend.log.update_topic_config("t", changed)
    assert info.config == changed
    assert (await backend.log.get_topic("t")).config == changed
    with pytest.raises(RecordTooLarge):
        await backend.log.append("t", 0, [NewRecord(b"x" * 11)])
    with pytest.raises(TopicNotFound):
        await backend.log.update_topic_config("missing", changed)


async def test_delete_topic_removes_it_and_its_data(backend: Backend) -> None:
    await backend.log.create_topic("t", 2, TopicConfig())
    await fill(backend, "t", 3)
    await backend.log.delete_topic("t")
    with pytest.raises(TopicNotFound):
        await backend.log.get_topic("t")
    with pytest.raises(TopicNotFound):
        await backend.log.read("t", 0, 0)
    with pytest.raises(TopicNotFound):
        await backend.log.delete_topic("t")
    await backend.log.create_topic("t", 1, TopicConfig())
    assert (await backend.log.offsets("t", 0)).end_offset == 0


async def test_partitions_grow_and_never_shrink(backend: Backend) -> None:
    first = await backend.log.create_topic("t", 1, TopicConfig())
    await backend.log.append("t", 0, [NewRecord(b"a")])
    info = await backend.log.add_partitions("t", 3)
    assert (info.partitions, info.topic_id) == (3, first.topic_id)
    assert (await backend.log.get_topic("t")).partitions == 3
    assert (await backend.log.append("t", 2, [NewRecord(b"b")])).base_offset == 0
    assert (await backend.log.read("t", 2, 0)).records[0].value == b"b"
    with pytest.raises(PartitionsCannotShrink):
        await backend.log.add_partitions("t", 2)
    with pytest.raises(TopicNotFound):
        await backend.log.add_partitions("missing", 2)


async def test_a_topic_created_again_has_a_new_id(backend: Backend) -> None:
    first = await backend.log.create_topic("t", 1, TopicConfig())
    await backend.log.delete_topic("t")
    second = await backend.log.create_topic("t", 1, TopicConfig())
    assert first.topic_id
    assert second.topic_id
    assert first.topic_id != second.topic_id


async def test_topic_errors(backend: Backend) -> None:
    await backend.log.create_topic("t", 2, TopicConfig())
    with pytest.raises(TopicExists):
        await backend.log.create_topic("t", 2, TopicConfig())
    for name in ["..", ".", "a/b", "", "a b", "x" * 513, "orders\n", "..\n"]:
        with pytest.raises(InvalidTopicName):
            await backend.log.create_topic(name, 1, TopicConfig())
    with pytest.raises(InvalidConfig):
        await backend.log.create_topic("u", 0, TopicConfig())
    with pytest.raises(TopicNotFound):
        await backend.log.describe_topic("missing")
    with pytest.raises(TopicNotFound):
        await backend.log.append("missing", 0, [NewRecord(b"x")])
    with pytest.raises(PartitionNotFound):
        await backend.log.append("t", 2, [NewRecord(b"x")])
    with pytest.raises(PartitionNotFound):
        await backend.log.read("t", -1, 0)
    with pytest.raises(PartitionNotFound):
        await backend.log.offsets("t", 5)


# -- append and read ------------------------------------------------------------------


async def test_round_trip_is_byte_identical(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    records = [
        NewRecord(b"plain"),
        NewRecord(None, key=None),
        NewRecord(b"", key=b""),
        NewRecord(b"\x00\xff" * 10, key=b"k", timestamp=1_700_000_000_123),
        NewRecord(b"v", headers=(("b", b"2"), ("a", b"1"), ("b", b""), ("ünï", b"\x00"))),
    ]
    before = int(time.time() * 1000)
    result = await backend.log.append("t", 0, records)
    assert (result.partition, result.base_offset, result.count) == (0, 0, 5)
    fetched = await backend.log.read("t", 0, 0)
    assert [r.offset for r in fetched.records] == [0, 1, 2, 3, 4]
    for got, sent in zip(fetched.records, records, strict=True):
        assert (got.key, got.value, got.headers) == (sent.key, sent.value, sent.headers)
        if sent.timestamp is None:
            assert before - 5000 <= got.timestamp <= int(time.time() * 1000) + 5000
        else:
            assert got.timestamp == sent.timestamp
    assert fetched.records[1].value is None
    assert fetched.records[2].value == b""
    assert fetched.records[1].key is None
    assert fetched.records[2].key == b""
    assert (fetched.next_offset, fetched.start_offset, fetched.end_offset) == (5, 0, 5)


async def test_append_validation(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig(max_record_bytes=100))
    with pytest.raises(RecordTooLarge) as info:
        await backend.log.append("t", 0, [NewRecord(b"ok"), NewRecord(b"x" * 101)])
    assert (info.value.size, info.value.limit, info.value.index) == (101, 100, 1)
    with pytest.raises(InvalidConfig):
        await backend.log.append("t", 0, [])
    assert (await backend.log.offsets("t", 0)).end_offset == 0


async def test_offsets_are_gapless_across_appends_and_segments(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, SMALL_SEGMENTS)
    expected = 0
    for size in [1, 5, 2, 30, 1, 7]:
        result = await backend.log.append("t", 0, [NewRecord(b"x" * 50)] * size)
        assert result.base_offset == expected
        expected += size
    fetched = await backend.log.read("t", 0, 0, max_records=1000)
    assert [r.offset for r in fetched.records] == list(range(expected))


async def test_concurrent_appenders_get_a_contiguous_range(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    results = await asyncio.gather(
        *(backend.log.append("t", 0, [NewRecord(b"%d" % i)] * 3) for i in range(50))
    )
    bases = sorted(r.base_offset for r in results)
    assert bases == list(range(0, 150, 3))
    fetched = await backend.log.read("t", 0, 0, max_records=1000)
    by_offset = {r.offset: r.value for r in fetched.records}
    for i, result in enumerate(results):
        values = {by_offset[result.base_offset + k] for k in range(3)}
        assert values == {b"%d" % i}


async def test_read_limits(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    for _ in range(4):
        await backend.log.append("t", 0, [NewRecord(b"x" * 100)] * 5)
    fetched = await backend.log.read("t", 0, 3, max_records=4)
    assert [r.offset for r in fetched.records] == [3, 4, 5, 6]
    assert fetched.next_offset == 7
    fetched = await backend.log.read("t", 0, 0, max_bytes=350)
    assert 1 <= len(fetched.records) <= 3
    assert fetched.bytes <= 350
    fetched = await backend.log.read("t", 0, 2, max_bytes=1)
    assert [r.offset for r in fetched.records] == [2]  # at least one record, past max_bytes
    fetched = await backend.log.read("t", 0, 20)
    assert fetched.records == ()
    assert fetched.next_offset == 20


async def test_offset_out_of_range_carries_the_range(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    await fill(backend, "t", 3)
    with pytest.raises(OffsetOutOfRange) as info:
        await backend.log.read("t", 0, 4)
    assert (info.value.requested, info.value.earliest, info.value.latest) == (4, 0, 3)
    with pytest.raises(OffsetOutOfRange):
        await backend.log.read("t", 0, -1)


async def test_end_offset_and_offset_for_time(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, SMALL_SEGMENTS)
    for i in range(40):
        await backend.log.append("t", 0, [NewRecord(b"x" * 40, timestamp=1000 + 10 * i)])
    info = await backend.log.offsets("t", 0)
    assert (info.start_offset, info.end_offset) == (0, 40)
    assert info.bytes > 40 * 40
    assert await backend.log.offset_for_time("t", 0, 0) == 0
    assert await backend.log.offset_for_time("t", 0, 1000) == 0
    assert await backend.log.offset_for_time("t", 0, 1001) == 1
    assert await backend.log.offset_for_time("t", 0, 1250) == 25
    assert await backend.log.offset_for_time("t", 0, 1390) == 39
    assert await backend.log.offset_for_time("t", 0, 5000) == 40


async def test_offset_for_time_with_unordered_timestamps(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    await backend.log.append("t", 0, [NewRecord(b"a", timestamp=t) for t in (50, 10, 70, 20, 90)])
    assert await backend.log.offset_for_time("t", 0, 60) == 2
    assert await backend.log.offset_for_time("t", 0, 15) == 0
    assert await backend.log.offset_for_time("t", 0, 80) == 4


# -- waiting --------------------------------------------------------------------------


async def test_wait_for_wakes_on_append(backend: Backend) -> None:
    await backend.log.create_topic("t", 2, TopicConfig())

    async def append_later() -> None:
        await asyncio.sleep(0.05)
        await backend.log.append("t", 1, [NewRecord(b"x")])

    started = time.monotonic()
    task = asyncio.create_task(append_later())
    assert await backend.log.wait_for("t", {0: 0, 1: 0}, timeout_s=10)
    assert time.monotonic() - started < 2
    await task
    assert await backend.log.wait_for("t", {1: 0}, timeout_s=10)  # already past: at once


async def test_wait_without_timeout_wakes_on_append_and_on_delete(backend: Backend) -> None:
    """`math.inf`: no timer, woken by what wakes every waiter (a live feed's wait)."""
    await backend.log.create_topic("t", 1, TopicConfig())
    waiting = asyncio.create_task(backend.log.wait_for("t", {0: 0}, timeout_s=math.inf))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    await backend.log.append("t", 0, [NewRecord(b"x")])
    assert await asyncio.wait_for(waiting, 5)
    waiting = asyncio.create_task(backend.log.wait_for("t", {0: 1}, timeout_s=math.inf))
    await asyncio.sleep(0.02)
    await backend.log.delete_topic("t")
    await asyncio.wait_for(waiting, 5)  # woken: its next call finds the topic gone
    with pytest.raises(TopicNotFound):
        await backend.log.wait_for("t", {0: 1}, timeout_s=math.inf)


async def test_wait_naming_the_partition_count_ends_when_the_topic_grows(
    backend: Backend,
) -> None:
    """A stream of every partition learns of new ones from its wait, not by looking."""
    await backend.log.create_topic("t", 1, TopicConfig())
    waiting = asyncio.create_task(backend.log.wait_for("t", {0: 0}, 30, partitions=1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.monotonic()
    await backend.log.add_partitions("t", 3)
    assert await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 2
    # Already more than the caller knows: at once; as many: it waits (and times out).
    assert await backend.log.wait_for("t", {0: 0}, 30, partitions=2)
    assert not await backend.log.wait_for("t", {0: 0}, 0.05, partitions=3)
    waiters = getattr(backend.log, "waiter_count", None)
    if waiters is not None:
        assert waiters() == 0


async def test_wait_for_times_out(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    await fill(backend, "t", 2)
    started = time.monotonic()
    assert not await backend.log.wait_for("t", {0: 2}, timeout_s=0.1)
    assert 0.05 <= time.monotonic() - started < 2


async def test_cancelled_wait_leaves_no_waiter(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    task = asyncio.create_task(backend.log.wait_for("t", {0: 0}, timeout_s=30))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    waiters = getattr(backend.log, "waiter_count", None)
    if waiters is not None:
        assert waiters() == 0
    # The store still wakes a new waiter normally.
    waiting = asyncio.create_task(backend.log.wait_for("t", {0: 0}, timeout_s=10))
    await asyncio.sleep(0.02)
    await backend.log.append("t", 0, [NewRecord(b"x")])
    assert await waiting


async def test_cancelled_append_still_completes(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig())
    task = asyncio.create_task(backend.log.append("t", 0, [NewRecord(b"x")]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await backend.log.append("t", 0, [NewRecord(b"y")])
    # The cancelled append either landed whole before this one or not at all.
    fetched = await backend.log.read("t", 0, 0)
    assert [r.value for r in fetched.records][-1] == b"y"
    assert result.base_offset == len(fetched.records) - 1


# -- retention and reopening ----------------------------------------------------------


async def test_retention_by_bytes_advances_the_start(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig(segment_bytes=1024, retention_bytes=2048))
    await fill(backend, "t", 200)
    deleted = await backend.log.enforce_retention()
    assert deleted > 0
    info = await backend.log.offsets("t", 0)
    assert 0 < info.start_offset < info.end_offset == 200
    assert info.bytes >= 2048 - 1024
    with pytest.raises(OffsetOutOfRange) as error:
        await backend.log.read("t", 0, info.start_offset - 1)
    assert error.value.earliest == info.start_offset
    fetched = await backend.log.read("t", 0, info.start_offset, max_records=1000)
    assert [r.offset for r in fetched.records] == list(range(info.start_offset, 200))
    assert await backend.log.enforce_retention() == 0


async def test_retention_by_time(backend: Backend) -> None:
    await backend.log.create_topic("t", 1, TopicConfig(segment_bytes=1024, retention_ms=1000))
    for i in range(100):
        await backend.log.append("t", 0, [NewRecord(b"x" * 30, timestamp=i)])
    assert await backend.log.enforce_retention(now_ms=50) == 0
    assert await backend.log.enforce_retention(now_ms=10_000) > 0
    info = await backend.log.offsets("t", 0)
    assert 0 < info.start_offset < 100 == info.end_offset  # the active segment stays


async def test_reopen_keeps_data(storage_config: StorageConfig, anyio_backend: str) -> None:
    first = await open_backend(storage_config)
    try:
        await first.log.create_topic("t", 2, SMALL_SEGMENTS)
        await fill(first, "t", 60, partition=1)
        await first.state.put("k", b"v")
    finally:
        await first.close()
    second = await open_backend(storage_config)
    try:
        assert [t.name for t in await second.log.list_topics()] == ["t"]
        fetched = await second.log.read("t", 1, 0, max_records=100)
        assert [r.value for r in fetched.records] == [b"value-%04d" % i for i in range(60)]
        assert (await second.log.append("t", 1, [NewRecord(b"more")])).base_offset == 60
        assert await second.state.get("k") == b"v"
    finally:
        await second.close()


@pytest.mark.parametrize("packed", [False, True])
async def test_a_cancelled_caller_abandons_the_result_not_the_append(
    backend: Backend, packed: bool
) -> None:
    """The gateway awaits a one-partition append without a task of its own, so a
    client that goes away mid-append must leave the batch appended whole."""
    await backend.log.create_topic("t", 1, TopicConfig())
    records = [NewRecord(b"kept-%d" % i) for i in range(5)]
    call = (
        backend.log.append_packed("t", 0, pack_records(records, now_ms=1))
        if packed
        else backend.log.append("t", 0, records)
    )
    waiting = asyncio.ensure_future(call)
    await asyncio.sleep(0)  # the call takes its first step, then waits for the log
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for _ in range(200):  # bounded: 2 s for the writer to finish what it was given
        if (await backend.log.offsets("t", 0)).end_offset == 5:
            break
        await asyncio.sleep(0.01)
    read = await backend.log.read("t", 0, 0, max_records=10)
    assert [r.value for r in read.records] == [r.value for r in records]


# -- several partitions at once -------------------------------------------------------


def packs(*values: bytes) -> PackedRecords:
    return pack_records([NewRecord(v) for v in values], now_ms=1)


async def test_append_batches_appends_each_partition_and_answers_in_order(
    backend: Backend,
) -> None:
    await backend.log.create_topic("t", 4, TopicConfig())
    await backend.log.append("t", 2, [NewRecord(b"before")])
    results = await backend.log.append_batches(
        "t", [(3, packs(b"a", b"b")), (2, packs(b"c")), (0, packs(b"d", b"e", b"f"))]
    )
    assert [(r.partition, r.base_offset, r.count) for r in results] == [  # type: ignore[union-attr]
        (3, 0, 2),
        (2, 1, 1),
        (0, 0, 3),
    ]
    assert [r.value for r in (await backend.log.read("t", 2, 0)).records] == [b"before", b"c"]
    assert [r.value for r in (await backend.log.read("t", 0, 0)).records] == [b"d", b"e", b"f"]
    assert (await backend.log.offsets("t", 1)).end_offset == 0


async def test_append_batches_refuses_a_bad_batch_before_appending_any(backend: Backend) -> None:
    await backend.log.create_topic("t", 2, TopicConfig(max_record_bytes=4))
    with pytest.raises(PartitionNotFound):
        await backend.log.append_batches("t", [(0, packs(b"ok")), (2, packs(b"ok"))])
    with pytest.raises(RecordTooLarge):
        await backend.log.append_batches("t", [(0, packs(b"ok")), (1, packs(b"too-long"))])
    with pytest.raises(InvalidConfig):
        await backend.log.append_batches("t", [(0, packs(b"ok")), (0, packs(b"ok"))])
    with pytest.raises(TopicNotFound):
        await backend.log.append_batches("missing", [(0, packs(b"ok"))])
    assert [(await backend.log.offsets("t", p)).end_offset for p in (0, 1)] == [0, 0]


async def test_append_batches_bounds_each_record_not_each_batch(backend: Backend) -> None:
    """A batch may hold more bytes of records than one record may: each one counts."""
    await backend.log.create_topic("t", 2, TopicConfig(max_record_bytes=4))
    results = await backend.log.append_batches(
        "t", [(1, packs(b"ok")), (0, packs(b"abcd", b"efgh", b"ij"))]
    )
    assert [(r.partition, r.count) for r in results] == [(1, 1), (0, 3)]  # type: ignore[union-attr]
    stored = (await backend.log.read("t", 0, 0)).records
    assert [r.value for r in stored] == [b"abcd", b"efgh", b"ij"]


async def test_a_cancelled_caller_of_append_batches_leaves_every_batch_appended(
    backend: Backend,
) -> None:
    await backend.log.create_topic("t", 3, TopicConfig())
    batches = [(p, packs(b"p%d-a" % p, b"p%d-b" % p)) for p in range(3)]
    waiting = asyncio.ensure_future(backend.log.append_batches("t", batches))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for _ in range(200):  # bounded: 2 s for the writers to finish what they were given
        ends = [(await backend.log.offsets("t", p)).end_offset for p in range(3)]
        if ends == [2, 2, 2]:
            break
        await asyncio.sleep(0.01)
    for p in range(3):
        read = await backend.log.read("t", p, 0)
        assert [r.value for r in read.records] == [b"p%d-a" % p, b"p%d-b" % p]
