"""One partition: its segments, what is visible to readers, retention and waiters.

Three parties touch a partition. The shard's writer thread appends, syncs,
rolls and publishes; readers (the event loop) read and wait; the retention pass
(a worker thread) deletes old segments. `lock` guards the segment list and the
visible end, and is held across a read's pread so retention cannot close a
descriptor under a reader. It is never held across a write or an fsync, so a
slow disk flush never blocks readers.

The visible end is a high watermark: the writer advances it only once a batch
is as durable as the topic asks, so a reader never sees a record that a crash
could take back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from storage.embedded.codec import (
    HEADER_SIZE,
    LENGTH_START,
    MAX_BATCH_BYTES,
    PREFIX,
    CodecError,
    crc_matches,
    decode_header,
    decode_records,
    read_prefix,
    stamped,
)
from storage.embedded.crashpoints import CrashPoints
from storage.embedded.decoded import Decoded, DecodedBatches, partition_token, payload_of
from storage.embedded.fileio import FileIO
from storage.embedded.openfiles import OpenFiles
from storage.embedded.producers import (
    ProducerState,
    Window,
    encode_snapshot,
    parse_snapshot_name,
    snapshot_name,
)
from storage.embedded.recovery import FENCE_FILE, RecoveredLog
from storage.embedded.segment import Segment, append_together
from storage.errors import CorruptData, OffsetOutOfRange
from storage.records import FetchResult, PartitionInfo, Record, TopicConfig

log = logging.getLogger(__name__)

_MIN_WINDOW = 16 * 1024
_MAX_WINDOW = 8 * 1024 * 1024
_FIRST_WINDOW = 16 * 1024
# Base offset, batch length, then (skipping the CRC, version, attributes) the record count.
_HEAD = struct.Struct(">QI6xI")
_KEPT_SNAPSHOTS = 2  # the newest, and one to fall back on if it is damaged


def record_size(record: Record) -> int:
    """Payload bytes of a record, as `NewRecord.size` counts them (what max_bytes limits)."""
    return (
        len(record.value or b"")
        + len(record.key or b"")
        + sum(len(n.encode()) + len(v) for n, v in record.headers)
    )


class _Stored(NamedTuple):
    """A stored batch as a read copied it, and where it lies."""

    raw: memoryview
    segment: int  # the base offset of its segment
    position: int  # in the segment file


class _Window:
    """Reads a segment through one buffer, so walking many small batches costs one pread.

    The first read is small and each refill twice the last, up to `chunk`: a fetch
    that wants one batch does not copy a megabyte, and one that wants many still
    costs a handful of preads. Slices are views of the buffer, not copies.
    """

    def __init__(self, segment: Segment, limit: int, chunk: int) -> None:
        self._segment, self._limit, self._chunk = segment, limit, chunk
        self._next = min(chunk, _FIRST_WINDOW)
        self._buf, self._start = memoryview(b""), 0

    def get(self, position: int, length: int) -> memoryview:
        end = min(position + length, self._limit)
        if position < self._start or end > self._start + len(self._buf):
            self._fill(position, end)
        return self._buf[position - self._start : end - self._start]

    def unpack(self, layout: struct.Struct, position: int) -> tuple[int, ...] | None:
        """`layout` read at `position` without a slice; None if the segment ends first."""
        end = position + layout.size
        if end > self._limit:
            return None
        if position < self._start or end > self._start + len(self._buf):
            self._fill(position, end)
        return layout.unpack_from(self._buf, position - self._start)

    def _fill(self, position: int, end: int) -> None:
        want = min(max(end - position, self._next), self._limit - position)
        self._next = min(self._next * 2, self._chunk)
        self._buf = memoryview(self._segment.read(position, want) if want > 0 else b"")
        self._start = position


class Partition:
    """The segments of one partition and the offsets readers may see."""

    def __init__(
        self,
        topic: str,
        number: int,
        directory: str,
        *,
        fio: FileIO,
        files: OpenFiles,
        config: TopicConfig,
        recovered: RecoveredLog,
        index_interval_bytes: int,
        crash: CrashPoints,
        decoded: DecodedBatches | None = None,
        producers: ProducerState | None = None,
    ) -> None:
        self.topic = topic
        self.number = number
        self.directory = directory
        self.config = config  # replaced whole on update; read by the writer per append
        self.lock = threading.Lock()
        self.segments: list[Segment] = recovered.segments
        self._bases = [s.base_offset for s in self.segments]
        self.start_offset = self.segments[0].base_offset
        self.end_offset = self.segments[-1].next_offset  # visible (acknowledged) end
        self.visible_size = self.segments[-1].size  # acknowledged bytes of the active segment
        self.quarantined = sorted(recovered.quarantined)
        self.next_offset = self.end_offset  # writer-owned: the offset the next batch gets
        self.fenced: str | None = None
        self.detached = False
        # Writer-owned: the identities of the idempotent batches held (`producers`), and
        # whether one was added since the last snapshot of them.
        self.producers = producers if producers is not None else ProducerState(Window())
        self.producers_dirty = False
        # Each waiting reader's future and the position it waits past; event-loop thread
        # only. Keyed by the future, so a reader that stops waiting leaves in O(1).
        self.waiters: dict[asyncio.Future[bool], int] = {}
        self._fio = fio
        self._files = files
        self.device = fio.device(directory)  # which file system: syncs are shared per one
        self._interval = index_interval_bytes
        self._crash = crash
        self._decoded = decoded
        self._token = partition_token()

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    # -- writer thread ------------------------------------------------------------------

    def needs_roll(self, batch_size: int, now_ms: int, *, unwritten: int = 0) -> bool:
        """Whether a batch of `batch_size` bytes must start a new segment, with
        `unwritten` bytes already bound for the active one."""
        seg = self.active
        size = seg.size + unwritten
        if size == 0:
            return False
        too_big = size + batch_size > self.config.segment_bytes
        return too_big or now_ms - seg.created_ms >= self.config.segment_ms

    def write_many(
        self, batches: Sequence[tuple[bytes, int, int]], *, durable: bool = False
    ) -> list[int]:
        """Stamp batches `(batch, count, max_timestamp)` with consecutive base offsets
        and write them to the active segment in one write (`durable`: one that
        returns once they are on disk); returns their base offsets. On an OSError
        none of them is written (nor numbered)."""
        data, placed = self._stamped(batches)
        return self.write_stamped(data, placed, durable=durable)

    def write_stamped(
        self, data: bytes, placed: list[tuple[int, int, int, int]], *, durable: bool = False
    ) -> list[int]:
        """`write_many` of batches already stamped from the next offset on, back to back
        in `data`, each one's (base offset, count, max timestamp, size) in `placed`."""
        self._check_stamped(placed)
        self.active.append_many(data, placed, durable=durable)
        return self._numbered(placed)

    def _check_stamped(self, placed: list[tuple[int, int, int, int]]) -> None:
        # The writer stamps a pass's batches before it writes them; nothing else
        # writes to the partition in between, and a batch under a wrong offset is
        # never written (the check costs one comparison a partition).
        if placed[0][0] != self.next_offset:
            raise ValueError(f"batches stamped from {placed[0][0]}, not {self.next_offset}")

    def _stamped(
        self, batches: Sequence[tuple[bytes, int, int]]
    ) -> tuple[bytes, list[tuple[int, int, int, int]]]:
        """The batches stamped from the next offset on, joined (one copy in all), and
        each one's (base offset, count, max timestamp, size) for the segment."""
        base = self.next_offset
        parts: list[bytes | memoryview] = []
        placed: list[tuple[int, int, int, int]] = []
        for batch, count, max_timestamp in batches:
            parts.extend(stamped(batch, base))
            placed.append((base, count, max_timestamp, len(batch)))
            base += count
        return b"".join(parts), placed

    def _numbered(self, placed: list[tuple[int, int, int, int]]) -> list[int]:
        """The stamped batches are written: the next offset moves past them."""
        last = placed[-1]
        self.next_offset = last[0] + last[1]
        return [entry[0] for entry in placed]

    def sync(self) -> None:
        self.active.sync()

    def roll(self, now_ms: int) -> None:
        """Close the active segment (already synced and published) and start a new one.

        The producer state is snapshotted first when an identity was added since
        its last snapshot: then a closed segment never holds an identity that
        the newest snapshot lacks, and recovery reads only the active segment.
        """
        old = self.active
        self._crash.hit("index-flush")
        old.flush_indexes()
        if self.producers_dirty:
            self.write_producer_snapshot()
        new = Segment.create(
            self._files,
            self.directory,
            self.next_offset,
            index_interval_bytes=self._interval,
            now_ms=now_ms,
        )
        try:
            self._crash.hit("segment-roll")
            self._fio.fsync_dir(self.directory)
        except BaseException:
            with contextlib.suppress(OSError):
                new.delete()
            raise
        with self.lock:
            self.segments.append(new)
            self._bases.append(new.base_offset)
            self.visible_size = 0

    def write_producer_snapshot(self) -> None:
        """Writer thread (or at close): snapshot the producer state as of the next
        offset, then remove all but the newest snapshots."""
        offset = self.next_offset
        self._fio.write_atomic(
            os.path.join(self.directory, snapshot_name(offset)),
            encode_snapshot(self.producers, offset),
        )
        self.producers_dirty = False
        older = sorted(
            o
            for o in map(parse_snapshot_name, self._fio.listdir(self.directory))
            if o is not None and o < offset
        )
        for stale in older[: max(0, len(older) - (_KEPT_SNAPSHOTS - 1))]:
            with contextlib.suppress(OSError):
                self._fio.unlink(os.path.join(self.directory, snapshot_name(stale)))

    def publish(self) -> int:
        """Make everything written so far visible; returns the new end offset."""
        with self.lock:
            self.end_offset = self.next_offset
            self.visible_size = self.active.size
            return self.end_offset

    def fence(self, reason: str) -> None:
        """Stop accepting appends after a failed fsync.

        The bytes past the acknowledged end were never acknowledged and must
        never be served, also after a restart. Cutting them now may not reach
        the disk (its sync just failed), so the acknowledged end offset is also
        written to a marker file that recovery honours before serving anything.
        """
        self.fenced = reason
        with self.lock:
            seg, keep, end = self.active, self.visible_size, self.end_offset
        try:
            if not seg.closed:
                seg.cut_back(keep)
        except OSError:
            pass
        try:
            self._fio.write_atomic(os.path.join(self.directory, FENCE_FILE), str(end).encode())
        except OSError as exc:
            log.error(
                "partition %d of %r: cannot record its acknowledged end %d: %s",
                self.number,
                self.topic,
                end,
                exc,
            )
        self.next_offset = self.end_offset
        self.producers.forget_from(self.end_offset)  # written, never acknowledged

    # -- readers ------------------------------------------------------------------------

    def info(self) -> PartitionInfo:
        with self.lock:
            size = sum(s.size for s in self.segments[:-1]) + self.visible_size
            return PartitionInfo(self.number, self.start_offset, self.end_offset, size)

    def _corrupt_range(self, offset: int) -> tuple[int, int] | None:
        for start, end in self.quarantined:
            if start <= offset < end:
                return start, end
        return None

    def read(self, offset: int, max_records: int, max_bytes: int) -> FetchResult:
        """Records from `offset`, every batch checked against its CRC before it is served.

        Batches are copied under the lock and decoded outside it. `max_bytes`
        limits record payloads, which the stored batch sizes only bound from
        above, so when the copied batches turn out to hold less, the read goes
        back for more (each round copies at least one batch).
        """
        with self.lock:
            start, end = self.start_offset, self.end_offset
            if offset < start or offset > end:
                raise OffsetOutOfRange(self.number, offset, start, end)
        known = self._read_known(offset, end, max_records, max_bytes)
        if known is not None and len(known[0]) == 1:
            batch = known[0][0]
            after = batch[-1].offset + 1
            if after >= end or len(batch) >= max_records:  # the loop below would stop here
                return FetchResult(batch, after, start, end, known[1])
        records: list[Record] = []
        total = 0
        cursor = offset
        while cursor < end and len(records) < max_records:
            if cursor != offset or records:
                known = self._read_known(cursor, end, max_records - len(records), max_bytes - total)
            if known is not None:
                batches, payload = known
                for batch in batches:
                    records.extend(batch)
                total += payload
                cursor = records[-1].offset + 1
                continue
            with self.lock:
                if cursor < self.start_offset:
                    if not records:
                        raise OffsetOutOfRange(self.number, offset, self.start_offset, end)
                    break  # retention overtook a long read: serve what we have
                bad = self._corrupt_range(cursor)
                if bad is not None:
                    if records:
                        break
                    raise CorruptData(self.number, bad[0], bad[1], "quarantined at recovery")
                stop = min(end, cursor + max_records - len(records))
                for q_start, _ in self.quarantined:
                    if cursor < q_start < stop:
                        stop = q_start
                try:
                    raws = self._gather(cursor, stop, max(1, max_bytes - total))
                except CorruptData:
                    if records:
                        break  # serve what came before the damage; the next read reports it
                    raise
            if not raws:
                break
            total, full = self._decode_into(
                records, raws, cursor, stop, max_records, max_bytes, total
            )
            if full or not records:
                break
            cursor = records[-1].offset + 1
        next_offset = records[-1].offset + 1 if records else offset
        return FetchResult(tuple(records), next_offset, start, end, total)

    def _read_known(
        self, offset: int, end: int, room: int, budget: int
    ) -> tuple[list[tuple[Record, ...]], int] | None:
        """Whole cached batches from `offset` on, read where the cache says they lie.

        The run is the batches the decoded cache holds from `offset` on, one after
        another in one segment, as many as fit `room` records and `budget` payload
        bytes; they are copied with one pread and each must still be, byte for
        byte, the batch that passed its CRC when it was decoded (so it still names
        its base offset and length, and still matches its CRC). None when the
        first batch is not such a batch (not cached, starting elsewhere, not
        fitting) or any check fails: the long way then decides, and reports what
        is wrong.
        """
        cache = self._decoded
        if cache is None:
            return None
        run = cache.run(self._token, offset, end, room, budget)
        if not run:
            return None
        first, last = run[0], run[-1]
        span = last.position + last.size - first.position
        with self.lock:
            if offset < self.start_offset:
                return None
            seg = self.segments[bisect_right(self._bases, offset) - 1]
            if seg.base_offset != first.segment:
                return None
            stored = seg.read(first.position, span)
        if len(run) == 1:
            if stored != first.raw:
                return None
        else:
            for hit in run:
                at = hit.position - first.position
                if stored[at : at + hit.size] != hit.raw:
                    return None
        return [hit.records for hit in run], sum(hit.payload or 0 for hit in run)

    def _gather(self, offset: int, stop: int, max_bytes: int) -> list[_Stored]:
        """Raw whole batches covering `offset` up to `stop` / about `max_bytes` (lock held)."""
        i = bisect_right(self._bases, offset) - 1
        chunk = min(max(max_bytes + self._interval + 4096, _MIN_WINDOW), _MAX_WINDOW)
        raws: list[_Stored] = []
        taken = 0
        first = True
        while i < len(self.segments) and taken < max_bytes:
            seg = self.segments[i]
            limit = self.visible_size if seg is self.active else seg.size
            window = _Window(seg, limit, chunk)
            position = 0
            if first:
                position = self._locate(window, seg, limit, offset)
                first = False
            while position < limit and taken < max_bytes:
                prefix = window.unpack(PREFIX, position)
                if prefix is None:
                    break
                base, size = prefix[0], LENGTH_START + prefix[1]
                if base >= stop:
                    return raws
                if not HEADER_SIZE <= size <= LENGTH_START + MAX_BATCH_BYTES:
                    if not raws:
                        raise CorruptData(self.number, offset, offset + 1, "bad batch framing")
                    return raws
                if position + size > limit:
                    if not raws:
                        raise CorruptData(self.number, base, base + 1, "batch runs past the end")
                    return raws
                raws.append(_Stored(window.get(position, size), seg.base_offset, position))
                taken += size
                position += size
            i += 1
        return raws

    def _locate(self, window: _Window, seg: Segment, limit: int, offset: int) -> int:
        """The position of the batch holding `offset`, found along a checked chain.

        A batch's base offset is not under its CRC, so a batch is believed to
        start at the offset it names only if that is where the batch before it
        ended. The walk starts from an anchor it can trust: the segment's last
        batch (for a read at the tail) or an index entry, whose batch names the
        offset noted for it (both are caches without a checksum of their own),
        else the segment's start, whose offset is the file's name.
        Where the chain breaks, those offsets are reported corrupt, never served
        under a wrong offset.
        """
        rel, position = seg.index.lookup(offset - seg.base_offset)
        expected = seg.base_offset + rel
        last_base, last_position = seg.last_batch  # one tuple: the writer replaces it whole
        if (
            position < last_position < limit
            and last_base <= offset
            and self._base_at(window, last_position) == last_base
        ):
            expected, position = last_base, last_position  # a read at the tail
        elif position > 0 and self._base_at(window, position) != expected:
            expected, position = seg.base_offset, 0
        while True:
            head = window.unpack(_HEAD, position) if position + HEADER_SIZE <= limit else None
            if head is None:
                return position  # a torn or short batch: decoding reports it
            base, size, count = head[0], LENGTH_START + head[1], head[2]
            if base != expected:
                # The damage ends at the next batch if it looks sane, and never past
                # this segment: the length field is not under the CRC either.
                following = self._base_at(window, position + size) if size > 0 else -1
                end = min(following, seg.next_offset) if following > expected else expected + 1
                end = max(end, expected + 1)
                raise CorruptData(
                    self.number, expected, end, "a batch does not start where the last one ended"
                )
            if offset < base + count or size < HEADER_SIZE or position + size >= limit:
                return position
            expected = base + count
            position += size

    @staticmethod
    def _base_at(window: _Window, position: int) -> int:
        prefix = window.unpack(PREFIX, position)
        return -1 if prefix is None else prefix[0]

    def _decode_into(
        self,
        records: list[Record],
        raws: list[_Stored],
        offset: int,
        stop: int,
        max_records: int,
        max_bytes: int,
        total: int,
    ) -> tuple[int, bool]:
        """Check and decode `raws` onto `records`; returns (payload total, a limit was hit)."""
        expected: int | None = None
        cache = self._decoded
        for n, (raw, segment, position) in enumerate(raws):
            base, size = read_prefix(raw)
            hit = None if cache is None else cache.get(self._token, base)
            if hit is not None and hit[2:5] != (segment, position, size):
                hit = None  # not the batch that was cached: decode what is stored
            try:
                if hit is None:
                    _header, decoded = decode_records(raw)
                    next_offset = base + len(decoded)
                else:
                    if not crc_matches(raw):  # the stored bytes are checked on every read
                        raise CodecError("CRC mismatch")
                    next_offset = base + len(hit.records)
                if expected is None and not base <= offset < next_offset:
                    raise CodecError("batch does not hold the requested offset")
                if expected is not None and base != expected:
                    raise CodecError("batch offsets are not contiguous")
            except CodecError as exc:
                if records:
                    return total, True
                first = expected if expected is not None else min(base, offset)
                last = read_prefix(raws[n + 1].raw)[0] if n + 1 < len(raws) else first + 1
                raise CorruptData(self.number, first, max(last, first + 1), str(exc)) from exc
            if hit is None:
                # Checked whole (CRC) and in place (its base continues the chain).
                hit = Decoded.of(decoded, segment, position, bytes(raw))
                if cache is not None:
                    cache.put(self._token, base, hit)
            whole = hit.records
            batch = whole[offset - base :] if offset > base else whole
            expected = next_offset
            room = max_records - len(records)
            if len(batch) <= room and batch and batch[-1].offset < stop:
                # The common case: the whole batch fits the count; sizes decide alone.
                payload = hit.payload if batch is whole else payload_of(batch)
                if payload is not None and total + payload <= max_bytes:
                    records.extend(batch)  # and so does every record of it
                    total += payload
                    continue
                for rec in batch:
                    _, _, key, value, headers = rec
                    size = (0 if value is None else len(value)) + (0 if key is None else len(key))
                    if headers:
                        size += sum(len(n.encode()) + len(v) for n, v in headers)
                    if records and total + size > max_bytes:
                        return total, True
                    records.append(rec)
                    total += size
                continue
            for rec in batch:
                if rec.offset >= stop or len(records) >= max_records:
                    return total, True
                size = record_size(rec)
                if records and total + size > max_bytes:
                    return total, True
                records.append(rec)
                total += size
        return total, False

    def offset_for_time(self, timestamp_ms: int) -> int:
        """The first visible offset whose timestamp is >= `timestamp_ms`, else the end."""
        with self.lock:
            end = self.end_offset
            for seg in self.segments:
                if seg.max_timestamp < timestamp_ms:
                    continue
                limit = self.visible_size if seg is self.active else seg.size
                rel = seg.time_index.lookup(timestamp_ms)
                _, position = seg.index.lookup(rel)
                found = self._first_at_or_after(seg, position, limit, timestamp_ms, end)
                if found is not None:
                    return max(found, self.start_offset)
            return end

    def _first_at_or_after(
        self, seg: Segment, position: int, limit: int, timestamp_ms: int, end: int
    ) -> int | None:
        window = _Window(seg, limit, _MIN_WINDOW * 4)
        while position + HEADER_SIZE <= limit:
            try:
                header = decode_header(window.get(position, HEADER_SIZE))
            except CodecError:
                return None
            if header.base_offset >= end or position + header.total_size > limit:
                return None
            if header.max_timestamp >= timestamp_ms and not self._corrupt_range(header.base_offset):
                try:
                    _, batch = decode_records(window.get(position, header.total_size))
                except CodecError:
                    batch = []  # a corrupt batch is never served; look past it
                for rec in batch:
                    if rec.timestamp >= timestamp_ms:
                        return rec.offset
            position += header.total_size
        return None

    # -- retention ----------------------------------------------------------------------

    def take_expired(self, now_ms: int) -> list[Segment]:
        """Detach closed segments past retention (oldest first); the caller deletes them."""
        config = self.config
        victims: list[Segment] = []
        with self.lock:
            if self.detached:
                return victims
            total = sum(s.size for s in self.segments)
            while len(self.segments) > 1:
                oldest = self.segments[0]
                by_time = (
                    config.retention_ms is not None
                    and oldest.max_timestamp < now_ms - config.retention_ms
                )
                by_bytes = (
                    config.retention_bytes is not None
                    and total - oldest.size >= config.retention_bytes
                )
                if not (by_time or by_bytes):
                    break
                self.segments.pop(0)
                self._bases.pop(0)
                total -= oldest.size
                oldest.close()
                victims.append(oldest)
            if victims:
                self.start_offset = self.segments[0].base_offset
                self.quarantined = [q for q in self.quarantined if q[1] > self.start_offset]
        return victims

    # -- waiters (event-loop thread) ----------------------------------------------------

    def wake(self) -> None:
        """Resolve the waiters whose position the visible end has passed."""
        if not self.waiters:
            return
        end = self.end_offset
        passed = [fut for fut, position in self.waiters.items() if end > position]
        for fut in passed:
            del self.waiters[fut]
            if not fut.done():
                fut.set_result(True)

    def wake_all(self, result: bool) -> None:
        waiters, self.waiters = self.waiters, {}
        for fut in waiters:
            if not fut.done():
                fut.set_result(result)

    def close_files(self) -> None:
        """Close the segments and drop this partition's decoded batches (deleted or closing)."""
        with self.lock:
            for seg in self.segments:
                seg.close()
        if self._decoded is not None:
            self._decoded.forget(self._token)


def write_together(
    partitions: Sequence[Partition],
    datas: Sequence[bytes],
    placed: Sequence[list[tuple[int, int, int, int]]],
) -> list[list[int] | OSError]:
    """`Partition.write_stamped` (not durable) of `datas[i]`, its batches `placed[i]`,
    to each of `partitions` (distinct, of one engine), with one write call for them
    all (`append_together`): each one's base offsets, or the OSError of its write,
    after which none of its batches is written nor numbered, as after a failed
    `write_stamped`."""
    if not partitions:
        return []
    for p, batches in zip(partitions, placed, strict=True):
        p._check_stamped(batches)
    errors = append_together(
        partitions[0].active.files, [p.active for p in partitions], datas, placed
    )
    return [
        p._numbered(batches) if exc is None else exc
        for p, batches, exc in zip(partitions, placed, errors, strict=True)
    ]
