"""The engine's open segment files: at most a set number open, reopened when needed.

A partition's segment files would otherwise each hold a descriptor for as long
as the engine runs, so the descriptors a process holds would grow with its
partitions and segments until it meets its limit (`ulimit -n`, 1,024 on many
systems) and every open, accept and socket fails. So each engine keeps its
segment files in one `OpenFiles`: a file is opened when it is used, and when
more than `capacity` are open, an idle one is closed (which one: `Residency`);
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
`Residency` is the bookkeeping alone (which file is open, held, unsynced, and
which to close), with no I/O, so its promises are tested apart from the files.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Iterator, Sequence
from typing import cast

from storage.embedded.fileio import FileIO

DEFAULT_MAX_OPEN_FILES = 1024
"""Segment files an engine keeps open at most (besides those in use or unsynced)
unless told otherwise (the gateway derives its bound from the process's
descriptor limit). Past a working set this large, a share of the writes and
reads reopens its file (an open and a close: about 13 us of CPU under load)."""


class Resident:
    """What `Residency` knows of one file: whether it is open, how many hold it,
    whether it holds unsynced data, and where it stands in the eviction order."""

    __slots__ = ("_at", "_in", "closed", "dirty", "open", "ref", "users", "written")

    def __init__(self, *, open: bool) -> None:
        self.open = open  # a descriptor is held for it now
        self.users = 0  # leases held now
        self.dirty = False  # written and not yet synced: pinned open
        self.closed = False  # closed for good (deleted, or the engine closed)
        self.written = False  # written since it was opened (kept before read-only files)
        self.ref = False  # written since its last look by the ageing step
        self._in: list[Resident] | None = None  # the candidate list it is in, if any
        self._at = 0  # its index there


AGE_EVERY = 4
"""One written file aged every this many evictions: often enough that files no longer
written give way to a reader within a few thousand evictions, seldom enough that
a partition written every few hundred evictions keeps its place (each write sets
its reference bit again)."""

NONE: tuple[Resident, ...] = ()  # no file to close (shared: most answers are this)


class Residency:
    """Which idle files to close to keep at most `capacity` open. Pure: the caller
    opens and closes the descriptors the answers name, under its own lock.

    Candidates are the open files nobody holds and that hold no unsynced data.
    They are in two lists: files written since they were opened (a writer's
    active segments) and the others (sealed segments a reader reopened). A
    victim is a random candidate of the read-only list while it has any, else a
    random written one; before every `AGE_EVERY`th, one random written file is
    aged: its reference bit (set by each write) cleared, or if already clear,
    the file moved to the read-only list, so a partition no longer written
    gives way in time.

    Why not least recently used: a reader (or a writer) that cycles over more
    files than fit finds each file evicted just before it comes round again, so
    every access reopens (at 1,500 files through 1,024, 100% against 57% chosen
    at random). Keyed produce, the common case past the bound, writes
    partitions in no order at all; there every choice made without knowing the
    future reopens about (files - capacity) / files of its writes, and the
    random one is no worse than least recently used. Keeping written files
    before read-only ones means a consumer catching up through old segments
    churns its own files, not the writers'.

    The random choice takes no work on a use: a held file stays in its list
    and is dropped when picked (`_pick`), and put back when let go (`settle`).
    """

    def __init__(self, capacity: int, rng: random.Random | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.open_count = 0  # files open now
        self.peak = 0  # the most ever open at once
        self._random = (rng or random.Random()).random
        self._read: list[Resident] = []
        self._written: list[Resident] = []
        self._picks = 0

    def opened(self, file: Resident) -> Sequence[Resident]:
        """The file's descriptor was just opened: count it; the files to close now."""
        file.open = True
        file.written = file.ref = False
        self.open_count += 1
        if self.open_count > self.peak:
            self.peak = self.open_count
        self.settle(file)
        return self.victims()

    def hold(self, file: Resident) -> bool:
        """A lease on the file begins; True if it must be opened first (then `opened`,
        or `let_go` if the open failed). Raises ValueError for a file closed for
        good that is not open (one closed while held stays usable until let go)."""
        if not file.open:
            if file.closed:
                raise ValueError("the file is closed")
            file.users += 1
            return True
        file.users += 1
        return False

    def let_go(self, file: Resident, *, synced: bool = False) -> Sequence[Resident]:
        """A lease ends (with `synced`: after the sync its write needed); the files
        to close now, this one among them if it was closed for good meanwhile."""
        if synced:
            file.dirty = False
        users = file.users = file.users - 1
        if users:
            return NONE
        if file.closed:
            return self._closed_for_good(file)
        if not file.dirty and file._in is not (self._written if file.written else self._read):
            self.settle(file)
        if self.open_count > self.capacity:
            return self.victims()
        return NONE

    def hold_many(self, files: Sequence[Resident]) -> list[Resident]:
        """`hold` of each file (distinct files); those that must be opened first, in
        order (each then `opened`; on a failed open, `let_go_many` of them all)."""
        closed = [file for file in files if file.closed and not file.open]
        if closed:
            raise ValueError("the file is closed")
        shut: list[Resident] = []
        for file in files:
            file.users += 1
            if not file.open:
                shut.append(file)
        return shut

    def let_go_many(self, files: Sequence[Resident], *, synced: bool = False) -> list[Resident]:
        """`let_go` of each file, the files to close now."""
        out: list[Resident] = []
        read, written = self._read, self._written
        for file in files:
            if synced:
                file.dirty = False
            users = file.users = file.users - 1
            if users:
                continue
            if file.closed:
                out.extend(self._closed_for_good(file))
            elif not file.dirty and file._in is not (written if file.written else read):
                self.settle(file)
        if self.open_count > self.capacity:
            out.extend(self.victims())
        return out

    def mark_dirty(self, files: Sequence[Resident]) -> None:
        """Data was written to the files (under a lease): keep them open until `synced`."""
        for file in files:
            file.dirty = file.written = file.ref = True

    def synced(self, file: Resident) -> Sequence[Resident]:
        """The sync the file's data waited for has run: the files to close now."""
        file.dirty = False
        if file.users:
            return NONE
        if file.closed:
            return self._closed_for_good(file)
        self.settle(file)
        return self.victims()

    def close(self, file: Resident) -> Sequence[Resident]:
        """Close the file for good: [file] if its descriptor is to be closed now, []
        if it is held (its last `let_go` names it) or not open."""
        file.closed = True
        file.dirty = False
        if file.users:
            return NONE
        return self._closed_for_good(file)

    def settle(self, file: Resident) -> None:
        """Make an open file that nobody holds and that holds no unsynced data a
        candidate again, in the list its `written` says."""
        if file.users or file.dirty or not file.open or file.closed:
            return
        want = self._written if file.written else self._read
        where = file._in
        if where is not want:
            if where is not None:
                self._drop(file)
            file._in, file._at = want, len(want)
            want.append(file)

    def victims(self) -> list[Resident]:
        """Idle files closed (counted out) until at most `capacity` are open, or no
        candidate is left: the rest open are held or unsynced."""
        out: list[Resident] = []
        while self.open_count > self.capacity:
            file = self._pick()
            if file is None:
                break
            file.open = False
            self.open_count -= 1
            out.append(file)
        return out

    def candidates(self) -> int:
        """Files in the candidate lists (some may be held now: dropped when picked)."""
        return len(self._read) + len(self._written)

    # -- the choice ---------------------------------------------------------------------

    def _pick(self) -> Resident | None:
        read, written = self._read, self._written
        rand = self._random
        self._picks += 1
        if written and not self._picks % AGE_EVERY:  # age one written file
            file = written[int(rand() * len(written))]
            if not self._candidate(file):
                self._drop(file)
            elif file.ref:
                file.ref = False
            else:
                file.written = False
                self._drop(file)
                self.settle(file)
        while read or written:
            pool = read or written
            file = pool[int(rand() * len(pool))]
            self._drop(file)
            if self._candidate(file):
                return file
        return None

    @staticmethod
    def _candidate(file: Resident) -> bool:
        return file.open and not (file.users or file.dirty or file.closed)

    def _drop(self, file: Resident) -> None:
        """Take the file out of its candidate list (swap with the last: O(1))."""
        pool = file._in
        if pool is None:
            return
        last = pool.pop()
        if last is not file:
            pool[file._at] = last
            last._at = file._at
        file._in = None

    def _closed_for_good(self, file: Resident) -> Sequence[Resident]:
        """Its caller gave up on the file (deleted, or the engine closing): whatever
        it holds unsynced no longer pins it."""
        file.dirty = False
        self._drop(file)
        if not file.open:
            return NONE
        file.open = False
        self.open_count -= 1
        return [file]


class SegmentFile(Resident):
    """One segment log file as `OpenFiles` manages it: its path, how to open it,
    and its descriptor while it is open. Only `OpenFiles` touches the fields."""

    __slots__ = ("fd", "flags", "path")

    def __init__(self, path: str, flags: int, fd: int | None = None) -> None:
        super().__init__(open=fd is not None)
        self.path = path
        self.flags = flags & ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)  # a reopen never creates
        self.fd = fd


class OpenFiles:
    """The segment files of one engine, at most `capacity` of them idle and open."""

    def __init__(
        self,
        fio: FileIO,
        capacity: int = DEFAULT_MAX_OPEN_FILES,
        rng: random.Random | None = None,
    ) -> None:
        self.fio = fio
        self._residency = Residency(capacity, rng)
        self.capacity = capacity
        self._lock = threading.Lock()
        self.reopened = 0  # opens of a file that had been closed to stay in bound

    @property
    def open_count(self) -> int:
        """Descriptors held now."""
        return self._residency.open_count

    @property
    def peak(self) -> int:
        """The most descriptors ever held at once."""
        return self._residency.peak

    def adopt(self, path: str, flags: int, fd: int) -> SegmentFile:
        """Manage a file the caller has just opened with `flags` (counted from now on)."""
        file = SegmentFile(path, flags)
        file.fd = fd
        with self._lock:
            self._close_all(self._residency.opened(file))
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
        """Open the file if need be and hold it open; pair with `release`."""
        with self._lock:
            if self._residency.hold(file):
                return self._open(file)
            return file.fd  # type: ignore[return-value]  # open, per the residency

    def acquire_many(self, files: Sequence[SegmentFile]) -> list[int]:
        """`acquire` of each file in one lock section: a writer pass holds every file
        it writes or syncs for one call (`FileIO.write_files`, `sync_files`). On an
        OSError (a reopen failed) none of them is held."""
        residency = self._residency
        with self._lock:
            shut = residency.hold_many(files)
            if shut:
                try:
                    for file in shut:
                        assert isinstance(file, SegmentFile)
                        file.fd = self.fio.open(file.path, file.flags)
                        self.reopened += 1
                        self._close_all(residency.opened(file))
                except BaseException:
                    self._close_all(residency.let_go_many(files))
                    raise
            return cast("list[int]", [file.fd for file in files])  # all open now

    def release_many(self, files: Sequence[SegmentFile], *, synced: bool = False) -> None:
        """`release` of each file (with `synced`, after `mark_synced`) in one lock section."""
        with self._lock:
            victims = self._residency.let_go_many(files, synced=synced)
            if victims:
                self._close_all(victims)

    def release(self, file: SegmentFile) -> None:
        with self._lock:
            victims = self._residency.let_go(file)
            if victims:
                self._close_all(victims)

    def mark_dirty(self, *files: SegmentFile) -> None:
        """The files hold data not yet synced: keep them open until `mark_synced`.
        Call with a lease held (the write that made them dirty)."""
        with self._lock:
            self._residency.mark_dirty(files)

    def mark_synced(self, file: SegmentFile) -> None:
        """A sync of the file has run and its outcome was taken (success, or the
        error that fenced its partition): it may be closed again."""
        with self._lock:
            self._close_all(self._residency.synced(file))

    def close(self, file: SegmentFile) -> None:
        """Close the file for good (deleted, or the engine closing); a lease still
        held closes it on release."""
        with self._lock:
            self._close_all(self._residency.close(file))

    def over_capacity(self) -> bool:
        """More files open than `capacity` (the writers then sync dirty files early)."""
        return self._residency.open_count > self.capacity

    def is_open(self, file: SegmentFile) -> bool:
        return file.fd is not None

    # -- under the lock -----------------------------------------------------------------

    def _open(self, file: SegmentFile) -> int:
        """Reopen a file `Residency.hold` found closed (it is held already)."""
        residency = self._residency
        try:
            fd = self.fio.open(file.path, file.flags)
        except BaseException:
            self._close_all(residency.let_go(file))
            raise
        file.fd = fd
        self.reopened += 1
        self._close_all(residency.opened(file))
        return fd

    def _close_all(self, files: Sequence[Resident]) -> None:
        for file in files:
            assert isinstance(file, SegmentFile)
            fd, file.fd = file.fd, None
            if fd is not None:
                self.fio.close(fd)
