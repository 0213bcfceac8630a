"""The embedded group store writes reading positions on the event loop and keeps
WAL checkpoints off every request's path (a thread and a connection of their
own); the WAL must still be checkpointed and stay bounded, or it would grow
with every group fetch."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.embedded import groups as embedded
from storage.embedded.groups import CHECKPOINT_EVERY, GROUPS_DB
from storage.groups import MemberPosition, Membership
from storage.open import Backend, StorageConfig, open_backend

pytestmark = pytest.mark.anyio


def body(i: int) -> bytes:
    """A position of about 300 bytes, different each time (SQLite writes no page
    for an update that changes nothing)."""
    return b"%06d" % i * 50


@pytest.fixture
async def backend(anyio_backend: str, tmp_path: Path) -> AsyncIterator[Backend]:
    config = StorageConfig(kind="file", data_dir=str(tmp_path / "data"), shards=1)
    opened = await open_backend(config)
    try:
        await opened.groups.put_group(
            "t~g",
            Membership(generation=1, members=frozenset({"a"}), body=b"doc"),
            expected_version=0,
        )
        yield opened
    finally:
        await opened.close()


def wal_of(tmp_path: Path) -> str:
    return str(tmp_path / "data" / (GROUPS_DB + "-wal"))


async def test_after_a_pause_the_checkpointed_wal_is_written_over(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointed = threading.Event()
    passive = embedded._Checkpoints.passive

    def noted(db: sqlite3.Connection) -> int:
        frames = passive(db)
        checkpointed.set()
        return frames

    monkeypatch.setattr(embedded._Checkpoints, "passive", staticmethod(noted))
    groups = backend.groups
    for i in range(CHECKPOINT_EVERY - 1):  # with the group's own, one checkpoint's worth
        await groups.put_position("t~g", "a", MemberPosition(1, body(i)))
    assert await asyncio.to_thread(checkpointed.wait, 10)  # nothing was written meanwhile
    one_round = os.path.getsize(wal_of(tmp_path))
    for i in range(CHECKPOINT_EVERY - 1):
        await groups.put_position("t~g", "a", MemberPosition(1, body(-i)))
    # The copied frames are written over again: the file does not grow.
    assert os.path.getsize(wal_of(tmp_path)) <= one_round
    assert await groups.get_position("t~g", "a") == MemberPosition(1, body(2 - CHECKPOINT_EVERY))


async def test_a_position_write_never_waits_for_a_checkpoint(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint that takes as long as it likes (a slow disk's sync): the
    writes go on meanwhile, on the loop."""
    entered = threading.Event()
    release = threading.Event()
    checkpoint = embedded._Checkpoints.checkpoint

    def slow(self: embedded._Checkpoints, db: sqlite3.Connection) -> None:
        entered.set()
        release.wait(30)
        checkpoint(self, db)

    monkeypatch.setattr(embedded._Checkpoints, "checkpoint", slow)
    groups = backend.groups
    try:

        async def write(n: int) -> None:
            for i in range(n):
                await groups.put_position("t~g", "a", MemberPosition(1, b"%d" % i))

        await asyncio.wait_for(write(CHECKPOINT_EVERY + 1), 30)
        assert await asyncio.to_thread(entered.wait, 10)  # a checkpoint is running
        await asyncio.wait_for(write(2 * CHECKPOINT_EVERY), 30)  # and it holds nobody up
        assert not release.is_set()
    finally:
        release.set()
    assert await groups.get_position("t~g", "a") == MemberPosition(
        1, b"%d" % (2 * CHECKPOINT_EVERY - 1)
    )


async def test_the_wal_stays_bounded_when_writes_never_pause_for_a_checkpoint(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lands during every checkpoint, so none finds the WAL copied whole
    and SQLite never writes it over from its start: past the bound a checkpoint
    holds the writers off and empties it."""

    reader = sqlite3.connect(wal_of(tmp_path)[: -len("-wal")], check_same_thread=False)

    def overtaken(db: sqlite3.Connection) -> int:
        # A reader's snapshot keeps the checkpoint to the frames before a write
        # that lands meanwhile, as a write during a long sync would.
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM positions").fetchone()
        db.execute("UPDATE positions SET body = body || 'x'")
        frames = passive(db)
        reader.execute("COMMIT")
        return frames

    passive = embedded._Checkpoints.passive
    bound = 2 * CHECKPOINT_EVERY
    monkeypatch.setattr(embedded._Checkpoints, "passive", staticmethod(overtaken))
    monkeypatch.setattr(embedded, "WAL_BOUND_FRAMES", bound)
    groups = backend.groups
    frame = 4096 + 24  # a page and its frame header
    largest = 0
    try:
        for i in range(48 * CHECKPOINT_EVERY):
            await groups.put_position("t~g", "a", MemberPosition(1, body(i)))
            if i % 50 == 0:
                largest = max(largest, os.path.getsize(wal_of(tmp_path)))
            if i % CHECKPOINT_EVERY == 0:
                # A server's loop waits for its sockets now and then, and the
                # checkpoints' thread gets the interpreter; this loop never would.
                await asyncio.sleep(0.001)
    finally:
        await backend.groups.close()  # the checkpoints' thread uses the reader
        reader.close()
    # Without the bound the WAL would hold a frame for each of the 24,000 writes;
    # with it, the bound and what is written until the checkpoints' thread runs.
    assert largest <= 16 * CHECKPOINT_EVERY * frame
