"""Named places where a crash test can make the process die on purpose.

A crash test starts a server with a crash point such as "segment-roll:3"; the
third time the writer reaches that point the process exits at once, with no
cleanup, as SIGKILL would. Recovery must then bring back every acknowledged
record. Outside crash tests no point is armed and `hit` is one comparison.
"""

from __future__ import annotations

import os
import threading

CRASH_EXIT_STATUS = 77
KNOWN_POINTS = frozenset(
    {
        "segment-roll",
        "index-flush",
        "metadata-rename",
        "after-write",
        "after-fsync",
        "topic-delete",
        "topic-migrate",
    }
)


class CrashPoints:
    """Counts arrivals at the armed point and exits the process on the Nth."""

    def __init__(self, spec: str | None) -> None:
        self._name: str | None = None
        self._target = 1
        self._count = 0
        self._lock = threading.Lock()
        if spec:
            name, _, nth = spec.partition(":")
            if name not in KNOWN_POINTS:
                raise ValueError(f"unknown crash point {name!r}; known: {sorted(KNOWN_POINTS)}")
            self._name = name
            self._target = int(nth) if nth else 1
            if self._target < 1:
                raise ValueError("a crash point's count starts at 1")

    def hit(self, name: str) -> None:
        """Called at point `name`; never returns when it is the armed Nth arrival."""
        if name != self._name:
            return
        with self._lock:
            self._count += 1
            if self._count == self._target:
                os._exit(CRASH_EXIT_STATUS)
