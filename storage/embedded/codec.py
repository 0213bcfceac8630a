"""The on-disk record batch: encode, decode and validate, with no I/O.

A batch is the unit of append, checksum and recovery. Layout (big-endian):

    offset size field
    0      8    base_offset     assigned by the partition writer; not under the CRC
    8      4    batch_length    bytes after this field (CRC .. end of records)
    12     4    crc             zlib.crc32 of bytes 16 .. end
    16     1    format version  (1)
    17     1    attributes      bit 0: the batch carries an identity; others 0
    18     4    record_count
    22     8    first_timestamp
    30     8    max_timestamp
    38     24   identity        only with attribute bit 0: the 16-byte identity of
                                the idempotent request that wrote the batch, then
                                appended_ms i64 (the writer's clock when framed)
    38|62  ...  records

    record: timestamp i64 | key_len i32 (-1 null) | value_len i32 (-1 null) |
            header_count u16 | key | value | headers
    header: name_len u16 | name (utf-8) | value_len i32 | value

The CRC is zlib's CRC-32, computed by `checksum.crc32` (ISA-L's where it is
installed; see there).

The identity is what Kafka's producer id and sequence number are to its
batches: the partition remembers the identities it holds (`producers`) and
rebuilds that memory from the log after a crash, so a retried append is
recognised. It sits under the CRC. Batches written before it existed have
attributes 0 and read as they always did.

As in Kafka, the base offset sits outside the CRC so the writer can stamp it
without re-checksumming; recovery and reads check it against the expected
offset instead. Offsets of records are implicit: base_offset + index.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from storage.embedded.checksum import crc32
from storage.records import Header, NewRecord, PackedRecords, Record, pack_records

FORMAT_VERSION = 1
BATCH_HEADER = struct.Struct(">QII BBIqq")
HEADER_SIZE = BATCH_HEADER.size  # 38
PREFIX = struct.Struct(">QI")  # base_offset, batch_length: enough to walk a segment
PREFIX_SIZE = PREFIX.size  # 12
CRC_AT = 12  # the CRC field
CRC_START = 16  # the CRC covers the bytes from here to the end
LENGTH_START = 12  # batch_length counts the bytes from here on
MAX_BATCH_BYTES = 256 * 1024 * 1024
HAS_IDENTITY = 0x01  # the attribute bit
IDENTITY_SIZE = 16
_IDENTITY = struct.Struct(">16sq")  # identity, appended_ms
IDENTITY_EXTENSION = _IDENTITY.size  # 24

_RECORD = struct.Struct(">qiiH")
_HEADER_NAME = struct.Struct(">H")
_HEADER_VALUE = struct.Struct(">i")
_BASE_OFFSET = struct.Struct(">Q")
_TAIL = struct.Struct(">BBIqq")  # the header after the CRC: version .. max_timestamp
_CRC = struct.Struct(">I")
_PLAIN_LENGTH = (
    HEADER_SIZE - LENGTH_START
)  # batch_length of a batch without identity, less its records


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    crc: int
    version: int
    attributes: int
    record_count: int
    first_timestamp: int
    max_timestamp: int

    @property
    def total_size(self) -> int:
        """Bytes the whole batch occupies in the segment."""
        return LENGTH_START + self.batch_length

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.record_count

    @property
    def records_start(self) -> int:
        """Where the records begin, relative to the batch's first byte."""
        return HEADER_SIZE + (IDENTITY_EXTENSION if self.attributes & HAS_IDENTITY else 0)


class CodecError(ValueError):
    """Bytes that are not a whole, valid batch (torn, garbled or foreign)."""


def encode_batch(records: Sequence[NewRecord], *, now_ms: int, base_offset: int = 0) -> bytes:
    """Encode records into one batch; records without a timestamp get `now_ms`.

    The base offset can be stamped later with `with_base_offset`.
    """
    return frame_batch(pack_records(records, now_ms=now_ms), base_offset=base_offset)


def frame_batch(
    packed: PackedRecords,
    *,
    base_offset: int = 0,
    identity: bytes | None = None,
    appended_ms: int = 0,
) -> bytes:
    """Packed records as one batch: the header and its CRC around them (the record
    layout of a batch is the packed layout, so the records are not touched).

    With `identity` (16 bytes) the batch carries it and `appended_ms`, under the CRC.
    """
    count, first, last = packed.record_count, packed.first_timestamp, packed.max_timestamp
    if count < 1:
        raise ValueError("a batch holds at least one record")
    data = packed.data
    if identity is None:
        # One pack for the whole header, the CRC from the tail's bytes: this runs
        # once per partition a request writes, so every call counts.
        tail = _TAIL.pack(FORMAT_VERSION, 0, count, first, last)
        crc = crc32(data, crc32(tail))
        head = BATCH_HEADER.pack(
            base_offset, _PLAIN_LENGTH + len(data), crc, FORMAT_VERSION, 0, count, first, last
        )
        return head + data
    if len(identity) != IDENTITY_SIZE:
        raise ValueError(f"a batch identity is {IDENTITY_SIZE} bytes, not {len(identity)}")
    tail = _TAIL.pack(FORMAT_VERSION, HAS_IDENTITY, count, first, last) + _IDENTITY.pack(
        identity, appended_ms
    )
    crc = crc32(data, crc32(tail))
    prefix = PREFIX.pack(base_offset, len(tail) + len(data) + 4)
    return b"".join((prefix, _CRC.pack(crc), tail, data))


def _frame_reference(
    data: bytes, count: int, first: int, last: int, identity: bytes | None, appended_ms: int, /
) -> bytes:
    return frame_batch(
        PackedRecords(data, count, first, last), identity=identity, appended_ms=appended_ms
    )


Frame = Callable[[bytes, int, int, int, bytes | None, int], bytes]

try:
    from storage.embedded._framing import frame as _frame_in_c
except ImportError:  # installed without a compiler: the reference frames every batch
    frame: Frame = _frame_reference
else:
    frame = _frame_in_c
"""`frame(data, count, first_timestamp, max_timestamp, identity, appended_ms)`: the
packed records `(data, count, first, max)` framed as one batch with base offset 0,
as `frame_batch` frames them; by its C twin (`_framing.c`) when that is built. It
runs once for every partition an append writes; ValueError (or struct.error, from
the reference) for anything `frame_batch` refuses."""


def with_base_offset(batch: bytes, base_offset: int) -> bytes:
    """The same batch stamped with its base offset (the CRC stays valid)."""
    return b"".join(stamped(batch, base_offset))


def stamped(batch: bytes, base_offset: int) -> tuple[bytes, memoryview]:
    """`with_base_offset` in two pieces, for a writer joining many batches into one
    buffer: the stamped prefix and a view of the rest (no copy until the join)."""
    return _BASE_OFFSET.pack(base_offset), memoryview(batch)[8:]


def read_prefix(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """(base_offset, total_size) of the batch at `pos`, from its first 12 bytes."""
    base_offset, length = PREFIX.unpack_from(buf, pos)
    return base_offset, LENGTH_START + length


def decode_header(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    """Parse and sanity-check a batch header; raises CodecError when it cannot be one."""
    if len(buf) - pos < HEADER_SIZE:
        raise CodecError("truncated batch header")
    header = BatchHeader(*BATCH_HEADER.unpack_from(buf, pos))
    if header.version != FORMAT_VERSION:
        raise CodecError(f"unknown batch format version {header.version}")
    if header.batch_length < HEADER_SIZE - LENGTH_START or header.batch_length > MAX_BATCH_BYTES:
        raise CodecError(f"implausible batch length {header.batch_length}")
    if header.record_count == 0:
        raise CodecError("empty batch")
    if header.attributes & ~HAS_IDENTITY:
        raise CodecError(f"unknown batch attributes {header.attributes:#x}")
    if header.records_start > LENGTH_START + header.batch_length:
        raise CodecError("batch too short for its identity")
    return header


def batch_identity(
    buf: bytes | memoryview, header: BatchHeader, pos: int = 0
) -> tuple[bytes, int] | None:
    """(identity, appended_ms) of the batch at `pos` whose header is `header`, or
    None when it carries none. The caller has checked the CRC if it must trust it."""
    if not header.attributes & HAS_IDENTITY:
        return None
    identity, appended_ms = _IDENTITY.unpack_from(buf, pos + HEADER_SIZE)
    return bytes(identity), int(appended_ms)


def validate_batch(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    """Check the batch at `pos` is whole and its CRC matches; raise CodecError if not."""
    header = decode_header(buf, pos)
    end = pos + header.total_size
    if end > len(buf):
        raise CodecError("truncated batch")
    if crc32(buf[pos + CRC_START : end]) != header.crc:
        raise CodecError("CRC mismatch")
    return header


def crc_matches(batch: bytes | memoryview) -> bool:
    """Whether a whole batch (exactly its bytes) still matches its CRC.

    What a read of an already decoded batch checks: its length and base offset
    were checked by the read that found it (they key the decoded cache), and
    every other byte is under the CRC."""
    if len(batch) < HEADER_SIZE:
        return False
    crc: int = _CRC.unpack_from(batch, CRC_AT)[0]
    return crc32(batch[CRC_START:]) == crc


def decode_records(
    buf: bytes | memoryview, pos: int = 0, *, min_offset: int = 0, verify: bool = True
) -> tuple[BatchHeader, list[Record]]:
    """Decode the batch at `pos` into records (those with offset >= `min_offset`).

    With `verify`, the CRC is checked first: a reader is never handed bytes that
    failed it.
    """
    header = validate_batch(buf, pos) if verify else decode_header(buf, pos)
    data = bytes(buf[pos : pos + header.total_size]) if isinstance(buf, memoryview) else buf
    start = 0 if data is not buf else pos
    cursor = start + header.records_start
    end = start + header.total_size
    offset = header.base_offset
    out: list[Record] = []
    unpack_record = _RECORD.unpack_from
    unpack_name = _HEADER_NAME.unpack_from
    unpack_value = _HEADER_VALUE.unpack_from
    try:
        for _ in range(header.record_count):
            ts, klen, vlen, hcount = unpack_record(data, cursor)
            cursor += 18
            if klen >= 0:
                key: bytes | None = data[cursor : cursor + klen]
                cursor += klen
            else:
                key = None
            if vlen >= 0:
                value: bytes | None = data[cursor : cursor + vlen]
                cursor += vlen
            else:
                value = None
            headers: tuple[Header, ...] = ()
            if hcount:
                hs: list[Header] = []
                for _h in range(hcount):
                    (nlen,) = unpack_name(data, cursor)
                    cursor += 2
                    name = data[cursor : cursor + nlen].decode()
                    cursor += nlen
                    (hvlen,) = unpack_value(data, cursor)
                    cursor += 4
                    hs.append((name, data[cursor : cursor + hvlen]))
                    cursor += hvlen
                headers = tuple(hs)
            if offset >= min_offset:
                out.append(Record(offset, ts, key, value, headers))
            offset += 1
    except (struct.error, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed record: {exc}") from exc
    if cursor != end:
        raise CodecError("record bytes do not fill the batch")
    return header, out
