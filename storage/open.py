"""Build the storage backend from configuration: the one place that knows the engines.

The gateway calls `open_backend` once at start-up and afterwards only sees the
`LogStore` and `StateStore` protocols; nothing else branches on the kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.backend import LogStore, StateStore
from storage.errors import InvalidConfig
from storage.groups import GroupStore
from storage.observer import NO_OBSERVER, StorageObserver
from storage.schemas import SchemaStore

KINDS = ("file", "redis")


@dataclass(frozen=True)
class StorageConfig:
    """Which engine to run and where its data lives."""

    kind: str = "file"
    data_dir: str = "./data"
    redis_url: str | None = None
    redis_cluster: bool = False
    shards: int = 4
    # Segment files the file engine keeps open (storage.embedded.openfiles).
    max_open_files: int = 1024
    crash_point: str | None = None
    # Each partition remembers its newest `idempotency_window_batches` idempotent
    # batches, none older than `idempotency_window_s` (see storage.embedded.producers).
    idempotency_window_batches: int = 10_000
    idempotency_window_s: float = 24 * 3600
    # How often the embedded engine deletes segments past their topic's retention.
    retention_interval_s: float = 30.0


@dataclass
class Backend:
    """The log, the state store, the schema registry and the group store of one
    engine, opened and closed together."""

    log: LogStore
    state: StateStore
    schemas: SchemaStore
    groups: GroupStore

    async def close(self) -> None:
        """The stores first, the log last: the log holds the data directory's lock."""
        try:
            try:
                try:
                    await self.groups.close()
                finally:
                    await self.schemas.close()
            finally:
                await self.state.close()
        finally:
            await self.log.close()


async def open_backend(
    config: StorageConfig, *, observer: StorageObserver = NO_OBSERVER
) -> Backend:
    """Open the engine `config.kind` names; raises InvalidConfig for an unknown kind.
    The engine reports its append and sync timings and its failures to `observer`."""
    if config.kind == "file":
        from storage.embedded.engine import EmbeddedLogStore
        from storage.embedded.groups import SqliteGroupStore
        from storage.embedded.options import EngineOptions
        from storage.embedded.producers import Window
        from storage.embedded.schemas import SqliteSchemaStore
        from storage.embedded.state import SqliteStateStore

        window = Window(
            max_batches=config.idempotency_window_batches,
            max_age_ms=int(config.idempotency_window_s * 1000),
        )
        options = EngineOptions(
            shards=config.shards,
            crash_point=config.crash_point,
            idempotency_window=window,
            retention_interval_s=config.retention_interval_s,
            observer=observer,
            max_open_files=config.max_open_files,
        )
        log = await EmbeddedLogStore.open(config.data_dir, options=options)
        try:
            state = await SqliteStateStore.open(config.data_dir)
        except BaseException:
            await log.close()
            raise
        try:
            schemas = await SqliteSchemaStore.open(config.data_dir)
        except BaseException:
            await state.close()
            await log.close()
            raise
        try:
            groups = await SqliteGroupStore.open(config.data_dir, log)
        except BaseException:
            await schemas.close()
            await state.close()
            await log.close()
            raise
        return Backend(log=log, state=state, schemas=schemas, groups=groups)
    if config.kind == "redis":
        raise InvalidConfig("the redis backend is not available yet")
    raise InvalidConfig(f"unknown storage kind {config.kind!r}; accepted: {', '.join(KINDS)}")
