"""The embedded GroupStore: consumer groups in SQLite, beside the log.

Lives at `<data_dir>/groups.db` in WAL mode. Every operation is one SQLite
transaction (`BEGIN IMMEDIATE`), so a compare-and-set and a fenced commit read
and write in one atomic step. Commits and operator resets are written with
`synchronous=FULL` (a 204 commit is on disk, as an fsynced record is);
membership and reading positions with `synchronous=NORMAL` (WAL mode keeps
them across a process crash, and each FULL commit also makes every earlier
transaction durable, since the WAL is synced in order). sqlite3 blocks, so
each call runs in a worker thread behind one lock. `wait_for_records` is the
log engine's own multi-partition wake-up.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.state import sqlite_space_checked
from storage.errors import GroupNotFound, MemberFenced, StoreClosed, VersionConflict
from storage.groups import (
    CommittedOffset,
    MemberPosition,
    Membership,
    MemberView,
    OffsetCommit,
    StoredGroup,
)

T = TypeVar("T")

GROUPS_DB = "groups.db"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS groups ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL, generation INTEGER NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS members ("
    " grp TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (grp, member))",
    "CREATE TABLE IF NOT EXISTS offsets ("
    " grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next INTEGER NOT NULL,"
    " metadata TEXT NOT NULL, committed_ms INTEGER NOT NULL, PRIMARY KEY (grp, topic, part))",
    "CREATE TABLE IF NOT EXISTS positions ("
    " grp TEXT NOT NULL, member TEXT NOT NULL, generation INTEGER NOT NULL, body BLOB NOT NULL,"
    " PRIMARY KEY (grp, member))",
)


class SqliteGroupStore:
    """GroupStore on one SQLite connection, waits on the embedded log."""

    def __init__(self, connection: sqlite3.Connection, log: EmbeddedLogStore) -> None:
        self._db: sqlite3.Connection | None = connection
        self._log = log
        self._lock = threading.Lock()
        self._durable = True  # the connection's current synchronous mode is FULL

    @classmethod
    async def open(cls, data_dir: str, log: EmbeddedLogStore) -> SqliteGroupStore:
        def connect() -> sqlite3.Connection:
            os.makedirs(data_dir, exist_ok=True)
            db = sqlite3.connect(
                os.path.join(data_dir, GROUPS_DB), isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                for statement in _SCHEMA:
                    db.execute(statement)
            except BaseException:
                db.close()
                raise
            return db

        return cls(await asyncio.to_thread(sqlite_space_checked, "consumer groups", connect), log)

    # -- the transaction every operation runs in ----------------------------------------

    def _transaction(self, durable: bool, body: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            db = self._db
            if db is None:
                raise StoreClosed("the group store is closed")
            if durable != self._durable:
                db.execute("PRAGMA synchronous=" + ("FULL" if durable else "NORMAL"))
                self._durable = durable
            db.execute("BEGIN IMMEDIATE")
            try:
                result = body(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (disk full)
                    db.execute("ROLLBACK")
                raise
            return result

    def _read(self, body: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            db = self._db
            if db is None:
                raise StoreClosed("the group store is closed")
            return body(db)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(sqlite_space_checked, "consumer groups", fn)

    @staticmethod
    def _version(db: sqlite3.Connection, group: str) -> tuple[int, int] | None:
        row = db.execute("SELECT version, generation FROM groups WHERE name = ?", (group,))
        found = row.fetchone()
        return None if found is None else (int(found[0]), int(found[1]))

    @staticmethod
    def _fence(db: sqlite3.Connection, group: str, member_id: str, generation: int) -> None:
        found = SqliteGroupStore._version(db, group)
        if found is None:
            raise GroupNotFound(group)
        current = found[1]
        member = db.execute(
            "SELECT 1 FROM members WHERE grp = ? AND member = ?", (group, member_id)
        ).fetchone()
        if current != generation or member is None:
            raise MemberFenced(group, member_id, generation, current)

    @staticmethod
    def _write_offsets(
        db: sqlite3.Connection, group: str, offsets: Iterable[OffsetCommit], now_ms: int
    ) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO offsets (grp, topic, part, next, metadata, committed_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(group, o.topic, o.partition, o.offset, o.metadata, now_ms) for o in offsets],
        )

    # -- GroupStore -------------------------------------------------------------------

    @staticmethod
    def _group(db: sqlite3.Connection, group: str) -> StoredGroup | None:
        row = db.execute(
            "SELECT version, generation, body FROM groups WHERE name = ?", (group,)
        ).fetchone()
        if row is None:
            return None
        members = db.execute("SELECT member FROM members WHERE grp = ?", (group,))
        membership = Membership(
            generation=int(row[1]),
            members=frozenset(str(m[0]) for m in members.fetchall()),
            body=bytes(row[2]),
        )
        return StoredGroup(group, int(row[0]), membership)

    @staticmethod
    def _committed(db: sqlite3.Connection, group: str) -> list[CommittedOffset]:
        rows = db.execute(
            "SELECT topic, part, next, metadata, committed_ms FROM offsets"
            " WHERE grp = ? ORDER BY topic, part",
            (group,),
        )
        return [
            CommittedOffset(str(t), int(p), int(n), str(m), int(at))
            for t, p, n, m, at in rows.fetchall()
        ]

    @staticmethod
    def _position(db: sqlite3.Connection, group: str, member_id: str) -> MemberPosition | None:
        row = db.execute(
            "SELECT generation, body FROM positions WHERE grp = ? AND member = ?",
            (group, member_id),
        ).fetchone()
        return None if row is None else MemberPosition(int(row[0]), bytes(row[1]))

    async def member_view(self, group: str, member_id: str) -> MemberView:
        def view(db: sqlite3.Connection) -> MemberView:
            return MemberView(
                self._group(db, group),
                self._position(db, group, member_id),
                self._committed(db, group),
            )

        return await self._run(lambda: self._read(view))

    async def get_group(self, group: str) -> StoredGroup | None:
        return await self._run(lambda: self._read(lambda db: self._group(db, group)))

    async def put_group(self, group: str, membership: Membership, *, expected_version: int) -> int:
        def put(db: sqlite3.Connection) -> int:
            found = self._version(db, group)
            actual = 0 if found is None else found[0]
            if actual != expected_version:
                raise VersionConflict(group, expected_version, actual)
            version = actual + 1
            db.execute(
                "INSERT OR REPLACE INTO groups (name, version, generation, body)"
                " VALUES (?, ?, ?, ?)",
                (group, version, membership.generation, membership.body),
            )
            rows = db.execute("SELECT member FROM members WHERE grp = ?", (group,))
            current = {str(r[0]) for r in rows.fetchall()}
            if current != membership.members:  # most writes keep the members (heartbeats)
                db.executemany(
                    "DELETE FROM members WHERE grp = ? AND member = ?",
                    [(group, m) for m in sorted(current - membership.members)],
                )
                db.executemany(
                    "INSERT INTO members (grp, member) VALUES (?, ?)",
                    [(group, m) for m in sorted(membership.members - current)],
                )
            db.execute(
                "DELETE FROM positions WHERE grp = ? AND member NOT IN"
                " (SELECT member FROM members WHERE grp = ?)",
                (group, group),
            )
            return version

        return await self._run(lambda: self._transaction(False, put))

    async def list_groups(self, prefix: str = "") -> list[str]:
        def names(db: sqlite3.Connection) -> list[str]:
            # substr, not LIKE: a prefix may hold `%` or `_`.
            rows = db.execute(
                "SELECT name FROM groups WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix),
            )
            return [str(r[0]) for r in rows.fetchall()]

        return await self._run(lambda: self._read(names))

    async def delete_group(self, group: str, *, expected_version: int) -> None:
        def delete(db: sqlite3.Connection) -> None:
            found = self._version(db, group)
            if found is None:
                raise GroupNotFound(group)
            if found[0] != expected_version:
                raise VersionConflict(group, expected_version, found[0])
            for table, column in (
                ("groups", "name"),
                ("members", "grp"),
                ("offsets", "grp"),
                ("positions", "grp"),
            ):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (group,))  # noqa: S608

        await self._run(lambda: self._transaction(True, delete))

    async def commit_offsets(
        self,
        group: str,
        member_id: str,
        generation: int,
        offsets: Sequence[OffsetCommit],
        *,
        now_ms: int,
    ) -> None:
        def commit(db: sqlite3.Connection) -> None:
            self._fence(db, group, member_id, generation)
            self._write_offsets(db, group, offsets, now_ms)

        await self._run(lambda: self._transaction(True, commit))

    async def reset_offsets(
        self,
        group: str,
        offsets: Sequence[OffsetCommit],
        *,
        expected_version: int,
        now_ms: int,
    ) -> None:
        def reset(db: sqlite3.Connection) -> None:
            found = self._version(db, group)
            if found is None:
                raise GroupNotFound(group)
            if found[0] != expected_version:
                raise VersionConflict(group, expected_version, found[0])
            self._write_offsets(db, group, offsets, now_ms)
            db.execute("DELETE FROM positions WHERE grp = ?", (group,))

        await self._run(lambda: self._transaction(True, reset))

    async def committed_offsets(self, group: str) -> list[CommittedOffset]:
        return await self._run(lambda: self._read(lambda db: self._committed(db, group)))

    async def get_position(self, group: str, member_id: str) -> MemberPosition | None:
        return await self._run(lambda: self._read(lambda db: self._position(db, group, member_id)))

    async def put_position(self, group: str, member_id: str, position: MemberPosition) -> None:
        def put(db: sqlite3.Connection) -> None:
            self._fence(db, group, member_id, position.generation)
            db.execute(
                "INSERT OR REPLACE INTO positions (grp, member, generation, body)"
                " VALUES (?, ?, ?, ?)",
                (group, member_id, position.generation, position.body),
            )

        await self._run(lambda: self._transaction(False, put))

    async def wait_for_records(
        self, positions: Mapping[tuple[str, int], int], timeout_s: float
    ) -> bool:
        return await self._log.wait_for_any(positions, timeout_s)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._db is not None:
                    db, self._db = self._db, None
                    db.close()

        await asyncio.to_thread(close)
