"""FileIO replacements that misbehave the way disks do, for the fault-injection tests."""

from __future__ import annotations

import errno
import os
import random
import threading

from storage.embedded.fileio import FileIO


class FailingFsync(FileIO):
    """fdatasync/fsync raise EIO once armed (as after a lost write-back on Linux)."""

    def __init__(self) -> None:
        self.armed = False
        self.failures = 0

    def _maybe_fail(self) -> None:
        if self.armed:
            self.failures += 1
            raise OSError(errno.EIO, "injected fsync failure")

    def fdatasync(self, fd: int) -> None:
        self._maybe_fail()
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._maybe_fail()
        super().fsync(fd)


class DiskQuota(FileIO):
    """ENOSPC once `budget` bytes are written (part of the last write lands first),
    or, with `fail_new_segments`, whenever a new segment file is created."""

    def __init__(self, budget: int | None = None, *, fail_new_segments: bool = False) -> None:
        self.budget = budget
        self.fail_new_segments = fail_new_segments
        self.written = 0

    def refill(self) -> None:
        self.budget = None
        self.fail_new_segments = False

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        new_segment = flags & os.O_CREAT and path.endswith(".log") and not os.path.exists(path)
        if self.fail_new_segments and new_segment:
            raise OSError(errno.ENOSPC, "injected: no space for a new segment")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.budget is not None:
            room = self.budget - self.written
            if room <= 0:
                raise OSError(errno.ENOSPC, "injected: no space left on device")
            if len(data) > room:
                n = super().write(fd, memoryview(data)[:room])  # a partial write lands
                self.written += n
                return n
        n = super().write(fd, data)
        self.written += n
        return n


class ShortWrites(FileIO):
    """Every write writes a random non-empty prefix of what it was given."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if len(data) > 1:
            data = memoryview(data)[: self._rng.randint(1, len(data))]
        return super().write(fd, data)


class SimulatedDisk(FileIO):
    """Remembers what a power cut would keep, and can apply the cut.

    A file's durable content is its size at its last fsync/fdatasync (the log
    and indexes are append-only or replaced whole); a new directory entry is
    durable only once its parent directory is fsynced. `power_cut` rewrites
    the real files to that state, tearing the last page of files that had
    unsynced bytes, and removes entries that were never made durable.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._paths: dict[int, str] = {}
        self.durable_size: dict[str, int] = {}
        self.pending_entries: set[str] = set()

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        existed = os.path.exists(path)
        fd = super().open(path, flags, mode)
        with self._lock:
            self._paths[fd] = path
            if not existed:
                self.pending_entries.add(path)
                self.durable_size[path] = 0
            elif flags & os.O_TRUNC:
                self.durable_size[path] = 0
            else:
                self.durable_size.setdefault(path, os.path.getsize(path))
        return fd

    def close(self, fd: int) -> None:
        with self._lock:
            self._paths.pop(fd, None)
        super().close(fd)

    def _synced(self, fd: int) -> None:
        with self._lock:
            path = self._paths.get(fd)
            if path is not None:
                self.durable_size[path] = os.fstat(fd).st_size

    def fdatasync(self, fd: int) -> None:
        super().fdatasync(fd)
        self._synced(fd)

    def fsync(self, fd: int) -> None:
        super().fsync(fd)
        self._synced(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        super().ftruncate(fd, length)
        with self._lock:
            path = self._paths.get(fd)
            if path is not None:
                self.durable_size[path] = min(self.durable_size.get(path, 0), length)

    def fsync_dir(self, path: str) -> None:
        super().fsync_dir(path)
        prefix = path.rstrip("/") + "/"
        with self._lock:
            self.pending_entries = {
                p
                for p in self.pending_entries
                if not (p.startswith(prefix) and "/" not in p[len(prefix) :])
            }

    def rename(self, src: str, dst: str) -> None:
        existed = os.path.exists(dst)
        super().rename(src, dst)
        with self._lock:
            size = self.durable_size.pop(src, os.path.getsize(dst))
            self.durable_size[dst] = size
            self.pending_entries.discard(src)
            if not existed:
                self.pending_entries.add(dst)

    def power_cut(self, *, tear: bool = True) -> tuple[int, int]:
        """Apply the cut to the files on disk; returns (files cut, entries removed)."""
        cut = removed = 0
        with self._lock:
            for path in sorted(self.pending_entries, key=len, reverse=True):
                if os.path.isfile(path):
                    os.unlink(path)
                    removed += 1
            for path, durable in self.durable_size.items():
                if path in self.pending_entries or not os.path.isfile(path):
                    continue
                size = os.path.getsize(path)
                if size <= durable:
                    continue
                with open(path, "r+b") as f:
                    f.truncate(durable)
                    if tear and path.endswith(".log"):
                        f.seek(durable)
                        torn = min(size - durable, self._rng.randint(1, 4096))
                        f.write(os.urandom(torn))
                cut += 1
            self.pending_entries.clear()
        return cut, removed


class FailingFsyncAndTruncate(FileIO):
    """Once armed, a segment file can be neither synced nor cut back: the unsynced
    bytes stay in it, whole and with valid CRCs. Write-back errors are per file
    on Linux, so other files (such as a small marker) still sync."""

    def __init__(self) -> None:
        self.armed = False
        self.failures = 0
        self._segments: set[int] = set()

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = super().open(path, flags, mode)
        if path.endswith(".log"):
            self._segments.add(fd)
        else:
            self._segments.discard(fd)
        return fd

    def _maybe_fail(self, fd: int) -> None:
        if self.armed and fd in self._segments:
            self.failures += 1
            raise OSError(errno.EIO, "injected segment I/O failure")

    def fdatasync(self, fd: int) -> None:
        self._maybe_fail(fd)
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._maybe_fail(fd)
        super().fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        self._maybe_fail(fd)
        super().ftruncate(fd, length)
