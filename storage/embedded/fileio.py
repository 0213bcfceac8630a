"""The one seam through which the embedded engine touches the file system.

Every open, write, sync, rename and delete of the engine goes through a `FileIO`
instance, so tests can swap in one that fails fsync with EIO, runs out of space
mid-write, writes short, or forgets everything not yet synced (a power cut).
The default implementation is a thin veneer over `os`; it adds no buffering.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Callable, Sequence

# pwritev2 with RWF_DSYNC (Linux 4.7+): a write that returns once its data is on disk.
_RWF_DSYNC: int | None = getattr(os, "RWF_DSYNC", None) if hasattr(os, "pwritev") else None


def _libc_syncfs() -> Callable[[int], int] | None:
    """syncfs(2) from the C library (Linux), which the os module does not offer."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn: Callable[[int], int] = libc.syncfs  # ctypes lets go of the GIL during the call
    except (OSError, AttributeError):
        return None
    return fn


def _kernel_at_least(major: int, minor: int) -> bool:
    uname = os.uname()
    if uname.sysname != "Linux":
        return False
    parts = uname.release.split(".")
    try:
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()))) >= (major, minor)
    except (IndexError, ValueError):
        return False


# Linux 5.8 is the first whose syncfs reports the file system's writeback errors.
_SYNCFS = _libc_syncfs() if _kernel_at_least(5, 8) else None

_WriteFiles = Callable[[list[int], list[bytes]], list[int]]
_write_files_in_c: _WriteFiles | None
try:
    from storage.embedded._framing import write_files as _write_files_in_c
except ImportError:  # installed without a compiler: one write_all per file
    _write_files_in_c = None


class FileIO:
    """Plain POSIX file operations on raw file descriptors."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """One write(2); may write fewer bytes than given (callers loop)."""
        return os.write(fd, data)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def syncfs(self, fd: int) -> None:
        """syncfs(2): everything written to the file system holding `fd`, durable."""
        if _SYNCFS is None:
            raise OSError(38, "syncfs is not available")
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def syncs_together(self) -> bool:
        """Whether `sync_files` makes many files durable with one system call."""
        return _SYNCFS is not None and type(self).fdatasync is FileIO.fdatasync

    def sync_files(self, fds: Sequence[int]) -> list[OSError | None]:
        """Make what was written to each of `fds` (files of one file system) durable,
        as an `fdatasync` of each would; each file's error, or None.

        With this class's own `fdatasync`, on a Linux whose syncfs reports writeback
        errors (5.8+), that is one `syncfs` for all of them: a sync of many files
        costs about what a sync of one does (one journal commit, one cache flush)
        rather than one each. It also writes back whatever else is dirty on that
        file system. When it fails, each file is synced on its own, so that each
        is told its own error: a file's writeback error stays reported to its own
        descriptor by fdatasync whether or not syncfs saw it too. A subclass that
        changes `fdatasync` (the fault seams) gets one `fdatasync` per file.
        """
        if fds and self.syncs_together():
            try:
                self.syncfs(fds[0])
            except OSError:
                pass
            else:
                return [None] * len(fds)
        errors: list[OSError | None] = []
        for fd in fds:
            try:
                self.fdatasync(fd)
            except OSError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def device(self, path: str) -> int:
        """The file system `path` lies on (its st_dev)."""
        return os.stat(path).st_dev

    def fsync_dir(self, path: str) -> None:
        """Make a directory's entries (created, renamed, deleted files) durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mkdir(self, path: str) -> None:
        os.mkdir(path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def write_all(self, fd: int, data: bytes | memoryview) -> None:
        """Loop over short writes until every byte is written (or an OSError)."""
        view = memoryview(data)
        while view:
            n = self.write(fd, view)
            if n <= 0:
                raise OSError(5, "write returned no progress")
            view = view[n:]

    def write_files(self, fds: list[int], datas: list[bytes]) -> list[OSError | None]:
        """`write_all` of `datas[i]` to `fds[i]` for each i; each file's error, or None.

        With this class's own `write`, that is one call into C (`_framing.c`) that
        lets go of the interpreter once for all the files: a writer pass over many
        partitions writes one file each, and under load getting the interpreter
        back after every write (the event loop holds it meanwhile) cost more than
        the writes. A subclass that changes `write` (the fault seams), or a build
        without the C extension, gets `write_all` per file, in order.
        """
        if _write_files_in_c is not None and type(self).write is FileIO.write:
            return [
                OSError(err, os.strerror(err)) if err else None
                for err in _write_files_in_c(fds, datas)
            ]
        errors: list[OSError | None] = []
        for fd, data in zip(fds, datas, strict=True):
            try:
                self.write_all(fd, data)
            except OSError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    def write_all_durable(self, fd: int, data: bytes | memoryview) -> None:
        """Write every byte and make it durable, as `write_all` then `fdatasync` would.

        With this class's own `write` and `fdatasync` on Linux, that is one
        `pwritev2(RWF_DSYNC)` (the write and its data sync in one system call),
        so the calling thread lets go of the interpreter once rather than twice:
        under load, getting it back after each call is most of a writer pass. A
        subclass that changes `write` or `fdatasync` (the fault seams) gets
        exactly those two, in that order. An OSError may come from the write or
        from the sync; the caller cannot tell which.
        """
        own = type(self).write is FileIO.write and type(self).fdatasync is FileIO.fdatasync
        if _RWF_DSYNC is None or not own:
            self.write_all(fd, data)
            self.fdatasync(fd)
            return
        view = memoryview(data)
        while view:  # an fd opened O_APPEND appends wherever the offset says (-1: here)
            n = os.pwritev(fd, [view], -1, _RWF_DSYNC)
            if n <= 0:
                raise OSError(5, "write returned no progress")
            view = view[n:]

    def read_whole(self, path: str) -> bytes:
        fd = self.open(path, os.O_RDONLY)
        try:
            size = self.size(fd)
            return self.pread(fd, size, 0) if size else b""
        finally:
            self.close(fd)

    def write_atomic(
        self, path: str, data: bytes, *, before_rename: Callable[[], None] | None = None
    ) -> None:
        """Replace `path` with `data` so a crash leaves either the old or the new file.

        `before_rename` runs once the new content is durable and not yet in place
        (where crash tests stop the process).
        """
        tmp = f"{path}.tmp"
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            self.write_all(fd, data)
            self.fsync(fd)
        finally:
            self.close(fd)
        if before_rename is not None:
            before_rename()
        self.rename(tmp, path)
        self.fsync_dir(os.path.dirname(path) or ".")
