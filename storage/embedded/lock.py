"""The data directory's lock: one process owns a directory, or none opens it.

The engine keeps its writers, indexes and the clean-shutdown marker to itself;
a second process on the same directory would append beside the first and, on
its way out, mark a running engine's directory as cleanly shut down, so the
start after a crash would skip the recovery scan. `DataDirLock.acquire` takes
an exclusive `flock` on `<data_dir>/lock` before anything else is read or
written and keeps it until the engine is closed; the kernel drops it when the
process dies, however it dies, so a crash never leaves a stale lock behind.
The holder's PID is written into the file so that the refusal can name it.
The file itself is never removed: unlinking a lock file races with the next
process opening it (each would lock a different inode).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from storage.errors import DataDirInUse

LOCK_FILE = "lock"


class DataDirLock:
    """An exclusive `flock` on `<data_dir>/lock`, held until `release`."""

    def __init__(self, fd: int, path: str) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, data_dir: str) -> DataDirLock:
        """Lock `data_dir` (which must exist) or raise `DataDirInUse` naming the holder."""
        path = os.path.join(data_dir, LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(fd)
            os.close(fd)
            raise DataDirInUse(data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the lock
            raise
        return cls(fd, path)

    def release(self) -> None:
        """Empty the file (no stale PID) and drop the lock; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):  # a full disk must not keep the lock held
            os.ftruncate(fd, 0)
        os.close(fd)


def _holder_pid(fd: int) -> int | None:
    """The PID the holder wrote, or None if it has not written it yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
