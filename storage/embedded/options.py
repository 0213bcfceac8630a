"""Engine-wide knobs of the embedded log, each a named bound with a documented default."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.embedded.decoded import DEFAULT_BUDGET_BYTES
from storage.embedded.openfiles import DEFAULT_MAX_OPEN_FILES
from storage.embedded.producers import Window
from storage.observer import NO_OBSERVER, StorageObserver


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """How the embedded engine is laid out and bounded.

    shards: writer threads; partitions are spread over them so one slow flush
        does not stall every topic.
    index_interval_bytes: a sparse index entry every this many segment bytes;
        a read walks at most about this many bytes of batch prefixes.
    max_queued_appends: appends waiting for one shard's writer; beyond it an
        append fails fast with BackendUnavailable (backpressure, bounded memory:
        at most this many encoded batches per shard).
    crash_point: "name" or "name:N" makes the process exit with status 77 the
        Nth time the named point is reached (crash tests only).
    retention_interval_s: how often the background retention pass runs.
    decoded_cache_bytes: stored bytes of recently read batches kept decoded for
        the next reader (`decoded`); 0 turns the cache off.
    idempotency_window: how many idempotent batches, appended how recently, each
        partition remembers by identity (`producers`): a retry within it
        appends nothing.
    observer: told how long appends and syncs take and which appends failed
        (`storage.observer`); by default nobody is.
    max_open_files: segment files kept open at most, besides those in use or
        holding unsynced data (`openfiles`); the others are closed, least
        recently used first, and reopened when next read or written.
    """

    shards: int = 4
    index_interval_bytes: int = 4096
    max_queued_appends: int = 10_000
    crash_point: str | None = None
    retention_interval_s: float = 30.0
    decoded_cache_bytes: int = DEFAULT_BUDGET_BYTES
    idempotency_window: Window = field(default_factory=Window)
    observer: StorageObserver = NO_OBSERVER
    max_open_files: int = DEFAULT_MAX_OPEN_FILES

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("shards must be at least 1")
        if self.index_interval_bytes < 1:
            raise ValueError("index_interval_bytes must be at least 1")
        if self.max_queued_appends < 1:
            raise ValueError("max_queued_appends must be at least 1")
        if self.decoded_cache_bytes < 0:
            raise ValueError("decoded_cache_bytes must not be negative")
        if self.max_open_files < 1:
            raise ValueError("max_open_files must be at least 1")
        if self.retention_interval_s <= 0:
            raise ValueError("retention_interval_s must be positive")
