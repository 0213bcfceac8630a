"""The embedded GroupStore: consumer groups in SQLite, beside the log.

Lives at `<data_dir>/groups.db` in WAL mode. Every operation is one SQLite
transaction (`BEGIN IMMEDIATE`), so a compare-and-set and a fenced commit read
and write in one atomic step (a fence reads the file, never memory). A member
parked until its group's generation moves on is woken by the write that moves
it, once it has committed. Commits and operator resets are written with
`synchronous=FULL` (a 204 commit is on disk, as an fsynced record is);
membership and reading positions with `synchronous=NORMAL` (WAL mode keeps
them across a process crash, and each FULL commit also makes every earlier
transaction durable, since the WAL is synced in order). sqlite3 blocks, so
each call runs in a worker thread behind one lock. `wait_for_records` is the
log engine's own multi-partition wake-up.

Reads are served from memory. The store is the only writer of its file (the
data directory's lock keeps every other process out), so it keeps what it
last read or wrote of a group (the row, every member's position, the
commits) as one immutable `_Cached` snapshot, replaced under the lock right
after the transaction that changed it commits. A group fetch's read
(`member_view`) is then a dictionary look-up instead of a thread hop and
three queries; a group not in memory is read once, in a worker thread.

A reading position (one per group fetch) is written on the event loop when
the lock is free: a transaction with `synchronous=NORMAL` is a WAL append into
the page cache, a third of what the hop to a worker thread costs (measured:
~33 us of CPU against ~80 us for the hop alone). The positions of concurrent
fetches are written together (group commit): a write waits for the end of
the event loop's pass, and every write that arrived in the pass goes into one
transaction, each still fenced by its own statement, so a stale write fails
alone and the others land; when the lock is taken (a commit in a worker
thread), the batch is written in a worker thread and writes arriving
meanwhile wait for the next one. A caller is answered once its own write has
committed, as durable as before (a WAL append with `synchronous=NORMAL`).

WAL checkpoints run off every request's path: SQLite's own would run inside
whichever commit crosses its threshold (`wal_autocheckpoint` is off), so a
thread of the store's own checkpoints the WAL every `CHECKPOINT_EVERY`
transactions, on a connection of its own, in SQLite's passive mode (writers
go on meanwhile). SQLite writes the WAL over from its start once a
checkpoint has copied all of it; under writes that never pause for as long
as a checkpoint's sync it would grow without end, so past `WAL_BOUND_FRAMES`
the checkpoint holds the writers off (the store's lock) and empties it: the
one moment writes wait for a checkpoint, once in thousands of transactions.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.state import open_sqlite, sqlite_space_checked
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


# A member's position, written only while it is in the generation it names.
_UPDATE_POSITION = (
    "UPDATE positions SET generation = ?3, body = ?4 WHERE grp = ?1 AND member = ?2"
    " AND EXISTS (SELECT 1 FROM groups WHERE name = ?1 AND generation = ?3)"
    " AND EXISTS (SELECT 1 FROM members WHERE grp = ?1 AND member = ?2)"
)
_INSERT_POSITION = (
    "INSERT OR REPLACE INTO positions (grp, member, generation, body) SELECT ?1, ?2, ?3, ?4"
    " WHERE EXISTS (SELECT 1 FROM groups WHERE name = ?1 AND generation = ?3)"
    " AND EXISTS (SELECT 1 FROM members WHERE grp = ?1 AND member = ?2)"
)

CHECKPOINT_EVERY = 500
"""Transactions between WAL checkpoints (SQLite's own default is 1000 pages,
about one page a position write)."""

WAL_BOUND_FRAMES = 16 * CHECKPOINT_EVERY
"""WAL frames (pages) past which a checkpoint holds the writers off to empty the
WAL, when passive checkpoints never found it copied whole (a few times the WAL
between checkpoints: about 32 MiB of 4 KiB pages)."""

CACHED_GROUPS = 1024
"""Groups whose last read or written state the store keeps in memory (the ones
written or read most recently; a group past the bound is read from the file)."""


class _Checkpoints:
    """The WAL's checkpoints, in a thread and on a connection of their own, so
    that no request waits for one: `due()` asks for one and returns at once.

    A passive checkpoint copies the WAL's committed pages into the database file
    and syncs it while writers go on appending; SQLite writes the WAL over from
    its start at the first write after a checkpoint that copied all of it. When
    writes never paused long enough for that and the WAL has grown past
    `WAL_BOUND_FRAMES`, the checkpoint takes the store's lock (`writers`), so no
    write can come in between, and empties the WAL (`TRUNCATE`)."""

    def __init__(self, path: str, writers: threading.Lock) -> None:
        self._path = path
        self._writers = writers
        self._wanted = threading.Condition()
        self._due = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="groups-checkpoints", daemon=True)
        self._thread.start()

    def due(self) -> None:
        with self._wanted:
            self._due = True
            self._wanted.notify()

    def close(self) -> None:
        with self._wanted:
            self._closing = True
            self._wanted.notify()
        self._thread.join()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                with self._wanted:
                    while not self._due and not self._closing:
                        self._wanted.wait()
                    if self._closing:
                        return
                    self._due = False
                try:
                    if db is None:
                        db = sqlite3.connect(self._path, isolation_level=None)
                    self.checkpoint(db)
                except sqlite3.Error:
                    continue  # the next one tries again; the writes stand meanwhile
        finally:
            if db is not None:
                db.close()

    def checkpoint(self, db: sqlite3.Connection) -> None:
        if self.passive(db) > WAL_BOUND_FRAMES:
            with self._writers:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def passive(db: sqlite3.Connection) -> int:
        """A passive checkpoint; returns the frames the WAL holds."""
        row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return 0 if row is None else int(row[1])


@dataclass(frozen=True, slots=True)
class _PositionWrite:
    group: str
    member_id: str
    position: MemberPosition
    done: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class _Cached:
    """One group as it is in the file: never changed once published, so a reader
    on the event loop sees one consistent state without taking the lock."""

    group: StoredGroup | None
    positions: Mapping[str, MemberPosition] = field(default_factory=dict)
    committed: tuple[CommittedOffset, ...] = ()


def _moved(positions: Mapping[str, MemberPosition]) -> Callable[[_Cached], _Cached]:
    def moved(was: _Cached) -> _Cached:
        return _Cached(was.group, {**was.positions, **positions}, was.committed)

    return moved


class SqliteGroupStore:
    """GroupStore on one SQLite connection, waits on the embedded log."""

    def __init__(self, connection: sqlite3.Connection, log: EmbeddedLogStore, path: str) -> None:
        self._db: sqlite3.Connection | None = connection
        self._log = log
        self._lock = threading.Lock()
        self._durable = True  # the connection's current synchronous mode is FULL
        # Changed only under the lock; the oldest written or read goes first (an
        # OrderedDict: a dict's first key is found by skipping its deleted slots).
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._unchecked = 0  # transactions since the last checkpoint was asked for
        self._checkpoints = _Checkpoints(path, self._lock)
        # Position writes waiting for the next batch, and whether a batch is due or
        # being written (then a new write only joins the queue). On the loop only.
        self._queued: list[_PositionWrite] = []
        self._batching = False
        # The batch being written in a worker thread: held here because the loop keeps
        # only a weak reference to a task, and a batch's writers wait on its end.
        self._in_thread: asyncio.Future[None] | None = None
        # Members parked until their group leaves a generation: future → that generation.
        # Changed on the event loop only.
        self._parked: dict[str, dict[asyncio.Future[None], int]] = {}

    @classmethod
    async def open(cls, data_dir: str, log: EmbeddedLogStore) -> SqliteGroupStore:
        def connect() -> sqlite3.Connection:
            # checkpoints run off the loop (see CHECKPOINT_EVERY)
            pragmas = ("PRAGMA wal_autocheckpoint=0",)
            return open_sqlite(data_dir, GROUPS_DB, pragmas + _SCHEMA)

        connection = await asyncio.to_thread(sqlite_space_checked, "consumer groups", connect)
        return cls(connection, log, os.path.join(data_dir, GROUPS_DB))

    # -- the transaction every operation runs in ----------------------------------------

    def _transaction(
        self,
        durable: bool,
        body: Callable[[sqlite3.Connection], T],
        then: Callable[[T], None] | None = None,
    ) -> T:
        """`body` in one transaction, in a worker thread; `then(result)` once it has
        committed, still under the lock (where the cache follows the file)."""
        with self._lock:
            return self._locked_transaction(durable, body, then)

    def _locked_transaction(
        self,
        durable: bool,
        body: Callable[[sqlite3.Connection], T],
        then: Callable[[T], None] | None,
    ) -> T:
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
        self._count_transaction()
        if then is not None:
            then(result)
        return result

    def _autocommit(
        self, statement: Callable[[sqlite3.Connection], T], then: Callable[[T], None]
    ) -> T:
        """One statement as its own transaction (`synchronous=NORMAL`), the lock held:
        a quarter of the calls of BEGIN, a fence's two reads, the write and COMMIT."""
        db = self._db
        if db is None:
            raise StoreClosed("the group store is closed")
        if self._durable:
            db.execute("PRAGMA synchronous=NORMAL")
            self._durable = False
        result = statement(db)
        self._count_transaction()
        then(result)
        return result

    def _count_transaction(self) -> None:
        """A transaction committed (under the lock): a checkpoint every
        `CHECKPOINT_EVERY`, in the checkpoints' thread (never waited for)."""
        self._unchecked += 1
        if self._unchecked >= CHECKPOINT_EVERY:
            self._unchecked = 0
            self._checkpoints.due()

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
    def _positions(db: sqlite3.Connection, group: str) -> dict[str, MemberPosition]:
        rows = db.execute("SELECT member, generation, body FROM positions WHERE grp = ?", (group,))
        return {str(m): MemberPosition(int(g), bytes(b)) for m, g, b in rows.fetchall()}

    # -- the in-memory copy (changed only under the lock) ------------------------------

    def _publish(self, group: str, cached: _Cached) -> None:
        if group in self._cache:
            self._cache.move_to_end(group)
        elif len(self._cache) >= CACHED_GROUPS:
            self._cache.popitem(last=False)
        self._cache[group] = cached

    def _fill(self, db: sqlite3.Connection, group: str) -> _Cached:
        cached = self._cache.get(group)
        if cached is None:
            found = self._group(db, group)
            cached = _Cached(
                found,
                self._positions(db, group) if found is not None else {},
                tuple(self._committed(db, group)) if found is not None else (),
            )
            self._publish(group, cached)
        return cached

    async def _cached(self, group: str) -> _Cached:
        cached = self._cache.get(group)
        if cached is not None:
            return cached
        return await self._run(lambda: self._read(lambda db: self._fill(db, group)))

    def _change(self, group: str, change: Callable[[_Cached], _Cached]) -> None:
        """The cached group after a committed write (left to the next read if absent)."""
        cached = self._cache.get(group)
        if cached is not None:
            self._publish(group, change(cached))

    # -- GroupStore reads ---------------------------------------------------------------

    async def member_view(self, group: str, member_id: str) -> MemberView:
        cached = await self._cached(group)
        return MemberView(cached.group, cached.positions.get(member_id), list(cached.committed))

    async def get_group(self, group: str) -> StoredGroup | None:
        return (await self._cached(group)).group

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

        def cached(version: int) -> None:
            def put(was: _Cached) -> _Cached:
                kept = {m: p for m, p in was.positions.items() if m in membership.members}
                return replace(was, group=StoredGroup(group, version, membership), positions=kept)

            self._change(group, put)
            self._committed_change(loop, group, membership.generation)

        loop = asyncio.get_running_loop()
        return await self._run(lambda: self._transaction(False, put, cached))

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

        def deleted(_: None) -> None:
            self._forget(group)
            self._committed_change(loop, group, None)

        loop = asyncio.get_running_loop()
        await self._run(lambda: self._transaction(True, delete, deleted))

    def _forget(self, group: str) -> None:
        self._cache.pop(group, None)

    def _committed_change(
        self, loop: asyncio.AbstractEventLoop, group: str, generation: int | None
    ) -> None:
        """In the worker thread, under the lock, once a write of `group` committed (and
        the cache follows it): wake the members parked on it, if any, on the loop. Done
        here rather than after the await, so a caller cancelled meanwhile still wakes
        them; a member that parks after this check reads the group as now cached."""
        if group in self._parked:
            loop.call_soon_threadsafe(self._wake, group, generation)

    def _wake(self, group: str, generation: int | None) -> None:
        """Wake the members parked on `group` at a generation other than `generation`
        (None: the group is gone)."""
        for woken, waited in self._parked.get(group, {}).items():
            if waited != generation and not woken.done():
                woken.set_result(None)

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

        def committed(was: _Cached) -> _Cached:
            merged = {(c.topic, c.partition): c for c in was.committed}
            for o in offsets:
                merged[o.topic, o.partition] = CommittedOffset(
                    o.topic, o.partition, o.offset, o.metadata, now_ms
                )
            return replace(was, committed=tuple(merged[k] for k in sorted(merged)))

        await self._run(
            lambda: self._transaction(True, commit, lambda _: self._change(group, committed))
        )

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

        await self._run(lambda: self._transaction(True, reset, lambda _: self._forget(group)))

    async def committed_offsets(self, group: str) -> list[CommittedOffset]:
        return list((await self._cached(group)).committed)

    async def get_position(self, group: str, member_id: str) -> MemberPosition | None:
        return (await self._cached(group)).positions.get(member_id)

    async def put_position(self, group: str, member_id: str, position: MemberPosition) -> None:
        if self._db is None:
            raise StoreClosed("the group store is closed")
        loop = asyncio.get_running_loop()
        write = _PositionWrite(group, member_id, position, loop.create_future())
        self._queued.append(write)
        if not self._batching:
            # Written once the loop's pass is over: the writes of every fetch the
            # pass runs that far go into the same transaction.
            self._batching = True
            loop.call_soon(self._write_queued)
        await write.done  # a caller cancelled meanwhile is still written (not answered)

    def _write_queued(self) -> None:
        """Write the queued positions in one transaction: here on the loop if the
        lock is free, else in a worker thread (writes queued meanwhile wait for
        the next batch); each writer is answered once its batch has committed."""
        batch, self._queued = self._queued, []
        if not batch:
            self._batching = False
            return
        if self._lock.acquire(blocking=False):
            try:
                failures = sqlite_space_checked(
                    "consumer groups", lambda: self._locked_positions(batch)
                )
            except BaseException as exc:  # the batch's transaction failed: nothing written
                failures = [exc] * len(batch)
            finally:
                self._lock.release()
            self._answer(batch, failures)
        else:
            self._in_thread = asyncio.ensure_future(self._write_in_thread(batch))

    async def _write_in_thread(self, batch: list[_PositionWrite]) -> None:
        def write() -> list[BaseException | None]:
            with self._lock:
                return self._locked_positions(batch)

        try:
            failures = await self._run(write)
        except BaseException as exc:
            failures = [exc] * len(batch)
        self._answer(batch, failures)

    def _answer(self, batch: list[_PositionWrite], failures: list[BaseException | None]) -> None:
        for write, failed in zip(batch, failures, strict=True):
            if not write.done.done():
                if failed is None:
                    write.done.set_result(None)
                else:
                    write.done.set_exception(failed)
        if self._queued:
            asyncio.get_running_loop().call_soon(self._write_queued)
        else:
            self._batching = False

    def _locked_positions(self, batch: list[_PositionWrite]) -> list[BaseException | None]:
        """The batch's writes, the lock held, each fenced by its own statement: one
        on its own as one statement (its own transaction), several in one
        transaction. Returns each write's refusal (MemberFenced, GroupNotFound)
        or None; the cache follows the writes that landed once they committed."""
        if len(batch) == 1:
            return self._autocommit(
                lambda db: [self._write_position(db, batch[0])],
                lambda failures: self._positions_moved(batch, failures),
            )
        return self._locked_transaction(
            False,
            lambda db: [self._write_position(db, w) for w in batch],
            lambda failures: self._positions_moved(batch, failures),
        )

    def _write_position(
        self, db: sqlite3.Connection, write: _PositionWrite
    ) -> BaseException | None:
        # Each statement is one atomic step: written only while the fence holds.
        # Nearly always the member's row is there to update in place (a third of
        # what replacing it costs: one page changed, not the table's and its key's).
        params = (write.group, write.member_id, write.position.generation, write.position.body)
        if db.execute(_UPDATE_POSITION, params).rowcount == 1:
            return None
        if db.execute(_INSERT_POSITION, params).rowcount == 1:
            return None
        try:
            self._fence(db, write.group, write.member_id, write.position.generation)
        except (GroupNotFound, MemberFenced) as refused:
            return refused
        raise AssertionError("a position write failed its fence, which then held")

    def _positions_moved(
        self, batch: list[_PositionWrite], failures: list[BaseException | None]
    ) -> None:
        moved: dict[str, dict[str, MemberPosition]] = {}
        for write, failed in zip(batch, failures, strict=True):
            if failed is None:  # in order: a member's later write in the batch wins
                moved.setdefault(write.group, {})[write.member_id] = write.position
        for group, positions in moved.items():
            self._change(group, _moved(positions))

    async def wait_for_records(
        self, positions: Mapping[tuple[str, int], int], timeout_s: float
    ) -> bool:
        return await self._log.wait_for_any(positions, timeout_s)

    async def wait_for_new_generation(self, group: str, generation: int, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            # Parked before the read: a write committing after it wakes this waiter,
            # one committed before it is in what the read returns.
            woken: asyncio.Future[None] = loop.create_future()
            self._parked.setdefault(group, {})[woken] = generation
            try:
                found = (await self._cached(group)).group
                if found is None or found.membership.generation != generation:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(woken, remaining)
                except TimeoutError:
                    return False
            finally:
                parked = self._parked.get(group)
                if parked is not None:
                    parked.pop(woken, None)
                    if not parked:
                        del self._parked[group]

    async def close(self) -> None:
        def close() -> None:
            self._checkpoints.close()
            with self._lock:
                if self._db is not None:
                    db, self._db = self._db, None
                    db.close()
                self._cache.clear()

        await asyncio.to_thread(close)
