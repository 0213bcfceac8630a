"""What every engine reports to the observer it was opened with (`storage.observer`)."""

from __future__ import annotations

import pytest

from storage.open import StorageConfig, open_backend
from storage.records import NewRecord, TopicConfig, pack_records
from tests.storage.observing import RecordingObserver

pytestmark = pytest.mark.anyio


async def test_every_acknowledged_append_and_its_sync_are_reported(
    storage_config: StorageConfig,
) -> None:
    observer = RecordingObserver()
    backend = await open_backend(storage_config, observer=observer)
    try:
        await backend.log.create_topic("acme~orders", 3, TopicConfig())
        await backend.log.append("acme~orders", 0, [NewRecord(b"one")])
        packed = pack_records([NewRecord(b"two")], now_ms=0)
        await backend.log.append_packed("acme~orders", 1, packed)
        results = await backend.log.append_batches("acme~orders", [(0, packed), (2, packed)])
    finally:
        await backend.close()
    assert len(results) == 2
    assert len(observer.appends) == 3  # one per append acknowledged, however many partitions
    assert all(0 <= s < 60 for s in observer.appends)
    assert observer.syncs, "a durable (fsync) topic's appends were synced"
    assert all(0 <= s < 60 for s, _ in observer.syncs)
    assert observer.failures == []
