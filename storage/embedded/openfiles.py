"""The engine's open segment files: at most a set number open, reopened when needed.

A partition's segment files would otherwise each hold a descriptor for as long
as the engine runs, so the descriptors a process holds would grow with its
partitions and segments until it meets its limit (`ulimit -n`, 1,024 on many
systems) and every open, accept and socket fails. So each engine keeps its
segment files in one `OpenFiles`: a file is opened when it is used, and when
more than `capacity` are open, the least recently used idle one is closed;
its next use opens it again, transparently.

Two kinds of file are never closed by that rule:

* one in use: a read, write or sync holds a `lease` on it for the length of
  the call, so no other thread closes a descriptor under it (or, worse, lets
  the number be reused for another file while a pread is on its way);
* one holding written-but-not-yet-synced data (`dirty`): on Linux a failed
  write-back is reported to a descriptor that was open when it happened, and
  closing that descriptor can lose it, so the next sync would succeed on a
  fresh descriptor and acknowledge data the disk dropped. A dirty file stays
  open until its sync has run (and reported, or fenced the partition).

The bound is therefore `capacity` plus the files that are leased or dirty at
a moment, which the writers keep small: an `fsync` topic's data is synced in
the pass that wrote it, and a writer syncs its other dirty files early when
the engine is over its bound (`over_capacity`), rather than let them pile up.
Thread-safe: the event loop, the writer threads and the retention pass share
one instance; one lock guards it, and an open or a close happens under it
(only when a file is first used or evicted, never on a read of an open file).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

from storage.embedded.fileio import FileIO

DEFAULT_MAX_OPEN_FILES = 1024
"""Segment files an engine keeps open at most (besides those in use or unsynced).
A working set of partitions larger than this reopens a file for nearly every
write and read (about 10 us each), so the default holds a thousand busy
partitions; with at most 1.5 times it briefly, the 1,000 connections of the
default cap and the gateway's headroom, it fits a descriptor limit of 4,096."""


class SegmentFile:
    """One segment log file as `OpenFiles` manages it: its path, how to open it,
    and its descriptor while it is open. Only `OpenFiles` touches the fields."""

    __slots__ = ("closed", "dirty", "fd", "flags", "path", "users")

    def __init__(self, path: str, flags: int, fd: int | None = None) -> None:
        self.path = path
        self.flags = flags & ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)  # a reopen never creates
        self.fd = fd
        self.users = 0  # leases held now
        self.dirty = False  # written and not yet synced: pinned open
        self.closed = False  # closed for good (deleted, or the engine closed)


class OpenFiles:
    """The segment files of one engine, at most `capacity` of them idle and open."""

    def __init__(self, fio: FileIO, capacity: int = DEFAULT_MAX_OPEN_FILES) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.fio = fio
        self._lock = threading.Lock()
        self._idle: OrderedDict[SegmentFile, None] = OrderedDict()  # open, unused, clean
        self.open_count = 0  # descriptors held now
        self.peak = 0  # the most ever held at once
        self.reopened = 0  # opens of a file that had been closed to stay in bound

    def adopt(self, path: str, flags: int, fd: int) -> SegmentFile:
        """Manage a file the caller has just opened with `flags` (counted from now on)."""
        file = SegmentFile(path, flags, fd)
        with self._lock:
            self.open_count += 1
            self.peak = max(self.peak, self.open_count)
            self._idle[file] = None
            self._evict()
        return file

    @contextlib.contextmanager
    def lease(self, file: SegmentFile) -> Iterator[int]:
        """The file's descriptor, open and kept open until the block ends."""
        fd = self.acquire(file)
        try:
            yield fd
        finally:
            self.release(file)

    def acquire(self, file: SegmentFile) -> int:
        """Open the file if need be and hold it open; pair with `release`. (An idle
        file stays in the eviction order while held: eviction passes over it.)"""
        with self._lock:
            fd = file.fd
            if fd is None:
                fd = self._reopen(file)
            file.users += 1
            return fd

    def acquire_many(self, files: Sequence[SegmentFile]) -> list[int]:
        """`acquire` of each file in one lock section: a writer pass holds every file
        it writes or syncs for one call (`FileIO.write_files`, `sync_files`). On an
        OSError (a reopen failed) none of them is held."""
        with self._lock:
            fds: list[int] = []
            try:
                for file in files:
                    fd = file.fd
                    if fd is None:
                        fd = self._reopen(file)
                    file.users += 1
                    fds.append(fd)
            except BaseException:
                for file in files[: len(fds)]:
                    file.users -= 1
                    self._settle(file)
                raise
            return fds

    def release_many(self, files: Sequence[SegmentFile], *, synced: bool = False) -> None:
        """`release` of each file (with `synced`, after `mark_synced`) in one lock section."""
        with self._lock:
            for file in files:
                if synced:
                    file.dirty = False
                users = file.users = file.users - 1
                if not users:
                    self._settle(file)
            if self.open_count > self.capacity:
                self._evict()

    def release(self, file: SegmentFile) -> None:
        with self._lock:
            users = file.users = file.users - 1
            if not users:
                self._settle(file)
                if self.open_count > self.capacity:
                    self._evict()

    def mark_dirty(self, *files: SegmentFile) -> None:
        """The files hold data not yet synced: keep them open until `mark_synced`.
        Call with a lease held (the write that made them dirty)."""
        with self._lock:
            for file in files:
                file.dirty = True

    def mark_synced(self, file: SegmentFile) -> None:
        """A sync of the file has run and its outcome was taken (success, or the
        error that fenced its partition): it may be closed again."""
        with self._lock:
            file.dirty = False
            self._settle(file)
            self._evict()

    def close(self, file: SegmentFile) -> None:
        """Close the file for good (deleted, or the engine closing); a lease still
        held closes it on release."""
        with self._lock:
            file.closed = True
            file.dirty = False
            self._settle(file)

    def over_capacity(self) -> bool:
        """More files open than `capacity` (the writers then sync dirty files early)."""
        return self.open_count > self.capacity

    def is_open(self, file: SegmentFile) -> bool:
        return file.fd is not None

    # -- under the lock -----------------------------------------------------------------

    def _reopen(self, file: SegmentFile) -> int:
        if file.closed:
            raise ValueError(f"{file.path} is closed")
        fd = self.fio.open(file.path, file.flags)
        file.fd = fd
        self.open_count += 1
        self.peak = max(self.peak, self.open_count)
        self.reopened += 1
        if self.open_count > self.capacity:
            self._evict()
        return fd

    def _settle(self, file: SegmentFile) -> None:
        """Put an unused file where it belongs: closed for good, or last in the
        eviction order (most recently used)."""
        if file.users or file.fd is None:
            return
        if file.closed:
            self._idle.pop(file, None)
            self._close_fd(file)
        elif not file.dirty:
            try:
                self._idle.move_to_end(file)
            except KeyError:
                self._idle[file] = None

    def _evict(self) -> None:
        """Close the least recently used idle files until within the capacity. A file
        held or dirty meanwhile leaves the order (its release or sync puts it back)."""
        idle = self._idle
        while self.open_count > self.capacity and idle:
            file, _ = idle.popitem(last=False)
            if file.users or file.dirty or file.fd is None:
                continue
            self._close_fd(file)

    def _close_fd(self, file: SegmentFile) -> None:
        fd, file.fd = file.fd, None
        if fd is not None:
            self.open_count -= 1
            self.fio.close(fd)
