"""Reads at the tail of a partition (live streams, long-polls) start at the last batch
written, not at the sparse index's last entry, and never believe a stale anchor."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.records import NewRecord, TopicConfig
from tests.storage.layout import partition_dir
from tests.storage.test_recovery import batch_positions

pytestmark = pytest.mark.anyio

OPTIONS = EngineOptions(shards=1, index_interval_bytes=4096)


class RecordingIO(FileIO):
    """FileIO that notes where each pread starts."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        self.reads.append(offset)
        return super().pread(fd, size, offset)


def value(i: int) -> bytes:
    return b"record-%05d" % i + b"." * 60


async def test_a_read_at_the_tail_starts_at_the_last_batch(tmp_path: Path) -> None:
    fio = RecordingIO()
    store = await EmbeddedLogStore.open(str(tmp_path), options=OPTIONS, fileio=fio)
    try:
        await store.create_topic("t", 1, TopicConfig())
        log = sorted(partition_dir(tmp_path, "t").glob("*.log"))[0]
        for i in range(120):  # about two index intervals of one-record batches
            result = await store.append("t", 0, [NewRecord(value(i))])
            fio.reads.clear()
            fetched = await store.read("t", 0, result.base_offset, max_records=10)
            assert [r.value for r in fetched.records] == [value(i)]
            assert fetched.next_offset == i + 1
            assert fio.reads[0] == batch_positions(log)[-1][0]
    finally:
        await store.close()


async def test_a_stale_tail_anchor_is_not_believed(tmp_path: Path) -> None:
    store = await EmbeddedLogStore.open(str(tmp_path), options=OPTIONS)
    try:
        await store.create_topic("t", 1, TopicConfig())
        for i in range(50):
            await store.append("t", 0, [NewRecord(value(i))])
        segment = store._topic("t").partitions[0].active
        base, position = segment.last_batch
        log = sorted(partition_dir(tmp_path, "t").glob("*.log"))[0]
        earlier = batch_positions(log)[-2][0]
        # An anchor whose batch names another offset, and one that is not visible yet:
        # the walk goes the long way and serves the right records.
        for anchor in [(base, earlier), (base, position + 10_000)]:
            segment.last_batch = anchor
            for start in (base, base - 3):
                fetched = await store.read("t", 0, start, max_records=10)
                assert [r.value for r in fetched.records] == [value(i) for i in range(start, 50)]
    finally:
        await store.close()
