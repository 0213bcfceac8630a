"""FileIO replacements that misbehave the way disks do, for the fault-injection tests."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

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


class FullDirectory(FileIO):
    """ENOSPC for writes to files under the armed directories (one partition's disk
    filling while the others' do not), nothing else changed."""

    def __init__(self) -> None:
        self.full: set[str] = set()
        self._paths: dict[int, str] = {}

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = super().open(path, flags, mode)
        self._paths[fd] = os.path.abspath(path)
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        path = self._paths.get(fd, "")
        if any(path.startswith(d + os.sep) for d in self.full):
            raise OSError(errno.ENOSPC, "injected: no space left on device")
        return super().write(fd, data)


class ShortWrites(FileIO):
    """Every write writes a random non-empty prefix of what it was given."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if len(data) > 1:
            data = memoryview(data)[: self._rng.randint(1, len(data))]
        return super().write(fd, data)


class PowerIsOff(OSError):
    """Raised by every file operation after a simulated power cut."""

    def __init__(self) -> None:
        super().__init__(errno.EIO, "simulated power cut: the disk is gone")


@dataclass
class PowerCutReport:
    """What a simulated power cut did to the files under the disk's root."""

    rewritten: int = 0  # files put back to their durable content
    torn: int = 0  # ...of which with a torn last page past it
    removed: int = 0  # entries that were never made durable (files and directories)
    restored: int = 0  # entries removed or renamed away whose removal was not durable


class SimulatedDisk(FileIO):
    """Remembers what a power cut would keep under `root`, and can apply the cut.

    The model is the POSIX one that crash-consistency tools use:

    * a file's content is durable as it was when an fsync/fdatasync of it last
      started; later writes, truncations and rewrites are not;
    * a directory entry (created, renamed, unlinked, a new directory) is durable
      only once its parent directory is fsynced; until then the cut brings back
      the old entry, or nothing.

    Files and directories are nodes, like inodes, so a rename moves the node and
    an unsynced rename over an existing file leaves the old file in place after
    the cut. Everything present when the disk is created counts as durable.

    `power_cut` may run while writer threads are busy: from then on every file
    operation raises `PowerIsOff` (the process keeps running, as if its disk had
    vanished), operations already under way finish first, then the real files
    are rewritten to their durable state, with, when `tear` is set, a torn last
    page past the durable end of files that had unsynced bytes: random garbage,
    a prefix of the unsynced bytes, or both.
    """

    def __init__(self, root: str | os.PathLike[str], *, seed: int = 0) -> None:
        self.root = os.path.abspath(root)
        self._rng = random.Random(seed)
        self._power = threading.Condition()
        self._in_flight = 0
        self.dead = False
        self._lock = threading.Lock()  # the model below; never held across a sync
        self._ids = itertools.count()
        self._files: dict[int, bytes | None] = {}  # durable content; None: as when scanned
        self._live: dict[int, dict[str, int]] = {}  # directory -> its entries now
        self._durable: dict[int, dict[str, int]] = {}  # directory -> its durable entries
        self._fds: dict[int, int] = {}
        self._root = self._scan(self.root)

    # -- the model ----------------------------------------------------------------------

    def _scan(self, path: str) -> int:
        node = next(self._ids)
        if os.path.isdir(path):
            entries = {name: self._scan(os.path.join(path, name)) for name in os.listdir(path)}
            self._live[node], self._durable[node] = entries, dict(entries)
        else:
            self._files[node] = None
        return node

    def _locate(self, path: str) -> tuple[int, str] | None:
        """(parent directory node, name) of a path under the root, if its parent is known."""
        full = os.path.abspath(path)
        if not full.startswith(self.root + os.sep):
            return None
        parts = full[len(self.root) + 1 :].split(os.sep)
        node = self._root
        for part in parts[:-1]:
            child = self._live.get(node, {}).get(part)
            if child is None or child not in self._live:
                return None
            node = child
        return node, parts[-1]

    def _node(self, path: str) -> int | None:
        if os.path.abspath(path) == self.root:
            return self._root
        loc = self._locate(path)
        return None if loc is None else self._live[loc[0]].get(loc[1])

    def _capture(self, node: int, path: str) -> None:
        """Pin the durable content of every file under `node` before it changes or moves."""
        if node in self._live:
            for name, child in self._live[node].items():
                self._capture(child, os.path.join(path, name))
        elif self._files.get(node, b"") is None:
            with open(path, "rb") as f:
                self._files[node] = f.read()

    def _capture_path(self, path: str) -> None:
        node = self._node(path)
        if node is not None and os.path.lexists(path):
            self._capture(node, path)

    def _walk(self, entries: dict[int, dict[str, int]]) -> dict[str, int]:
        """path -> node of the tree as `entries` (live or durable) describes it."""
        out: dict[str, int] = {self.root: self._root}
        stack = [(self.root, self._root)]
        while stack:
            path, node = stack.pop()
            for name, child in entries.get(node, {}).items():
                child_path = os.path.join(path, name)
                out[child_path] = child
                if child in self._live:
                    stack.append((child_path, child))
        return out

    @contextlib.contextmanager
    def _powered(self) -> Iterator[None]:
        with self._power:
            if self.dead:
                raise PowerIsOff()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._power:
                self._in_flight -= 1
                self._power.notify_all()

    # -- FileIO -------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        with self._powered():
            with self._lock:
                if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
                    self._capture_path(path)
                loc = self._locate(path)
                fd = super().open(path, flags, mode)
                if loc is not None:
                    parent, name = loc
                    node = self._live[parent].get(name)
                    if node is None:  # created now: empty, and its entry not yet durable
                        node = next(self._ids)
                        self._files[node] = b""
                        self._live[parent][name] = node
                    self._fds[fd] = node
            return fd

    def close(self, fd: int) -> None:  # allowed after the cut: it changes nothing on disk
        with self._lock:
            self._fds.pop(fd, None)
        super().close(fd)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        with self._powered():
            return super().write(fd, data)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        with self._powered():
            return super().pread(fd, size, offset)

    def _sync(self, fd: int, sync: Callable[[int], None]) -> None:
        with self._powered():
            node = self._fds.get(fd)
            # What the file holds when the sync starts is durable once it returns.
            snapshot = None
            if node is not None:
                with open(f"/proc/self/fd/{fd}", "rb") as f:
                    snapshot = f.read()
            sync(fd)
            if node is not None:
                with self._lock:
                    self._files[node] = snapshot

    def fdatasync(self, fd: int) -> None:
        self._sync(fd, super().fdatasync)

    def fsync(self, fd: int) -> None:
        self._sync(fd, super().fsync)

    def ftruncate(self, fd: int, length: int) -> None:
        with self._powered():
            super().ftruncate(fd, length)

    def size(self, fd: int) -> int:
        with self._powered():
            return super().size(fd)

    def fsync_dir(self, path: str) -> None:
        with self._powered():
            super().fsync_dir(path)
            with self._lock:
                node = self._node(path)
                if node is not None and node in self._live:
                    self._durable[node] = dict(self._live[node])

    def mkdir(self, path: str) -> None:
        with self._powered(), self._lock:
            super().mkdir(path)
            loc = self._locate(path)
            if loc is not None:
                node = next(self._ids)
                self._live[node], self._durable[node] = {}, {}
                self._live[loc[0]][loc[1]] = node

    def rename(self, src: str, dst: str) -> None:
        with self._powered(), self._lock:
            self._capture_path(src)
            self._capture_path(dst)
            src_loc, dst_loc = self._locate(src), self._locate(dst)
            super().rename(src, dst)
            node = None if src_loc is None else self._live[src_loc[0]].pop(src_loc[1], None)
            if dst_loc is not None:
                if node is None:
                    node = next(self._ids)
                    self._files[node] = b""  # came from outside the root
                self._live[dst_loc[0]][dst_loc[1]] = node

    def _remove(self, path: str, remove: Callable[[str], None]) -> None:
        with self._powered(), self._lock:
            self._capture_path(path)
            loc = self._locate(path)
            remove(path)
            if loc is not None:
                self._live[loc[0]].pop(loc[1], None)

    def unlink(self, path: str) -> None:
        self._remove(path, super().unlink)

    def rmtree(self, path: str) -> None:
        self._remove(path, super().rmtree)

    def listdir(self, path: str) -> list[str]:
        with self._powered():
            return super().listdir(path)

    def exists(self, path: str) -> bool:
        with self._powered():
            return super().exists(path)

    # -- the cut ------------------------------------------------------------------------

    def power_cut(self, *, tear: bool = True) -> PowerCutReport:
        """Stop the disk and rewrite the files under the root to what was durable."""
        with self._power:
            self.dead = True
            self._power.wait_for(lambda: self._in_flight == 0)
        report = PowerCutReport()
        with self._lock:
            live = self._walk(self._live)
            target = self._walk(self._durable)
            live_path = {node: path for path, node in live.items()}
            now: dict[int, bytes] = {}
            for node in target.values():
                if self._files.get(node) is not None and node in live_path:
                    with open(live_path[node], "rb") as f:
                        now[node] = f.read()
            # Remove what the cut never saw, deepest first.
            for dirpath, dirnames, filenames in os.walk(self.root, topdown=False):
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    if target.get(path, -1) not in self._files:
                        os.unlink(path)
                        report.removed += 1
                for name in dirnames:
                    path = os.path.join(dirpath, name)
                    if target.get(path, -1) not in self._live:
                        shutil.rmtree(path)
                        report.removed += 1
            # Put back what was durable, parents first.
            for path in sorted(target, key=len):
                node = target[path]
                if node in self._live:
                    if not os.path.isdir(path):
                        os.mkdir(path)
                        report.restored += 1
                    continue
                durable = self._files[node]
                if durable is None:
                    assert os.path.isfile(path), f"{path} vanished without being captured"
                    continue
                if not os.path.exists(path):
                    report.restored += 1
                content = durable
                current = now.get(node, b"")
                if tear and len(current) > len(durable) and current.startswith(durable):
                    content = durable + self._torn_page(current[len(durable) :])
                    report.torn += 1
                with open(path, "wb") as f:
                    f.write(content)
                report.rewritten += 1
        return report

    def _torn_page(self, unsynced: bytes) -> bytes:
        """What may reach the platter of a page being written when the power went."""
        kind = self._rng.randrange(3)
        if kind == 0:
            return os.urandom(self._rng.randint(1, 4096))
        kept = unsynced[: self._rng.randint(1, len(unsynced))]
        if kind == 1:
            return kept
        return kept + os.urandom(self._rng.randint(1, 4096))


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


class WritebackErrors(FileIO):
    """Write-back that fails the way Linux reports it: to the descriptors open then.

    `fail_writeback(path)` arms a file: the next write to it loses its pages, and
    the error is recorded against every descriptor of the file open at that
    moment; an fdatasync or fsync of such a descriptor raises EIO, once. A
    descriptor opened later never sees it, and closing one that still holds an
    unreported error loses it (`lost` counts those; `reported` the errors
    raised). Syncs of many files go one by one (each its own error), yet report
    as shared (`syncs_together`), so the engine writes a pass's fsync partitions
    first and syncs them afterwards: the window in which a file could be closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[int, str] = {}
        self._armed: set[str] = set()
        self._errors: set[int] = set()  # descriptors with an unreported error
        self.lost = 0
        self.reported = 0

    def path_of(self, fd: int) -> str | None:
        with self._lock:
            return self._paths.get(fd)

    def fail_writeback(self, path: str) -> None:
        with self._lock:
            self._armed.add(os.path.abspath(path))

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = super().open(path, flags, mode)
        with self._lock:
            self._paths[fd] = os.path.abspath(path)
        return fd

    def close(self, fd: int) -> None:
        with self._lock:
            if fd in self._errors:
                self._errors.discard(fd)
                self.lost += 1
            self._paths.pop(fd, None)
        super().close(fd)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        n = super().write(fd, data)
        with self._lock:
            path = self._paths.get(fd)
            if path in self._armed:
                self._armed.discard(path)
                self._errors.update(f for f, p in self._paths.items() if p == path)
        return n

    def _report(self, fd: int) -> None:
        with self._lock:
            if fd in self._errors:
                self._errors.discard(fd)
                self.reported += 1
                raise OSError(errno.EIO, "injected: write-back of this file failed")

    def fdatasync(self, fd: int) -> None:
        self._report(fd)
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._report(fd)
        super().fsync(fd)

    def syncs_together(self) -> bool:
        return True

    def sync_files(self, fds: Sequence[int]) -> list[OSError | None]:
        errors: list[OSError | None] = []
        for fd in fds:
            try:
                self.fdatasync(fd)
            except OSError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors
