"""The embedded StateStore: a small durable key-value table in SQLite.

Lives at `<data_dir>/state.db` in WAL mode with synchronous=FULL, so a `put`
that returned survives a crash. Expiry is an `expires_at` column (wall-clock
seconds): an expired row reads as absent at once and is purged now and then.
sqlite3 blocks, so every call runs in a worker thread behind one lock.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

from storage.errors import StoreClosed

_PURGE_EVERY = 256  # writes between opportunistic purges of expired rows


class SqliteStateStore:
    """StateStore on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        self._writes = 0

    @classmethod
    async def open(cls, data_dir: str) -> SqliteStateStore:
        def connect() -> sqlite3.Connection:
            os.makedirs(data_dir, exist_ok=True)
            db = sqlite3.connect(
                os.path.join(data_dir, "state.db"), isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS kv ("
                    " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)"
                )
            except BaseException:
                db.close()
                raise
            return db

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
            db.execute(
                "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),)
            )

    def _close(self) -> None:
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        await asyncio.to_thread(self._put, key, value, ttl_s)

    async def put_if_absent(
        self, key: str, value: bytes, *, ttl_s: float | None = None
    ) -> bytes | None:
        return await asyncio.to_thread(self._put_if_absent, key, value, ttl_s)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
