"""The embedded group store writes the positions of concurrent group fetches
together: one transaction for every write one event-loop pass asks for, each
fenced by its own statement; while a batch is written in a worker thread (the
lock taken), the writes that arrive wait for the next batch, not for a turn of
their own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.embedded.groups import SqliteGroupStore
from storage.errors import MemberFenced
from storage.groups import MemberPosition, Membership
from storage.open import Backend, StorageConfig, open_backend
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def backend(anyio_backend: str, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(StorageConfig(kind="file", data_dir=str(tmp_path), shards=1))
    try:
        yield opened
    finally:
        await opened.close()


def store_of(backend: Backend) -> SqliteGroupStore:
    assert isinstance(backend.groups, SqliteGroupStore)
    return backend.groups


@contextlib.contextmanager
def statements(store: SqliteGroupStore) -> Iterator[list[str]]:
    """The SQL the store's connection runs meanwhile, each statement's first word."""
    seen: list[str] = []
    db = store._db
    assert db is not None
    db.set_trace_callback(lambda sql: seen.append(sql.split()[0].upper()))
    try:
        yield seen
    finally:
        db.set_trace_callback(None)


async def test_the_writes_of_one_loop_pass_share_one_transaction(backend: Backend) -> None:
    store = store_of(backend)
    ids = [f"m{i}" for i in range(8)]
    await store.put_group("t~g", Membership(1, frozenset(ids), b"doc"), expected_version=0)
    for m in ids:  # every member's row exists: each write is an update in place
        await store.put_position("t~g", m, MemberPosition(1, b"first"))
    with statements(store) as seen:
        await asyncio.gather(
            *(store.put_position("t~g", m, MemberPosition(1, m.encode())) for m in ids)
        )
    assert seen == ["BEGIN"] + ["UPDATE"] * len(ids) + ["COMMIT"]
    for m in ids:
        assert await store.get_position("t~g", m) == MemberPosition(1, m.encode())


async def test_a_fenced_write_in_a_batch_leaves_the_others_written(backend: Backend) -> None:
    store = store_of(backend)
    version = await store.put_group(
        "t~g", Membership(1, frozenset({"a", "b"}), b"doc"), expected_version=0
    )
    await store.put_position("t~g", "a", MemberPosition(1, b"a1"))
    await store.put_group(
        "t~g", Membership(2, frozenset({"a", "b"}), b"doc"), expected_version=version
    )
    with statements(store) as seen:
        stale, fresh = await asyncio.gather(
            store.put_position("t~g", "a", MemberPosition(1, b"stale")),
            store.put_position("t~g", "b", MemberPosition(2, b"b2")),
            return_exceptions=True,
        )
    assert (seen[0], seen[-1], seen.count("BEGIN")) == ("BEGIN", "COMMIT", 1)
    assert isinstance(stale, MemberFenced)
    assert fresh is None
    assert await store.get_position("t~g", "a") == MemberPosition(1, b"a1")
    assert await store.get_position("t~g", "b") == MemberPosition(2, b"b2")


async def test_writes_arriving_while_a_batch_is_in_flight_go_into_the_next(
    backend: Backend,
) -> None:
    store = store_of(backend)
    ids = [f"m{i}" for i in range(6)]
    await store.put_group("t~g", Membership(1, frozenset(ids), b"doc"), expected_version=0)
    for m in ids:
        await store.put_position("t~g", m, MemberPosition(1, b"first"))
    store._lock.acquire()  # as a commit in a worker thread holds it
    released = False
    try:
        with statements(store) as seen:
            first = [
                asyncio.ensure_future(store.put_position("t~g", m, MemberPosition(1, b"one")))
                for m in ids[:3]
            ]
            # The first batch goes to a worker thread, which waits for the lock.
            await wait_until(lambda: store._in_thread is not None, "a batch in a thread")
            later = [
                asyncio.ensure_future(store.put_position("t~g", m, MemberPosition(1, b"two")))
                for m in ids[3:]
            ]
            await wait_until(lambda: len(store._queued) == 3, "the later writes queued")
            assert [w.member_id for w in store._queued] == ids[3:]  # for the next batch
            assert not any(f.done() for f in first + later)
            store._lock.release()
            released = True
            await asyncio.wait_for(asyncio.gather(*first, *later), 10)
    finally:
        if not released:
            store._lock.release()
    assert seen == (["BEGIN"] + ["UPDATE"] * 3 + ["COMMIT"]) * 2
    for m in ids:
        expected = b"one" if m in ids[:3] else b"two"
        assert await store.get_position("t~g", m) == MemberPosition(1, expected)


async def test_a_batch_that_fails_answers_every_writer_and_writes_none(
    backend: Backend,
) -> None:
    store = store_of(backend)
    await store.put_group("t~g", Membership(1, frozenset({"a", "b"}), b"doc"), expected_version=0)
    writes = [
        asyncio.ensure_future(store.put_position("t~g", m, MemberPosition(1, m.encode())))
        for m in ("a", "b")
    ]
    db = store._db
    assert db is not None
    db.execute("BEGIN")  # the batch's own transaction cannot start
    try:
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
    finally:
        db.execute("ROLLBACK")
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert await store.get_position("t~g", "a") is None
    assert await store.get_position("t~g", "b") is None
    await store.put_position("t~g", "a", MemberPosition(1, b"a"))  # the next batch writes
    assert await store.get_position("t~g", "a") == MemberPosition(1, b"a")
