"""The tenants metadata store: tenants, their API keys and revoked tokens, on SQLite.

Durable (WAL, `synchronous=FULL`) because a revoked key must stay revoked after
a crash (and a revoked token too: a row per token revoked by its `jti`, kept
until the token could no longer be accepted anyway). Every call runs in a
worker thread behind one lock, so the event loop never blocks on the disk.
Only peppered secret hashes are stored. A write that finds the disk full
raises DirectoryFull and changes nothing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenants.errors import DirectoryFull

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_ms INTEGER NOT NULL,
    overrides TEXT NOT NULL DEFAULT '{}',
    uid TEXT
);
CREATE TABLE IF NOT EXISTS deleted_tenants (
    uid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    deleted_ms INTEGER NOT NULL,
    purged_ms INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    topics TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_used_ms INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys(tenant);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    token_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens(expires_ms);
"""


@dataclass(frozen=True, slots=True)
class TenantRecord:
    name: str
    plan: str
    status: str
    created_ms: int
    overrides: dict[str, Any]
    # The tenant's immutable id: the namespace of its data (topics are stored as
    # `<uid>~<topic>`). Never reused, so a tenant created later under a deleted
    # one's name shares nothing with it. Tenants from before ids have their name.
    uid: str = ""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    tenant: str
    secret_hash: str
    scopes: tuple[str, ...]
    topics: tuple[str, ...]
    created_ms: int
    expires_ms: int | None
    revoked: bool
    last_used_ms: int | None


_TENANT_COLUMNS = "name, plan, status, created_ms, overrides, uid"


def _tenant(row: tuple[Any, ...]) -> TenantRecord:
    return TenantRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])


def _migrate(conn: sqlite3.Connection) -> None:
    """Give tenants of a store from before ids their name as id: their topics are
    already stored under `<name>~`, so nothing else moves."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tenants)")}
    if "uid" not in columns:
        conn.execute("ALTER TABLE tenants ADD COLUMN uid TEXT")
    conn.execute("UPDATE tenants SET uid = name WHERE uid IS NULL")
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS tenants_uid ON tenants(uid)")


def _key(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(
        key_id=row[0],
        tenant=row[1],
        secret_hash=row[2],
        scopes=tuple(json.loads(row[3])),
        topics=tuple(json.loads(row[4])),
        created_ms=row[5],
        expires_ms=row[6],
        revoked=bool(row[7]),
        last_used_ms=row[8],
    )


_KEY_COLUMNS = (
    "key_id, tenant, secret_hash, scopes, topics, created_ms, expires_ms, revoked, last_used_ms"
)


def _disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), or ENOSPC/EDQUOT from the OS."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
            "database or disk is full" in str(exc)
        )
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class TenantStore:
    """CRUD over tenants and keys; the directory adds the rules on top."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: str) -> TenantStore:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            _migrate(conn)
            return conn

        return cls(await asyncio.to_thread(connect))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return fn(self._conn)
                except (sqlite3.Error, OSError) as exc:
                    if _disk_full(exc):
                        raise DirectoryFull("no space left on the device for tenants") from exc
                    raise

        return await asyncio.to_thread(locked)

    async def close(self) -> None:
        await self._run(lambda c: c.close())

    # -- tenants -----------------------------------------------------------------------

    async def count_tenants(self) -> int:
        return await self._run(
            lambda c: int(c.execute("SELECT COUNT(*) FROM tenants").fetchone()[0])
        )

    async def insert_tenant(self, record: TenantRecord) -> bool:
        """False when the name is taken. The id must be new: neither a live tenant's
        nor a deleted one's (ValueError)."""
        if not record.uid:
            raise ValueError("a tenant needs an id")

        def insert(c: sqlite3.Connection) -> bool:
            if c.execute("SELECT 1 FROM deleted_tenants WHERE uid = ?", (record.uid,)).fetchone():
                raise ValueError(f"tenant id {record.uid!r} belonged to a deleted tenant")
            try:
                c.execute(
                    f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.name,
                        record.plan,
                        record.status,
                        record.created_ms,
                        json.dumps(record.overrides),
                        record.uid,
                    ),
                )
            except sqlite3.IntegrityError:
                if c.execute("SELECT 1 FROM tenants WHERE name = ?", (record.name,)).fetchone():
                    return False
                raise ValueError(f"tenant id {record.uid!r} is taken") from None
            return True

        return await self._run(insert)

    async def get_tenant(self, name: str) -> TenantRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()
        )
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[TenantRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY name"  # noqa: S608
            ).fetchall()
        )
        return [_tenant(r) for r in rows]

    async def update_tenant(
        self,
        name: str,
        *,
        status: str | None = None,
        plan: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> bool:
        """False when the tenant does not exist."""
        sets: list[str] = []
        args: list[Any] = []
        for column, value in (("status", status), ("plan", plan)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        if overrides is not None:
            sets.append("overrides = ?")
            args.append(json.dumps(overrides))
        if not sets:
            return await self.get_tenant(name) is not None
        sql = f"UPDATE tenants SET {', '.join(sets)} WHERE name = ?"  # noqa: S608 (fixed columns)
        return await self._run(lambda c: c.execute(sql, (*args, name)).rowcount > 0)

    async def delete_tenant(self, name: str, now_ms: int) -> str | None:
        """Delete the tenant and its keys in one transaction, leaving a tombstone of its
        id whose data is still to be purged; returns that id (None: no such tenant)."""

        def delete(c: sqlite3.Connection) -> str | None:
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute("SELECT uid FROM tenants WHERE name = ?", (name,)).fetchone()
                if row is not None:
                    c.execute(
                        "INSERT INTO deleted_tenants (uid, name, deleted_ms) VALUES (?, ?, ?)",
                        (row[0], name, now_ms),
                    )
                    c.execute("DELETE FROM api_keys WHERE tenant = ?", (name,))
                    c.execute("DELETE FROM tenants WHERE name = ?", (name,))
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            return None if row is None else str(row[0])

        return await self._run(delete)

    async def deleted_ids(self) -> list[str]:
        rows = await self._run(lambda c: c.execute("SELECT uid FROM deleted_tenants").fetchall())
        return [str(r[0]) for r in rows]

    async def unpurged(self) -> list[str]:
        """Ids of deleted tenants whose data is not known to be gone yet."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT uid FROM deleted_tenants WHERE purged_ms IS NULL ORDER BY deleted_ms"
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    async def mark_purged(self, uid: str, now_ms: int) -> None:
        """The deleted tenant's data is gone; its id stays recorded, never reused."""
        await self._run(
            lambda c: c.execute(
                "UPDATE deleted_tenants SET purged_ms = ? WHERE uid = ?", (now_ms, uid)
            )
        )

    # -- keys --------------------------------------------------------------------------

    async def upsert_key(self, record: KeyRecord) -> None:
        await self._run(
            lambda c: c.execute(
                f"INSERT OR REPLACE INTO api_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
                (
                    record.key_id,
                    record.tenant,
                    record.secret_hash,
                    json.dumps(list(record.scopes)),
                    json.dumps(list(record.topics)),
                    record.created_ms,
                    record.expires_ms,
                    int(record.revoked),
                    record.last_used_ms,
                ),
            )
        )

    async def get_key(self, key_id: str) -> KeyRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608
                (key_id,),
            ).fetchone()
        )
        return None if row is None else _key(row)

    async def list_keys(self, tenant: str) -> list[KeyRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant = ? ORDER BY created_ms",  # noqa: S608
                (tenant,),
            ).fetchall()
        )
        return [_key(r) for r in rows]

    async def revoke_key(self, tenant: str, key_id: str) -> bool:
        return await self._run(
            lambda c: (
                c.execute(
                    "UPDATE api_keys SET revoked = 1 WHERE tenant = ? AND key_id = ?",
                    (tenant, key_id),
                ).rowcount
                > 0
            )
        )

    async def touch_key(self, key_id: str, now_ms: int) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE api_keys SET last_used_ms = ? WHERE key_id = ?", (now_ms, key_id)
            )
        )

    # -- revoked tokens ------------------------------------------------------------------

    async def revoke_token(self, token_id: str, tenant: str, expires_ms: int, now_ms: int) -> None:
        """Record the token `token_id` as revoked until `expires_ms` (after which it is
        refused as expired anyway), and drop the rows whose tokens have all expired, so
        the table holds only tokens that could still be presented."""

        def revoke(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("DELETE FROM revoked_tokens WHERE expires_ms < ?", (now_ms,))
                c.execute(
                    "INSERT OR REPLACE INTO revoked_tokens (token_id, tenant, expires_ms)"
                    " VALUES (?, ?, ?)",
                    (token_id, tenant, expires_ms),
                )
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        await self._run(revoke)

    async def is_token_revoked(self, token_id: str) -> bool:
        row = await self._run(
            lambda c: c.execute(
                "SELECT 1 FROM revoked_tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
        )
        return row is not None
