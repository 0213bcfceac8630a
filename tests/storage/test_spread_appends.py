"""Appends spanning several partitions (a keyed produce): one writer item per shard.

`append_batches` without an identity hands each shard one `SpreadAppend` for all
of the request's partitions on it. These tests hold that path to what a batch
of its own would get: the same offsets, the same refusals, the same durability,
also when the same pass holds other appends to the same partitions, a segment
roll, or a partition whose disk is full.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.errors import DiskFull, StorageError
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
