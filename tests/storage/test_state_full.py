"""The state store (idempotency replies) on a disk that is really full: DiskFull, not
sqlite3.OperationalError, nothing half-written, and writes work again once space returns."""

from __future__ import annotations

import sqlite3

import pytest

from storage.embedded.state import SqliteStateStore, is_disk_full
from storage.errors import DiskFull
from tests.support.small_fs import fill, free, small_filesystem

pytestmark = pytest.mark.anyio


async def test_a_full_disk_is_disk_full_for_every_write_and_reads_keep_working() -> None:
    with small_filesystem("2m") as root:
        store = await SqliteStateStore.open(str(root / "data"))
        try:
            await store.put("kept", b"v" * 100)
            fill(root)
            big = b"x" * 200_000
            with pytest.raises(DiskFull):
                await store.put_if_absent("claim", big, ttl_s=60)
            with pytest.raises(DiskFull):
                await store.put("reply", big)
            assert await store.get("kept") == b"v" * 100
            assert await store.get("claim") is None  # the failed claim left nothing
            free(root)
            assert await store.put_if_absent("claim", big, ttl_s=60) is None
            assert await store.get("claim") == big
        finally:
            await store.close()


def test_disk_full_is_told_apart_from_other_sqlite_errors() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(full)
    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(OSError(5, "I/O error"))
