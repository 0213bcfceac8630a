"""What happens when a partition is opened: find its segments and decide what to trust.

Closed segments were fsynced and had their indexes written when they were
rolled, so their index files are trusted when they parse and describe the file
exactly; otherwise the index is rebuilt by scanning. The active (last) segment
is scanned batch by batch unless the store was shut down cleanly:

* a torn or garbled tail (an invalid batch with no valid batch after it) is cut
  off at the last whole batch: those bytes were never acknowledged;
* an invalid batch in the middle (its length is sane and a valid batch with a
  plausible base offset follows) held acknowledged data, so nothing is cut:
  its offset range is quarantined and reads of it raise CorruptData.

Recovery never drops data that might have been acknowledged to make the log
look tidy, and never serves bytes that failed their check.

Then the partition's memory of idempotent appends is rebuilt
(`recover_producers`): the newest producer snapshot, plus the identities of the
batches after it, read from the log itself.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from storage.embedded.codec import (
    HEADER_SIZE,
    LENGTH_START,
    MAX_BATCH_BYTES,
    PREFIX_SIZE,
    BatchHeader,
    CodecError,
    batch_identity,
    decode_header,
    read_prefix,
    validate_batch,
)
from storage.embedded.fileio import FileIO
from storage.embedded.openfiles import OpenFiles
from storage.embedded.producers import (
    Held,
    ProducerState,
    Window,
    decode_snapshot,
    parse_snapshot_name,
    rebuilt,
    snapshot_name,
)
from storage.embedded.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIMEINDEX_SUFFIX,
    Segment,
    parse_segment_name,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Written when a failed fsync fenced the partition: its acknowledged end offset.
FENCE_FILE = "fenced"
_MIN_RECORD_BYTES = 18  # timestamp, key length, value length, header count


@dataclass
class RecoveredLog:
    """The opened segments of one partition and what recovery found."""

    segments: list[Segment]
    quarantined: list[tuple[int, int]] = field(default_factory=list)
    truncated_bytes: int = 0
    scanned_segments: int = 0


class _SegmentReader:
    """Buffered sequential reads of one segment during a scan."""

    def __init__(self, segment: Segment, size: int) -> None:
        self._segment = segment
        self._size = size
        self._buf = b""
        self._start = 0

    def get(self, position: int, length: int) -> memoryview:
        """Up to `length` bytes at `position` (fewer at the end of the file)."""
        end = min(position + length, self._size)
        if position < self._start or end > self._start + len(self._buf):
            want = min(max(end - position, _CHUNK), self._size - position)
            self._buf = self._segment.read(position, want) if want > 0 else b""
            self._start = position
        return memoryview(self._buf)[position - self._start : end - self._start]


def _batch_at(reader: _SegmentReader, position: int, size: int) -> BatchHeader | None:
    """The header of a whole batch with a good CRC at `position`, or None."""
    try:
        header = decode_header(reader.get(position, HEADER_SIZE))
        if position + header.total_size > size:
            return None
        return validate_batch(reader.get(position, header.total_size))
    except CodecError:
        return None


def _resync(
    reader: _SegmentReader, position: int, size: int, expected: int
) -> tuple[int, int] | None:
    """Where the log continues after a bad batch at `position`, if it provably does.

    The bad batch's length must be plausible and lead to a valid batch whose
    base offset lies after `expected`, within what the bad batch could hold.
    Returns (position, base offset) of that batch.
    """
    prefix = reader.get(position, PREFIX_SIZE)
    if len(prefix) < PREFIX_SIZE:
        return None
    _, total = read_prefix(prefix)
    if total < HEADER_SIZE or total > LENGTH_START + MAX_BATCH_BYTES:
        return None
    after = position + total
    header = _batch_at(reader, after, size)
    if header is None:
        return None
    most = max(1, (total - HEADER_SIZE) // _MIN_RECORD_BYTES)
    if not expected < header.base_offset <= expected + most:
        return None
    return after, header.base_offset


def scan_segment(segment: Segment, *, may_truncate: bool) -> tuple[list[tuple[int, int]], int]:
    """Rebuild a segment's indexes by validating every batch.

    Returns (quarantined offset ranges, bytes cut from the tail). With
    `may_truncate` False (a closed segment) the file is never modified.
    """
    size = segment.file_size()
    segment.size = size
    segment.reset_indexes()
    reader = _SegmentReader(segment, size)
    quarantined: list[tuple[int, int]] = []
    position, expected, force_entry = 0, segment.base_offset, False
    while position < size:
        header = _batch_at(reader, position, size)
        if header is not None and header.base_offset == expected:
            segment.note_batch(
                position,
                header.base_offset,
                header.record_count,
                header.max_timestamp,
                header.total_size,
                force_entry=force_entry,
            )
            position += header.total_size
            expected = header.next_offset
            force_entry = False
            continue
        resumed = _resync(reader, position, size, expected)
        if resumed is None:
            break
        position, base = resumed
        quarantined.append((expected, base))
        expected, force_entry = base, True
    segment.next_offset = expected
    truncated = 0
    if position < size and may_truncate:
        segment.truncate(position)
        truncated = size - position
    return quarantined, truncated


def _remove_strays(fio: FileIO, directory: str, names: list[str]) -> None:
    """Remove leftovers of interrupted writes: temp files and indexes of deleted logs."""
    logs = {n[: -len(LOG_SUFFIX)] for n in names if n.endswith(LOG_SUFFIX)}
    for name in names:
        stem, ext = os.path.splitext(name)
        stray_index = ext in (INDEX_SUFFIX, TIMEINDEX_SUFFIX) and stem not in logs
        if name.endswith(".tmp") or stray_index:
            fio.unlink(os.path.join(directory, name))


def recover_partition(
    files: OpenFiles, directory: str, *, clean: bool, index_interval_bytes: int, now_ms: int
) -> RecoveredLog:
    """Open every segment of the partition in `directory`, validating as described above
    (the segments' files in `files`, which keeps at most its bound of them open)."""
    fio = files.fio
    names = fio.listdir(directory)
    _remove_strays(fio, directory, names)
    bases = sorted(b for b in (parse_segment_name(n) for n in names) if b is not None)
    result = RecoveredLog(segments=[])
    try:
        for base in bases:
            result.segments.append(
                Segment.open(
                    files, directory, base, index_interval_bytes=index_interval_bytes, now_ms=now_ms
                )
            )
        if not result.segments:
            result.segments.append(
                Segment.create(
                    files, directory, 0, index_interval_bytes=index_interval_bytes, now_ms=now_ms
                )
            )
            fio.fsync_dir(directory)
        cut = FENCE_FILE in names and _cut_to_fence(fio, directory, result)
        last = len(result.segments) - 1
        for i, segment in enumerate(result.segments):
            next_base = result.segments[i + 1].base_offset if i < last else None
            trusted = (i < last or (clean and not cut)) and segment.load_indexes()
            if trusted and (next_base is None or segment.next_offset == next_base):
                continue
            quarantined, truncated = scan_segment(segment, may_truncate=i == last)
            result.scanned_segments += 1
            result.truncated_bytes += truncated
            result.quarantined.extend(quarantined)
            if next_base is not None and segment.next_offset < next_base:
                # A closed segment is never cut: what it lost stays a hole that reads report.
                result.quarantined.append((segment.next_offset, next_base))
    except BaseException:
        for segment in result.segments:
            segment.close()
        raise
    return result


def _cut_to_fence(fio: FileIO, directory: str, log: RecoveredLog) -> bool:
    """Cut the log back to the acknowledged end recorded when it was fenced.

    Everything past that offset was written but never acknowledged (its fsync
    failed), so it must not be served now that the disk may hold it after all.
    The end always falls on a batch boundary. Returns True when the active
    segment changed (its indexes must then be rebuilt).
    """
    marker = os.path.join(directory, FENCE_FILE)
    end = int(fio.read_whole(marker).decode().strip())
    while len(log.segments) > 1 and log.segments[-1].base_offset >= end:
        log.segments.pop().delete()
    segment = log.segments[-1]
    size = segment.file_size()
    reader = _SegmentReader(segment, size)
    # Walk batch boundaries by their length prefix only: a corrupt batch before
    # the end is the scan's business (quarantine), not a reason to cut here.
    position, cut_at = 0, None
    while position + PREFIX_SIZE <= size:
        base_offset, total = read_prefix(reader.get(position, PREFIX_SIZE))
        if base_offset >= end:
            cut_at = position
            break
        if total < HEADER_SIZE or position + total > size:
            break  # no provable boundary: leave the tail to the scan
        position += total
    if cut_at is not None:
        segment.truncate(cut_at)
    fio.unlink(marker)
    fio.fsync_dir(directory)
    return cut_at is not None


def identities_in(segment: Segment, *, min_offset: int = 0) -> list[tuple[bytes, Held]]:
    """The identities of the segment's whole, CRC-checked batches at or past
    `min_offset`, in log order. A damaged batch is stepped over when its length
    is sane (recovery quarantined it; it was never acknowledged as anything)."""
    size = segment.size
    reader = _SegmentReader(segment, size)
    found: list[tuple[bytes, Held]] = []
    position = 0
    while position + PREFIX_SIZE <= size:
        header = _batch_at(reader, position, size)
        if header is None:
            _, total = read_prefix(reader.get(position, PREFIX_SIZE))
            if total < HEADER_SIZE or position + total > size:
                break
            position += total
            continue
        if header.base_offset >= min_offset:
            carried = batch_identity(reader.get(position, header.records_start), header)
            if carried is not None:
                identity, appended_ms = carried
                held = Held(
                    header.base_offset, header.record_count, header.first_timestamp, appended_ms
                )
                found.append((identity, held))
        position += header.total_size
    return found


def recover_producers(
    fio: FileIO,
    directory: str,
    segments: list[Segment],
    window: Window,
    *,
    clean: bool,
    now_ms: int,
) -> tuple[ProducerState, bool]:
    """The identities the partition holds within `window`, and whether some of
    them were read from the log rather than a snapshot (then the next roll must
    snapshot them, or a later crash would find them in a closed segment only).

    The writer snapshots the state at each segment roll and at a clean shutdown
    whenever an identity was added since its last snapshot, so every identity
    in a closed segment is in the newest snapshot. Hence: after a clean
    shutdown the newest snapshot is the state; after a crash the active
    segment's batches past it are added. When the newest snapshot is unusable
    an older one serves, with every segment after it read; with none at all
    (damage), the newest segments are read back until the window is full.
    Snapshots past the log's end describe bytes that are gone and are removed.
    """
    end = segments[-1].next_offset
    offsets = sorted(o for o in map(parse_snapshot_name, fio.listdir(directory)) if o is not None)
    usable: list[int] = []
    for offset in offsets:
        if offset > end:
            fio.unlink(os.path.join(directory, snapshot_name(offset)))
        else:
            usable.append(offset)
    for rank, offset in enumerate(reversed(usable)):
        try:
            decoded = decode_snapshot(
                fio.read_whole(os.path.join(directory, snapshot_name(offset))), window
            )
        except OSError:
            decoded = None
        if decoded is None:
            log.warning(
                "%s: producer snapshot at offset %d is damaged; not used", directory, offset
            )
            continue
        at, state = decoded
        if clean and rank == 0:
            return rebuilt(window, (), now_ms, state), False
        newest = rank == 0
        later = [s for s in segments if s.next_offset > at and (not newest or s is segments[-1])]
        batches = [b for s in later for b in identities_in(s, min_offset=at)]
        return rebuilt(window, batches, now_ms, state), bool(batches)
    if not usable:
        # Never snapshotted: no closed segment holds an identity (see above).
        if clean:
            return ProducerState(window), False
        batches = identities_in(segments[-1])
        return rebuilt(window, batches, now_ms), bool(batches)
    log.warning("%s: no usable producer snapshot; reading the log back", directory)
    newest_first: list[list[tuple[bytes, Held]]] = []
    total = 0
    for segment in reversed(segments):
        if total >= window.max_batches:
            break
        found = identities_in(segment)
        newest_first.append(found)
        total += len(found)
    batches = [b for found in reversed(newest_first) for b in found]
    return rebuilt(window, batches, now_ms), bool(batches)
