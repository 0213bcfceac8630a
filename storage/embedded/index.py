"""Sparse lookups into one segment: offset -> byte position, and time -> offset.

Both indexes are caches kept in memory (two parallel lists searched with
bisect) and written beside the segment when it is closed. They are never the
source of truth: `from_bytes` rejects a file that is torn, garbled or does not
fit the segment, and the caller then rebuilds the index by scanning the log.

Each file ends with an "end entry" describing the whole segment (its record
count and size for the offset index, its maximum timestamp for the time index),
so a closed segment's extent and age are known without reading it, and an index
written for a shorter version of the log is recognised as stale.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right

_OFFSET_ENTRY = struct.Struct(">QQ")  # relative offset, byte position
_TIME_ENTRY = struct.Struct(">qQ")  # max timestamp of earlier records, relative offset
MIN_TIMESTAMP = -(2**63)


class IndexCorrupt(ValueError):
    """An index file that cannot be trusted; rebuild it from the log."""


class OffsetIndex:
    """Relative offset -> byte position of the batch starting there (sparse)."""

    ENTRY_SIZE = _OFFSET_ENTRY.size

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.positions: list[int] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, rel_offset: int, position: int) -> None:
        """Add an entry; both keys must grow strictly (batches are appended in order)."""
        if self.offsets and (rel_offset <= self.offsets[-1] or position <= self.positions[-1]):
            raise ValueError("index entries must increase")
        self.offsets.append(rel_offset)
        self.positions.append(position)

    def lookup(self, rel_offset: int) -> tuple[int, int]:
        """The greatest entry whose offset is <= `rel_offset`, else (0, 0): the segment start."""
        i = bisect_right(self.offsets, rel_offset)
        if i == 0:
            return 0, 0
        return self.offsets[i - 1], self.positions[i - 1]

    def truncate_after(self, position: int) -> None:
        """Drop entries at or past `position` (the log was cut back there)."""
        i = bisect_left(self.positions, position)
        del self.offsets[i:]
        del self.positions[i:]

    def to_bytes(self, *, end: tuple[int, int] | None = None) -> bytes:
        """The entries, then the optional end entry (record count, segment size)."""
        pack = _OFFSET_ENTRY.pack
        parts = [pack(o, p) for o, p in zip(self.offsets, self.positions, strict=True)]
        if end is not None:
            parts.append(pack(*end))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, *, segment_size: int) -> OffsetIndex:
        """Parse and check a file; raises IndexCorrupt unless every entry fits the segment."""
        if len(data) % cls.ENTRY_SIZE:
            raise IndexCorrupt("offset index size is not a whole number of entries")
        index = cls()
        for rel, pos in _OFFSET_ENTRY.iter_unpack(data):
            if pos > segment_size:
                raise IndexCorrupt(f"offset index points past the segment end ({pos})")
            if index.offsets and (rel <= index.offsets[-1] or pos <= index.positions[-1]):
                raise IndexCorrupt("offset index entries do not increase")
            index.offsets.append(rel)
            index.positions.append(pos)
        return index


class TimeIndex:
    """Timestamp -> relative offset where a scan for that time may start (sparse).

    An entry (ts, rel) says every record before relative offset `rel` has a
    timestamp <= ts. Timestamps of records need not be monotonic, so the search
    for the first record at or after T starts at the last entry with ts < T.
    """

    ENTRY_SIZE = _TIME_ENTRY.size

    def __init__(self) -> None:
        self.timestamps: list[int] = []
        self.offsets: list[int] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, max_timestamp_before: int, rel_offset: int) -> None:
        if self.offsets and (
            rel_offset <= self.offsets[-1] or max_timestamp_before < self.timestamps[-1]
        ):
            raise ValueError("time index entries must increase")
        self.timestamps.append(max_timestamp_before)
        self.offsets.append(rel_offset)

    def lookup(self, timestamp: int) -> int:
        """Relative offset from which a scan finds the first record with ts >= `timestamp`."""
        i = bisect_left(self.timestamps, timestamp)
        return 0 if i == 0 else self.offsets[i - 1]

    def truncate_after(self, rel_offset: int) -> None:
        """Drop entries at or past relative offset `rel_offset`."""
        i = bisect_left(self.offsets, rel_offset)
        del self.timestamps[i:]
        del self.offsets[i:]

    def to_bytes(self, *, end: tuple[int, int] | None = None) -> bytes:
        """The entries, then the optional end entry (segment max timestamp, record count)."""
        pack = _TIME_ENTRY.pack
        parts = [pack(t, o) for t, o in zip(self.timestamps, self.offsets, strict=True)]
        if end is not None:
            parts.append(pack(*end))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeIndex:
        """Parse and check a file; raises IndexCorrupt when entries are not monotonic."""
        if len(data) % cls.ENTRY_SIZE:
            raise IndexCorrupt("time index size is not a whole number of entries")
        index = cls()
        for ts, rel in _TIME_ENTRY.iter_unpack(data):
            if index.offsets and (rel <= index.offsets[-1] or ts < index.timestamps[-1]):
                raise IndexCorrupt("time index entries do not increase")
            index.timestamps.append(ts)
            index.offsets.append(rel)
        return index
