"""Group commit: the appends one event-loop pass submits share one write and one sync."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.embedded.shard import SYNC_TOGETHER_AT
from storage.errors import PartitionFenced
from storage.records import AppendResult, NewRecord, TopicConfig, pack_records

pytestmark = pytest.mark.anyio


class Counting(FileIO):
    """Counts the writes and syncs of segment data (a durable write is both)."""

    def __init__(self) -> None:
        self.writes = 0
        self.syncs = 0

    def write(self, fd: int, data: bytes | memoryview) -> int:
        self.writes += 1
        return super().write(fd, data)

    def fdatasync(self, fd: int) -> None:
        self.syncs += 1
        super().fdatasync(fd)


async def test_appends_of_one_loop_pass_share_one_write_and_one_sync(tmp_path: Path) -> None:
    fio = Counting()
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=1), fileio=fio)
    try:
        await store.create_topic("t", 2, TopicConfig())
        fio.writes = fio.syncs = 0
        results = await asyncio.gather(
            *(store.append("t", i % 2, [NewRecord(b"%d" % i)]) for i in range(10))
        )
        assert sorted((r.partition, r.base_offset) for r in results) == [
            (p, o) for p in (0, 1) for o in range(5)
        ]
        # One pass of the writer: one write and one sync per partition, for all ten.
        assert (fio.writes, fio.syncs) == (2, 2)
        again = await store.append("t", 0, [NewRecord(b"later")])  # a later pass: its own
        assert again.base_offset == 5
        assert (fio.writes, fio.syncs) == (3, 3)
    finally:
        await store.close()


async def test_the_writer_gets_a_pass_s_appends_only_when_the_pass_ends(tmp_path: Path) -> None:
    """Even when the loop's thread lets go of the interpreter in the middle of a
    pass (a blocking call), the writer has not started on the appends so far: it
    is handed them all when the pass ends, not woken at the first."""
    fio = Counting()
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=1), fileio=fio)
    try:
        await store.create_topic("t", 1, TopicConfig())
        fio.writes = fio.syncs = 0

        async def append(i: int) -> int:
            if i == 1:
                time.sleep(0.05)  # noqa: ASYNC251 - the point: the GIL is free meanwhile
            return (await store.append("t", 0, [NewRecord(b"%d" % i)])).base_offset

        assert sorted(await asyncio.gather(*(append(i) for i in range(6)))) == list(range(6))
        assert (fio.writes, fio.syncs) == (1, 1)
    finally:
        await store.close()


class SyncsTogether(FileIO):
    """This class's own fdatasync (so syncs are shared), with syncfs counted or failed."""

    def __init__(self, *, fail_syncfs: bool = False) -> None:
        self.syncfs_calls = 0
        self.fail_syncfs = fail_syncfs

    def syncfs(self, fd: int) -> None:
        self.syncfs_calls += 1
        if self.fail_syncfs:
            raise OSError(5, "simulated EIO from syncfs")
        super().syncfs(fd)


needs_syncfs = pytest.mark.skipif(
    not FileIO().syncs_together(), reason="syncfs with error reporting needs Linux 5.8+"
)


@needs_syncfs
async def test_a_pass_over_many_fsync_partitions_syncs_them_together(tmp_path: Path) -> None:
    fio = SyncsTogether()
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=1), fileio=fio)
    try:
        await store.create_topic("t", 32, TopicConfig())  # fsync durability by default
        fio.syncfs_calls = 0
        batches = [(p, pack_records([NewRecord(b"%d" % p)], now_ms=1)) for p in range(32)]
        results = await store.append_batches("t", batches)
        placed = [(r.partition, r.base_offset) for r in results if isinstance(r, AppendResult)]
        assert placed == [(p, 0) for p in range(32)]
        assert fio.syncfs_calls == 1  # one sync for the 32 files, not 32
        few = [(p, pack_records([NewRecord(b"x")], now_ms=1)) for p in range(SYNC_TOGETHER_AT)]
        await store.append_batches("t", few)
        assert fio.syncfs_calls == 2  # from SYNC_TOGETHER_AT partitions on
        one = [(5, pack_records([NewRecord(b"x")], now_ms=1))]
        await store.append_batches("t", one)  # under SYNC_TOGETHER_AT: a durable write
        assert fio.syncfs_calls == 2
    finally:
        await store.close()


@needs_syncfs
async def test_a_failed_shared_sync_falls_back_to_each_file_and_fences_only_the_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fio = SyncsTogether(fail_syncfs=True)
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=1), fileio=fio)
    try:
        await store.create_topic("t", 8, TopicConfig())
        bad_fd = store._topic("t").partitions[3].active.fileno()
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            if fd == bad_fd:
                raise OSError(5, "simulated EIO")
            real(fd)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        batches = [(p, pack_records([NewRecord(b"%d" % p)], now_ms=1)) for p in range(8)]
        results = await store.append_batches("t", batches)
        assert fio.syncfs_calls == 1
        assert isinstance(results[3], PartitionFenced)
        assert [r.partition for r in results if isinstance(r, AppendResult)] == [
            0,
            1,
            2,
            4,
            5,
            6,
            7,
        ]
        read = await store.read("t", 3, 0)
        assert read.records == ()  # never acknowledged, never served
        assert (await store.read("t", 4, 0)).records[0].value == b"4"
    finally:
        await store.close()
