"""A `StorageObserver` that writes down every report, for the observer tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from storage.errors import StorageError
from storage.observer import SyncKind


@dataclass
class RecordingObserver:
    appends: list[float] = field(default_factory=list)
    syncs: list[tuple[float, SyncKind]] = field(default_factory=list)
    failures: list[StorageError] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # writer threads report too

    def appended(self, seconds: float) -> None:
        with self.lock:
            self.appends.append(seconds)

    def synced(self, seconds: float, kind: SyncKind) -> None:
        with self.lock:
            self.syncs.append((seconds, kind))

    def failed(self, error: StorageError) -> None:
        with self.lock:
            self.failures.append(error)
