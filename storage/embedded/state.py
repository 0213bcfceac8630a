"""The embedded StateStore: a small durable key-value table in SQLite.

Lives at `<data_dir>/state.db` in WAL mode with synchronous=FULL, so a `put`
that returned survives a crash. Expiry is an `expires_at` column (wall-clock
seconds): an expired row reads as absent at once and is purged now and then.
sqlite3 blocks, so every call runs in a worker thread behind one lock. A write
that finds the disk full raises DiskFull, as the log's appends do, and changes
nothing (SQLite rolls the statement back).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from storage.errors import DiskFull, StoreClosed

T = TypeVar("T")

_PURGE_EVERY = 256  # writes between opportunistic purges of expired rows


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), or ENOSPC/EDQUOT from the OS."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
            "database or disk is full" in str(exc)
        )
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def sqlite_space_checked(what: str, fn: Callable[[], T]) -> T:
    """`fn()`, with a full disk under one of the SQLite stores reported as DiskFull
    naming `what` (the state store, consumer groups, the schema registry)."""
    try:
        return fn()
    except (sqlite3.Error, OSError) as exc:
        if is_disk_full(exc):
            raise DiskFull(f"no space left on the device for {what}") from exc
        raise


def open_sqlite(data_dir: str, filename: str, statements: Sequence[str]) -> sqlite3.Connection:
    """A store's SQLite file in `data_dir`, in WAL mode with full syncs (what every
    embedded store starts from), after `statements` (its own pragmas and tables);
    closed again if any of them fails. Blocks: run it in a worker thread."""
    os.makedirs(data_dir, exist_ok=True)
    db = sqlite3.connect(
        os.path.join(data_dir, filename), isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for statement in statements:
            db.execute(statement)
    except BaseException:
        db.close()
        raise
    return db


class SqliteStateStore:
    """StateStore on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        self._writes = 0

    @classmethod
    async def open(cls, data_dir: str) -> SqliteStateStore:
        def connect() -> sqlite3.Connection:
            return open_sqlite(
                data_dir,
                "state.db",
                [
                    "CREATE TABLE IF NOT EXISTS kv ("
                    " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)"
                ],
            )

        return cls(await asyncio.to_thread(connect))

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosed("the state store is closed")
        return self._db

    @staticmethod
    def _expiry(ttl_s: float | None) -> float | None:
        return None if ttl_s is None else time.time() + ttl_s

    def _get(self, key: str) -> bytes | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                    (key, time.time()),
                )
                .fetchone()
            )
        return None if row is None else bytes(row[0])

    def _put(self, key: str, value: bytes, ttl_s: float | None) -> None:
        with self._lock:
            db = self._conn()
            db.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                (key, value, self._expiry(ttl_s)),
            )
            self._maybe_purge(db)

    def _put_if_absent(self, key: str, value: bytes, ttl_s: float | None) -> bytes | None:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                    (key, time.time()),
                ).fetchone()
                if row is None:
                    db.execute(
                        "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                        (key, value, self._expiry(ttl_s)),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (disk full)
                    db.execute("ROLLBACK")
                raise
            if row is None:
                self._maybe_purge(db)
                return None
            return bytes(row[0])

    def _delete(self, key: str) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM kv WHERE key = ?", (key,))

    def _maybe_purge(self, db: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            # Housekeeping after a write that already committed: if it fails (the
            # disk is full), the write still stands and the purge waits for the next.
            with contextlib.suppress(sqlite3.Error):
                db.execute(
                    "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?",
                    (time.time(),),
                )

    def _close(self) -> None:
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(
            sqlite_space_checked, "the state store", lambda: self._get(key)
        )

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        await asyncio.to_thread(
            sqlite_space_checked, "the state store", lambda: self._put(key, value, ttl_s)
        )

    async def put_if_absent(
        self, key: str, value: bytes, *, ttl_s: float | None = None
    ) -> bytes | None:
        return await asyncio.to_thread(
            sqlite_space_checked, "the state store", lambda: self._put_if_absent(key, value, ttl_s)
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(sqlite_space_checked, "the state store", lambda: self._delete(key))

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
