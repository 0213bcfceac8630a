"""Appends spanning several partitions (a keyed produce): one writer item per shard.

`append_batches` without an identity hands each shard one `SpreadAppend` for all
of the request's partitions on it. These tests hold that path to what a batch
of its own would get: the same offsets, the same refusals, the same durability,
also when the same pass holds other appends to the same partitions, a segment
roll, or a partition whose disk is full.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from pathlib import Path

import pytest

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.embedded.shard import MERGED_BATCH_BYTES
from storage.errors import BackendUnavailable, DiskFull, StorageError
from storage.records import AppendResult, NewRecord, TopicConfig, pack_records
from tests.storage.faults import FullDirectory

pytestmark = pytest.mark.anyio

PARTITIONS = 6


def packed(values: list[bytes]) -> object:
    return pack_records([NewRecord(v) for v in values], now_ms=1)


async def read_values(store: EmbeddedLogStore, topic: str, partition: int) -> list[bytes]:
    end = (await store.offsets(topic, partition)).end_offset
    values: list[bytes] = []
    while len(values) < end:
        fetched = await store.read(topic, partition, len(values), max_records=10_000)
        values += [r.value or b"" for r in fetched.records]
    return values


@pytest.mark.parametrize("seed", range(4))
async def test_spreads_and_single_appends_in_one_pass_land_where_their_results_say(
    tmp_path: Path, seed: int
) -> None:
    """Many concurrent spreads and single-partition appends (the same partitions in
    the same writer pass, segments small enough to roll mid-pass): every record is
    read back at the offset its result named, each partition gapless."""
    rng = random.Random(seed)
    config = TopicConfig(segment_bytes=[1 << 20, 1 << 20, 2_000, 600][seed])  # 600: rolls mid-pass
    store = await EmbeddedLogStore.open(
        str(tmp_path), options=EngineOptions(shards=rng.choice([1, 2, 3]))
    )
    try:
        await store.create_topic("t", PARTITIONS, config)
        placed: dict[tuple[int, int], bytes] = {}

        async def spread(tag: int) -> None:
            chosen = rng.sample(range(PARTITIONS), rng.randint(2, PARTITIONS))
            groups = {
                p: [b"s%d-%d-%d" % (tag, p, i) for i in range(rng.randint(1, 4))] for p in chosen
            }
            batches = [
                (p, pack_records([NewRecord(v) for v in vs], now_ms=1)) for p, vs in groups.items()
            ]
            results = await store.append_batches("t", batches)
            assert [r.partition for r in results] == chosen  # type: ignore[union-attr]
            for result, (p, values) in zip(results, groups.items(), strict=True):
                assert isinstance(result, AppendResult)
                assert result.count == len(values)
                for i, value in enumerate(values):
                    placed[(p, result.base_offset + i)] = value

        async def single(tag: int) -> None:
            p = rng.randrange(PARTITIONS)
            values = [b"o%d-%d" % (tag, i) for i in range(rng.randint(1, 3))]
            result = await store.append("t", p, [NewRecord(v) for v in values])
            for i, value in enumerate(values):
                placed[(p, result.base_offset + i)] = value

        for wave, spreads in enumerate([1.0, 0.9, 0.5, 1.0]):  # the share of spreads in a pass
            await asyncio.gather(
                *(
                    spread(wave * 100 + i) if rng.random() < spreads else single(wave * 100 + i)
                    for i in range(40)
                )
            )
        for p in range(PARTITIONS):
            values = await read_values(store, "t", p)
            assert values == [placed[(p, o)] for o in range(len(values))]
            assert len(values) == sum(1 for q, _ in placed if q == p)
    finally:
        await store.close()


async def test_a_full_disk_under_one_partition_fails_only_its_entry(tmp_path: Path) -> None:
    fio = FullDirectory()
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=1), fileio=fio)
    try:
        await store.create_topic("t", 4, TopicConfig())
        fio.full.add(store._topic("t").partitions[2].directory)
        batches = [(p, pack_records([NewRecord(b"p%d" % p)], now_ms=1)) for p in range(4)]
        results = await store.append_batches("t", batches)
        assert isinstance(results[2], DiskFull)
        assert [(r.partition, r.base_offset) for r in results if isinstance(r, AppendResult)] == [
            (0, 0),
            (1, 0),
            (3, 0),
        ]
        assert await read_values(store, "t", 2) == []  # nothing of the failed write is kept
        fio.full.clear()
        again = await store.append_batches("t", batches)
        assert [(r.partition, r.base_offset) for r in again] == [  # type: ignore[union-attr]
            (0, 1),
            (1, 1),
            (2, 0),
            (3, 1),
        ]
        assert await read_values(store, "t", 2) == [b"p2"]
    finally:
        await store.close()


async def test_a_spread_to_a_deleted_topic_is_refused_not_written(tmp_path: Path) -> None:
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=2))
    try:
        await store.create_topic("t", 4, TopicConfig())
        batches = [(p, pack_records([NewRecord(b"x")], now_ms=1)) for p in range(4)]
        pending = asyncio.ensure_future(store.append_batches("t", batches))
        await asyncio.sleep(0)  # handed to the writers: the deletion comes after it
        await store.delete_topic("t")
        results = await pending
        # Either written before the deletion took effect, or refused: never lost silently.
        assert all(isinstance(r, AppendResult | StorageError) for r in results)
    finally:
        await store.close()


class NoSyncfs(FileIO):
    """A FileIO whose fdatasync is its own (so no shared syncfs): one sync per file."""

    def fdatasync(self, fd: int) -> None:
        super().fdatasync(fd)


async def test_spread_entries_are_synced_one_by_one_without_syncfs(tmp_path: Path) -> None:
    store = await EmbeddedLogStore.open(
        str(tmp_path), options=EngineOptions(shards=1), fileio=NoSyncfs()
    )
    try:
        await store.create_topic("t", 8, TopicConfig())
        batches = [(p, pack_records([NewRecord(b"%d" % p)], now_ms=1)) for p in range(8)]
        results = await store.append_batches("t", batches)
        assert [(r.partition, r.base_offset) for r in results] == [(p, 0) for p in range(8)]  # type: ignore[union-attr]
        assert [await read_values(store, "t", p) for p in range(8)] == [
            [b"%d" % p] for p in range(8)
        ]
    finally:
        await store.close()


async def test_spreads_of_one_pass_keep_every_record_whole_and_in_order(tmp_path: Path) -> None:
    """The writer frames a partition's spread entries of a pass together (and splits
    them past `MERGED_BATCH_BYTES`): every record reads back with its key, headers and
    timestamp at the offset its request was told, also after a restart (recovery
    checks the batches as written), and `offset_for_time` still finds each one."""
    big = MERGED_BATCH_BYTES // 3  # three requests of these fill a merged batch
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=2))
    expected: dict[int, dict[int, NewRecord]] = {p: {} for p in range(PARTITIONS)}
    try:
        await store.create_topic("t", PARTITIONS, TopicConfig())

        async def spread(tag: int) -> None:
            groups = {
                p: [
                    NewRecord(
                        b"v" * (big if tag % 4 == 0 else 10) + b"%d-%d-%d" % (tag, p, i),
                        key=b"k%d" % tag if i % 2 else None,
                        headers=(("h", b"%d" % i),) if i else (),
                        timestamp=1_000 * tag + i,
                    )
                    for i in range(1 + (tag + p) % 3)
                ]
                for p in range(PARTITIONS)
                if (tag + p) % 2 == 0 or p == 0
            }
            batches = [(p, pack_records(rs, now_ms=1)) for p, rs in groups.items()]
            results = await store.append_batches("t", batches)
            for result, (p, records) in zip(results, groups.items(), strict=True):
                assert isinstance(result, AppendResult)
                assert (result.count, result.timestamp) == (len(records), records[0].timestamp)
                for i, record in enumerate(records):
                    expected[p][result.base_offset + i] = record

        await asyncio.gather(*(spread(tag) for tag in range(24)))
    finally:
        await store.close()
    for reopened in (False, True):
        store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=2))
        if reopened:
            await store._abandon()  # not clean: the next open scans every batch
            store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=2))
        try:
            for p, records in expected.items():
                fetched = await store.read("t", p, 0, max_records=10_000, max_bytes=1 << 30)
                assert [r.offset for r in fetched.records] == list(range(len(records)))
                assert [(r.value, r.key, r.headers, r.timestamp) for r in fetched.records] == [
                    (n.value, n.key, n.headers, n.timestamp) for _, n in sorted(records.items())
                ]
                for offset in (1, len(records) // 2, len(records) - 1):
                    one = await store.read("t", p, offset, max_records=1)
                    assert [r.offset for r in one.records] == [offset]
        finally:
            await store.close()


class GatedDirectory(FileIO):
    """Writes to files under `gated` wait until `open_gate` is set (a slow disk under
    one partition), telling `entered` when one starts waiting."""

    def __init__(self) -> None:
        self.gated: set[str] = set()
        self.entered = threading.Event()
        self.open_gate = threading.Event()
        self._paths: dict[int, str] = {}

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = super().open(path, flags, mode)
        self._paths[fd] = os.path.abspath(path)
        return fd

    def write(self, fd: int, data: bytes | memoryview) -> int:
        path = self._paths.get(fd, "")
        if any(path.startswith(d + os.sep) for d in self.gated):
            self.entered.set()
            assert self.open_gate.wait(30), "the test never opened the gate"
        return super().write(fd, data)


async def test_a_full_shard_refuses_the_whole_spread_before_any_shard_takes_its_part(
    tmp_path: Path,
) -> None:
    """Backpressure is all or nothing: when one shard's queue is full, a request over
    partitions of several shards is refused, and the shards with room append nothing
    of it either (a retry then appends it once, not one part twice)."""
    fio = GatedDirectory()
    store = await EmbeddedLogStore.open(
        str(tmp_path), options=EngineOptions(shards=2, max_queued_appends=1), fileio=fio
    )
    try:
        await store.create_topic("t", 8, TopicConfig())
        topic = store._topic("t")
        busy = 0
        free = next(p for p in range(8) if topic.shards[p] is not topic.shards[busy])
        fio.gated.add(topic.partitions[busy].directory)
        blocked = asyncio.ensure_future(store.append("t", busy, [NewRecord(b"first")]))
        assert await asyncio.to_thread(fio.entered.wait, 30)  # the busy shard's queue is full
        batches = [(p, pack_records([NewRecord(b"keyed")], now_ms=1)) for p in (free, busy)]
        with pytest.raises(BackendUnavailable):
            await store.append_batches("t", batches)
        fio.open_gate.set()
        assert (await blocked).base_offset == 0
        await store.append("t", free, [NewRecord(b"after")])  # the free shard's pass is done
        assert await read_values(store, "t", free) == [b"after"]
        assert await read_values(store, "t", busy) == [b"first"]
    finally:
        fio.open_gate.set()
        await store.close()
