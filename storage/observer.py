"""What a storage engine reports about its own work, for whoever watches it.

An engine knows how long its appends and syncs take and when a write fails;
a metrics system wants those figures. The engine must not know that system
(storage imports nothing above it), so it reports to a `StorageObserver`
given when it is opened, and the gateway's metrics implement one. Engines
call it from their writer threads as well as from the event loop:
implementations must be thread-safe and cheap (a counter or a histogram
update), and must never raise.
"""

from __future__ import annotations

from typing import Literal, Protocol

from storage.errors import StorageError

SyncKind = Literal["durable-write", "fdatasync", "syncfs"]
"""How data was made durable: a write that returns once on disk (`pwritev2` with
RWF_DSYNC, the write included), a data sync of one file, a sync of a file system."""


class StorageObserver(Protocol):
    """Timings and failures of an engine, reported as they happen."""

    def appended(self, seconds: float) -> None:
        """An append was acknowledged `seconds` after it was handed to the engine
        (queueing, the write and the sync its durability asks for). One call of
        `append_packed` or `append_batches` is one append, however many partitions
        it spans (reported once if any of them was acknowledged)."""

    def synced(self, seconds: float, kind: SyncKind) -> None:
        """One sync of `kind` took `seconds` (it may cover many appends: group commit)."""

    def failed(self, error: StorageError) -> None:
        """An append was answered with `error` (fenced partition, full disk, backlog)."""


class NoObserver:
    """The observer of an engine that nobody watches: every report is dropped."""

    def appended(self, seconds: float) -> None:
        pass

    def synced(self, seconds: float, kind: SyncKind) -> None:
        pass

    def failed(self, error: StorageError) -> None:
        pass


NO_OBSERVER = NoObserver()
