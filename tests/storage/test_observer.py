"""The embedded engine reports its syncs by kind and its failed appends to its observer."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.errors import PartitionFenced
from storage.records import Durability, NewRecord, TopicConfig, pack_records
from tests.storage.faults import FailingFsync
from tests.storage.observing import RecordingObserver

pytestmark = pytest.mark.anyio


async def test_a_failed_fsync_is_reported_as_the_appends_error(tmp_path: Path) -> None:
    observer = RecordingObserver()
    fio = FailingFsync()
    store = await EmbeddedLogStore.open(
        str(tmp_path), options=EngineOptions(shards=1, observer=observer), fileio=fio
    )
    try:
        await store.create_topic("t", 1, TopicConfig(durability=Durability.FSYNC))
        await store.append("t", 0, [NewRecord(b"kept")])
        assert len(observer.syncs) == 1
        fio.armed = True
        with pytest.raises(PartitionFenced):
            await store.append("t", 0, [NewRecord(b"refused")])
    finally:
        await store._abandon()
    assert len(observer.appends) == 1
    assert [type(e) for e in observer.failures] == [PartitionFenced]


async def test_durable_writes_and_syncs_of_many_partitions_are_told_apart(
    tmp_path: Path,
) -> None:
    observer = RecordingObserver()
    store = await EmbeddedLogStore.open(
        str(tmp_path), options=EngineOptions(shards=1, observer=observer)
    )
    try:
        await store.create_topic("t", 8, TopicConfig(durability=Durability.FSYNC))
        await store.append("t", 0, [NewRecord(b"one partition")])
        packed = pack_records([NewRecord(b"many")], now_ms=0)
        await store.append_batches("t", [(p, packed) for p in range(8)])
    finally:
        await store.close()
    kinds = {kind for _, kind in observer.syncs}
    assert "durable-write" in kinds  # one partition: its write is durable by itself
    assert "syncfs" in kinds  # eight in one pass: written, then synced together
    assert len(observer.appends) == 2  # one per append call, however many partitions
