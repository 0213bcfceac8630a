"""One segment of a partition's log: a `.log` file of batches plus its two indexes.

Files are named by the segment's base offset, zero-padded to 20 digits, so a
directory listing sorts them in log order. The log file is opened O_APPEND:
after a failed write is cut back with ftruncate, the next write lands exactly
at the new end. Only the partition's writer thread appends; readers use pread
on the same descriptor, under the partition lock.

The descriptor belongs to the engine's `OpenFiles`, which may close it while
the segment is idle and reopens it on the next use: every use holds a lease
for the length of its call, and a write that leaves unsynced data keeps the
file open until its sync (see `openfiles.py` for why).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from storage.embedded.index import MIN_TIMESTAMP, IndexCorrupt, OffsetIndex, TimeIndex
from storage.embedded.openfiles import OpenFiles, SegmentFile

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"


def segment_file_stem(base_offset: int) -> str:
    return f"{base_offset:020d}"


def parse_segment_name(filename: str) -> int | None:
    """The base offset of a `.log` file name, or None for any other file."""
    stem, ext = os.path.splitext(filename)
    if ext != LOG_SUFFIX or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


class Segment:
    """An open segment: its descriptor, byte size, next offset and sparse indexes."""

    def __init__(
        self,
        files: OpenFiles,
        directory: str,
        base_offset: int,
        file: SegmentFile,
        *,
        size: int,
        index_interval_bytes: int,
        created_ms: int,
    ) -> None:
        self.files = files
        self.fio = files.fio
        self.directory = directory
        self.base_offset = base_offset
        self.file = file
        self.size = size
        self.created_ms = created_ms
        self.next_offset = base_offset
        self.max_timestamp = MIN_TIMESTAMP
        self.index = OffsetIndex()
        self.time_index = TimeIndex()
        self._index_interval = index_interval_bytes
        self._since_entry = 0
        # Where the last batch noted starts and the offset it names: a reader at the
        # tail (a live stream, a long-poll) starts its walk there instead of at the
        # sparse index's last entry, some 4 KiB of batches back. Believed only if the
        # batch found there still names that offset, as an index entry is.
        self.last_batch: tuple[int, int] = (base_offset, 0)
        # Set when cutting back a failed write itself failed: the next append must
        # first succeed in cutting the file back, or O_APPEND would write after junk.
        self._tail_dirty = False

    # -- construction -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        files: OpenFiles,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        now_ms: int,
    ) -> Segment:
        """Create an empty segment file (the caller fsyncs the directory)."""
        fio = files.fio
        path = os.path.join(directory, segment_file_stem(base_offset) + LOG_SUFFIX)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        fd = fio.open(path, flags)
        try:
            if fio.size(fd):
                fio.ftruncate(fd, 0)
        except BaseException:
            fio.close(fd)
            raise
        return cls(
            files,
            directory,
            base_offset,
            files.adopt(path, flags, fd),
            size=0,
            index_interval_bytes=index_interval_bytes,
            created_ms=now_ms,
        )

    @classmethod
    def open(
        cls,
        files: OpenFiles,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        now_ms: int,
    ) -> Segment:
        """Open an existing segment; its indexes are empty until loaded or rebuilt."""
        fio = files.fio
        path = os.path.join(directory, segment_file_stem(base_offset) + LOG_SUFFIX)
        flags = os.O_RDWR | os.O_APPEND
        fd = fio.open(path, flags)
        try:
            size = fio.size(fd)
        except BaseException:
            fio.close(fd)
            raise
        return cls(
            files,
            directory,
            base_offset,
            files.adopt(path, flags, fd),
            size=size,
            index_interval_bytes=index_interval_bytes,
            created_ms=now_ms,
        )

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, segment_file_stem(self.base_offset) + LOG_SUFFIX)

    @property
    def index_path(self) -> str:
        return os.path.join(self.directory, segment_file_stem(self.base_offset) + INDEX_SUFFIX)

    @property
    def timeindex_path(self) -> str:
        return os.path.join(self.directory, segment_file_stem(self.base_offset) + TIMEINDEX_SUFFIX)

    # -- indexes ------------------------------------------------------------------------

    def reset_indexes(self) -> None:
        """Forget everything known about the content (before a rebuilding scan)."""
        self.index = OffsetIndex()
        self.time_index = TimeIndex()
        self.next_offset = self.base_offset
        self.max_timestamp = MIN_TIMESTAMP
        self._since_entry = 0
        self.last_batch = (self.base_offset, 0)

    def note_batch(
        self,
        position: int,
        base_offset: int,
        count: int,
        max_timestamp: int,
        size: int,
        *,
        force_entry: bool = False,
    ) -> None:
        """Account for a whole batch at `position` (appended now or found by a scan)."""
        if position > 0 and (force_entry or self._since_entry >= self._index_interval):
            rel = base_offset - self.base_offset
            self.index.append(rel, position)
            self.time_index.append(self.max_timestamp, rel)
            self._since_entry = 0
        self._since_entry += size
        self.last_batch = (base_offset, position)
        self.next_offset = base_offset + count
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp

    def load_indexes(self) -> bool:
        """Load both index files if they exist, parse, and describe exactly this file.

        On success the segment's next offset and max timestamp come from the end
        entries. Returns False (leaving the indexes empty) when they must be rebuilt.
        """
        try:
            if not (self.fio.exists(self.index_path) and self.fio.exists(self.timeindex_path)):
                return False
            index = OffsetIndex.from_bytes(
                self.fio.read_whole(self.index_path), segment_size=self.size
            )
            time_index = TimeIndex.from_bytes(self.fio.read_whole(self.timeindex_path))
        except (OSError, IndexCorrupt):
            return False
        if not len(index) or not len(time_index):
            return False
        end_rel, end_pos = index.offsets.pop(), index.positions.pop()
        max_ts, time_end_rel = time_index.timestamps.pop(), time_index.offsets.pop()
        if end_pos != self.size or time_end_rel != end_rel:
            return False
        if index.offsets != time_index.offsets:
            return False
        if (end_rel == 0) != (self.size == 0):
            return False
        self.index, self.time_index = index, time_index
        self.next_offset = self.base_offset + end_rel
        self.max_timestamp = max_ts
        self._since_entry = self.size - (index.positions[-1] if len(index) else 0)
        return True

    def flush_indexes(self) -> None:
        """Write both index files atomically, each ending with its end entry."""
        rel_end = self.next_offset - self.base_offset
        self.fio.write_atomic(self.index_path, self.index.to_bytes(end=(rel_end, self.size)))
        self.fio.write_atomic(
            self.timeindex_path, self.time_index.to_bytes(end=(self.max_timestamp, rel_end))
        )

    # -- data ---------------------------------------------------------------------------

    def append_many(
        self, data: bytes, batches: list[tuple[int, int, int, int]], *, durable: bool = False
    ) -> int:
        """Write whole batches, back to back in `data`, with one write; `batches` holds
        each one's (base offset, record count, max timestamp, size). Returns the
        position of the first. `durable`: the write returns once the data is on
        disk (`FileIO.write_all_durable`), and no `sync` is needed for it; else
        the file stays open until `sync` (it holds unsynced data).

        On any OSError the file is cut back to where the first batch started, so
        a half-written batch is never left behind, and the error is re-raised.
        """
        files, file = self.files, self.file
        fd = files.acquire(file)
        try:
            position = self.size
            if self._tail_dirty:
                self.fio.ftruncate(fd, position)
                self._tail_dirty = False
            if not durable:
                files.mark_dirty(file)  # before the write: its pages may fail write-back
            try:
                if durable:
                    self.fio.write_all_durable(fd, data)
                else:
                    self.fio.write_all(fd, data)
            except OSError:
                try:
                    self.fio.ftruncate(fd, position)
                except OSError:
                    self._tail_dirty = True
                raise
        finally:
            files.release(file)
        self._appended(position, len(data), batches)
        return position

    def _appended(
        self, position: int, length: int, batches: list[tuple[int, int, int, int]]
    ) -> None:
        """Account for `length` bytes of whole batches written at `position`."""
        self.size = position + length
        at = position
        for base_offset, count, max_timestamp, size in batches:
            self.note_batch(at, base_offset, count, max_timestamp, size)
            at += size

    def read(self, position: int, size: int) -> bytes:
        files, file = self.files, self.file
        fd = files.acquire(file)
        try:
            return self.fio.pread(fd, size, position)
        finally:
            files.release(file)

    def sync(self) -> None:
        """fdatasync the file. Raises its error; either way the sync's outcome has
        been taken, so the file no longer needs to stay open for it."""
        files, file = self.files, self.file
        fd = files.acquire(file)
        try:
            self.fio.fdatasync(fd)
        finally:
            files.mark_synced(file)
            files.release(file)

    def fileno(self) -> int:
        """The file's descriptor now, opening it if need be (the number may change
        once the file has been closed to keep the engine within its bound)."""
        files, file = self.files, self.file
        fd = files.acquire(file)
        files.release(file)
        return fd

    def let_go_unsynced(self) -> None:
        """Its partition is fenced (a sync or durable write failed and was reported):
        nothing more is acknowledged from this file, so it need not stay open."""
        self.files.mark_synced(self.file)

    @property
    def dirty(self) -> bool:
        """Written since its last sync (kept open until then)."""
        return self.file.dirty

    @property
    def closed(self) -> bool:
        return self.file.closed

    def truncate(self, size: int) -> None:
        """Cut the file to `size` bytes durably (recovery of a torn tail)."""
        with self.files.lease(self.file) as fd:
            self.fio.ftruncate(fd, size)
            self.fio.fsync(fd)
        self.size = size

    def cut_back(self, size: int) -> None:
        """Cut the file to `size` bytes, not durably (a fenced partition's unacknowledged tail)."""
        with self.files.lease(self.file) as fd:
            self.fio.ftruncate(fd, size)

    def file_size(self) -> int:
        with self.files.lease(self.file) as fd:
            return self.fio.size(fd)

    def close(self) -> None:
        self.files.close(self.file)

    def delete(self) -> None:
        """Close and remove the log and index files (missing index files are fine)."""
        self.close()
        self.fio.unlink(self.log_path)
        for path in (self.index_path, self.timeindex_path):
            if self.fio.exists(path):
                self.fio.unlink(path)


def append_together(
    files: OpenFiles,
    segments: Sequence[Segment],
    datas: Sequence[bytes],
    batches: Sequence[list[tuple[int, int, int, int]]],
) -> list[OSError | None]:
    """`Segment.append_many` (not durable) of `datas[i]` and its `batches[i]` to each
    `segments[i]` (distinct segments), with one `FileIO.write_files` for them all:
    the files are held, and marked unsynced, in one step, written in one call,
    and let go in one step. Each one's error, or None; a segment whose write
    failed is cut back to where its data started, as `append_many` does."""
    fio = files.fio
    handles = [segment.file for segment in segments]
    fds = files.acquire_many(handles)
    try:
        files.mark_dirty(*handles)  # before the write: its pages may fail write-back
        errors: list[OSError | None] = [None] * len(segments)
        write = list(range(len(segments)))
        for i, segment in enumerate(segments):
            if segment._tail_dirty:  # a failed write's cut-back failed: cut back first
                try:
                    fio.ftruncate(fds[i], segment.size)
                    segment._tail_dirty = False
                except OSError as cut:
                    errors[i] = cut
        if any(errors):
            write = [i for i in write if errors[i] is None]
        written = fio.write_files([fds[i] for i in write], [datas[i] for i in write])
        for i, error in zip(write, written, strict=True):
            segment = segments[i]
            if error is None:
                segment._appended(segment.size, len(datas[i]), batches[i])
                continue
            errors[i] = error
            try:
                fio.ftruncate(fds[i], segment.size)
            except OSError:
                segment._tail_dirty = True
        return errors
    finally:
        files.release_many(handles)


def sync_together(files: OpenFiles, segments: Sequence[Segment]) -> list[OSError | None]:
    """`FileIO.sync_files` over the segments' files (of one file system), held open
    for the call in one step; each one's error, or None. Afterwards none of them
    needs to stay open for its sync any more (its outcome has been taken)."""
    handles = [segment.file for segment in segments]
    fds = files.acquire_many(handles)
    try:
        return files.fio.sync_files(fds)
    finally:
        files.release_many(handles, synced=True)
