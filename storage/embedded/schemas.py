"""The embedded SchemaStore: the registry's subjects, versions and config in SQLite.

Lives at `<data_dir>/schemas.db` in WAL mode with synchronous=FULL, so a
registration that returned survives a crash. Each call is one transaction
(`BEGIN IMMEDIATE`), so the check of `expect_latest` and the insert of the new
version are one atomic step. Ids come from a per-namespace counter that only
grows, so a permanently deleted schema's id is never given to another.
sqlite3 blocks: every call runs in a worker thread behind one lock.

`changes` counts committed writes in memory: the data directory belongs to one
process (`lock.py`), so no write can reach `schemas.db` without passing here,
and the count is exact. It moves inside the worker thread right after the
commit, so a caller that was cancelled while its write ran still leaves it
moved, and a reply to the write is only sent after it moved.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from storage.embedded.state import open_sqlite, sqlite_space_checked
from storage.errors import (
    InvalidCompatibility,
    SchemaNotFound,
    StoreClosed,
    SubjectChanged,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from storage.schemas import COMPATIBILITY_LEVELS, Registration, StoredSchema, SubjectVersion

T = TypeVar("T")

SCHEMAS_DB = "schemas.db"
DEFAULT_SUBJECT = ""  # the config row of a namespace's default level (no subject is empty)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    namespace TEXT NOT NULL, id INTEGER NOT NULL, schema_type TEXT NOT NULL,
    schema TEXT NOT NULL, canonical TEXT NOT NULL,
    PRIMARY KEY (namespace, id));
CREATE UNIQUE INDEX IF NOT EXISTS schemas_by_canonical
    ON schemas (namespace, schema_type, canonical);
CREATE TABLE IF NOT EXISTS versions (
    namespace TEXT NOT NULL, subject TEXT NOT NULL, version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, subject, version));
CREATE TABLE IF NOT EXISTS ids (namespace TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS config (
    namespace TEXT NOT NULL, subject TEXT NOT NULL, level TEXT NOT NULL,
    PRIMARY KEY (namespace, subject));
"""
_STATEMENTS = tuple(s.strip() for s in _SCHEMA.split(";") if s.strip())

_VERSION_COLUMNS = (
    "SELECT v.subject, v.version, v.schema_id, s.schema_type, s.schema, v.deleted"
    " FROM versions v JOIN schemas s ON s.namespace = v.namespace AND s.id = v.schema_id"
)

Row = tuple[str, int, int, str, str, int]


def _version(row: Row) -> SubjectVersion:
    subject, version, schema_id, schema_type, schema, deleted = row
    return SubjectVersion(subject, version, schema_id, schema_type, schema, bool(deleted))


class SqliteSchemaStore:
    """SchemaStore on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db: sqlite3.Connection | None = connection
        self._lock = threading.Lock()
        self._changes = 0

    @classmethod
    async def open(cls, data_dir: str) -> SqliteSchemaStore:
        def connect() -> sqlite3.Connection:
            return open_sqlite(data_dir, SCHEMAS_DB, _STATEMENTS)

        return cls(await asyncio.to_thread(connect))

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        def call() -> T:
            with self._lock:
                if self._db is None:
                    raise StoreClosed("the schema registry is closed")
                db = self._db
                if not write:
                    return fn(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                finally:
                    self._changes += 1  # also after a failure: whatever it did is seen
                return result

        return await asyncio.to_thread(sqlite_space_checked, "the schema registry", call)

    async def changes(self) -> int:
        return self._changes

    # -- reads ------------------------------------------------------------

    @staticmethod
    def _rows(db: sqlite3.Connection, ns: str, subject: str, include_deleted: bool) -> list[Row]:
        rows: list[Row] = db.execute(
            _VERSION_COLUMNS + " WHERE v.namespace = ? AND v.subject = ?"
            " AND (v.deleted = 0 OR ?) ORDER BY v.version",
            (ns, subject, include_deleted),
        ).fetchall()
        return rows

    @staticmethod
    def _latest_live(db: sqlite3.Connection, ns: str, subject: str) -> int | None:
        row = db.execute(
            "SELECT MAX(version) FROM versions WHERE namespace = ? AND subject = ? AND deleted = 0",
            (ns, subject),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def lookup(
        self, namespace: str, subject: str, schema_type: str, canonical: str
    ) -> SubjectVersion | None:
        def find(db: sqlite3.Connection) -> SubjectVersion | None:
            row = db.execute(
                _VERSION_COLUMNS + " WHERE v.namespace = ? AND v.subject = ? AND v.deleted = 0"
                " AND s.schema_type = ? AND s.canonical = ? ORDER BY v.version LIMIT 1",
                (namespace, subject, schema_type, canonical),
            ).fetchone()
            return None if row is None else _version(row)

        return await self._run(find)

    async def versions(
        self, namespace: str, subject: str, *, include_deleted: bool = False
    ) -> list[SubjectVersion]:
        def find(db: sqlite3.Connection) -> list[SubjectVersion]:
            rows = self._rows(db, namespace, subject, include_deleted)
            if not rows:
                raise SubjectNotFound(subject)
            return [_version(r) for r in rows]

        return await self._run(find)

    async def version(
        self, namespace: str, subject: str, version: int | None, *, include_deleted: bool = False
    ) -> SubjectVersion:
        def find(db: sqlite3.Connection) -> SubjectVersion:
            rows = self._rows(db, namespace, subject, include_deleted)
            if not rows:
                raise SubjectNotFound(subject)
            if version is None:
                live = [r for r in rows if not r[5]]
                if not live:
                    raise VersionNotFound(subject, None)
                return _version(live[-1])
            for row in rows:
                if row[1] == version:
                    return _version(row)
            raise VersionNotFound(subject, version)

        return await self._run(find)

    async def schema(self, namespace: str, schema_id: int) -> StoredSchema:
        def find(db: sqlite3.Connection) -> StoredSchema:
            row = db.execute(
                "SELECT id, schema_type, schema FROM schemas WHERE namespace = ? AND id = ?",
                (namespace, schema_id),
            ).fetchone()
            if row is None:
                raise SchemaNotFound(schema_id)
            return StoredSchema(int(row[0]), str(row[1]), str(row[2]))

        return await self._run(find)

    async def subjects(self, namespace: str, *, include_deleted: bool = False) -> list[str]:
        def find(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT DISTINCT subject FROM versions"
                " WHERE namespace = ? AND (deleted = 0 OR ?) ORDER BY subject",
                (namespace, include_deleted),
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._run(find)

    async def compatibility(self, namespace: str, subject: str | None) -> str | None:
        key = DEFAULT_SUBJECT if subject is None else subject

        def find(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT level FROM config WHERE namespace = ? AND subject = ?", (namespace, key)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(find)

    async def namespaces(self) -> list[str]:
        def find(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT namespace FROM versions UNION SELECT namespace FROM config"
                " UNION SELECT namespace FROM schemas ORDER BY 1"
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._run(find)

    # -- writes -----------------------------------------------------------

    async def register(
        self,
        namespace: str,
        subject: str,
        schema_type: str,
        schema: str,
        canonical: str,
        *,
        expect_latest: int | None,
    ) -> Registration:
        def write(db: sqlite3.Connection) -> Registration:
            row = db.execute(
                "SELECT v.version, v.schema_id FROM versions v JOIN schemas s"
                " ON s.namespace = v.namespace AND s.id = v.schema_id"
                " WHERE v.namespace = ? AND v.subject = ? AND v.deleted = 0"
                " AND s.schema_type = ? AND s.canonical = ? ORDER BY v.version LIMIT 1",
                (namespace, subject, schema_type, canonical),
            ).fetchone()
            if row is not None:
                return Registration(int(row[1]), int(row[0]), created=False)
            latest = self._latest_live(db, namespace, subject)
            if latest != expect_latest:
                raise SubjectChanged(subject, expect_latest, latest)
            found = db.execute(
                "SELECT id FROM schemas WHERE namespace = ? AND schema_type = ? AND canonical = ?",
                (namespace, schema_type, canonical),
            ).fetchone()
            if found is not None:
                schema_id = int(found[0])
            else:
                last = db.execute(
                    "SELECT last_id FROM ids WHERE namespace = ?", (namespace,)
                ).fetchone()
                schema_id = 1 if last is None else int(last[0]) + 1
                db.execute(
                    "INSERT OR REPLACE INTO ids (namespace, last_id) VALUES (?, ?)",
                    (namespace, schema_id),
                )
                db.execute(
                    "INSERT INTO schemas (namespace, id, schema_type, schema, canonical)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (namespace, schema_id, schema_type, schema, canonical),
                )
            top = db.execute(
                "SELECT MAX(version) FROM versions WHERE namespace = ? AND subject = ?",
                (namespace, subject),
            ).fetchone()
            version = 1 if top is None or top[0] is None else int(top[0]) + 1
            db.execute(
                "INSERT INTO versions (namespace, subject, version, schema_id) VALUES (?, ?, ?, ?)",
                (namespace, subject, version, schema_id),
            )
            return Registration(schema_id, version, created=True)

        return await self._run(write, write=True)

    @staticmethod
    def _drop_unused_schemas(db: sqlite3.Connection, ns: str) -> None:
        db.execute(
            "DELETE FROM schemas WHERE namespace = ? AND id NOT IN"
            " (SELECT schema_id FROM versions WHERE namespace = ?)",
            (ns, ns),
        )

    async def delete_version(
        self, namespace: str, subject: str, version: int, *, permanent: bool
    ) -> int:
        def write(db: sqlite3.Connection) -> int:
            rows = self._rows(db, namespace, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            if not permanent and all(r[5] for r in rows):
                raise SubjectNotFound(subject)
            match = [r for r in rows if r[1] == version]
            if not match:
                raise VersionNotFound(subject, version)
            deleted = bool(match[0][5])
            key = (namespace, subject, version)
            if not permanent:
                if deleted:
                    raise VersionSoftDeleted(subject, version)
                db.execute(
                    "UPDATE versions SET deleted = 1"
                    " WHERE namespace = ? AND subject = ? AND version = ?",
                    key,
                )
                return version
            if not deleted:
                raise VersionNotSoftDeleted(subject, version)
            db.execute(
                "DELETE FROM versions WHERE namespace = ? AND subject = ? AND version = ?", key
            )
            self._drop_unused_schemas(db, namespace)
            return version

        return await self._run(write, write=True)

    async def delete_subject(self, namespace: str, subject: str, *, permanent: bool) -> list[int]:
        def write(db: sqlite3.Connection) -> list[int]:
            rows = self._rows(db, namespace, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            live = [r[1] for r in rows if not r[5]]
            if not permanent:
                if not live:
                    raise SubjectSoftDeleted(subject)
                db.execute(
                    "UPDATE versions SET deleted = 1 WHERE namespace = ? AND subject = ?",
                    (namespace, subject),
                )
                return live
            if live:
                raise SubjectNotSoftDeleted(subject)
            db.execute(
                "DELETE FROM versions WHERE namespace = ? AND subject = ?", (namespace, subject)
            )
            db.execute(
                "DELETE FROM config WHERE namespace = ? AND subject = ?", (namespace, subject)
            )
            self._drop_unused_schemas(db, namespace)
            return [r[1] for r in rows]

        return await self._run(write, write=True)

    async def set_compatibility(self, namespace: str, subject: str | None, level: str) -> None:
        if level not in COMPATIBILITY_LEVELS:
            raise InvalidCompatibility(level, COMPATIBILITY_LEVELS)
        key = DEFAULT_SUBJECT if subject is None else subject

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO config (namespace, subject, level) VALUES (?, ?, ?)",
                (namespace, key, level),
            )

        await self._run(write, write=True)

    async def delete_compatibility(self, namespace: str, subject: str | None) -> str | None:
        key = DEFAULT_SUBJECT if subject is None else subject

        def write(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT level FROM config WHERE namespace = ? AND subject = ?", (namespace, key)
            ).fetchone()
            db.execute("DELETE FROM config WHERE namespace = ? AND subject = ?", (namespace, key))
            return None if row is None else str(row[0])

        return await self._run(write, write=True)

    async def purge(self, namespace: str) -> int:
        def write(db: sqlite3.Connection) -> int:
            removed = db.execute("DELETE FROM versions WHERE namespace = ?", (namespace,)).rowcount
            for table in ("schemas", "ids", "config"):
                db.execute(f"DELETE FROM {table} WHERE namespace = ?", (namespace,))  # noqa: S608
            return int(removed)

        return await self._run(write, write=True)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._db is not None:
                    db, self._db = self._db, None
                    db.close()

        await asyncio.to_thread(close)
