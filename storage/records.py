"""The log's own value types: what goes in, what comes out, how a topic is configured.

Storage speaks these types and nothing else: no HTTP shapes, no pydantic request
models. Every backend (embedded files, Redis Streams) accepts and returns them
unchanged, so the layers above cannot tell the backends apart.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NamedTuple, NewType

Offset = NewType("Offset", int)
PartitionId = NewType("PartitionId", int)

Header = tuple[str, bytes]

# A storage-level topic name. The gateway composes it from a tenant and a topic
# name with "~" between them (63 + 1 + 249 characters at most); storage checks
# that it is a safe Redis key part. No engine uses it as a file name: the
# embedded one names directories by topic id.
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,512}$")


def is_valid_topic_name(name: str) -> bool:
    """True when `name` is 1..512 of A-Z a-z 0-9 . _ ~ - and not "." or ".."."""
    return bool(TOPIC_NAME_PATTERN.fullmatch(name)) and name not in {".", ".."}


class NewRecord(NamedTuple):
    """A record as a producer hands it over; the log assigns its offset.

    `timestamp` None means log-append time: the store stamps it when it accepts
    the batch. A NamedTuple rather than a dataclass because hot paths build
    hundreds of thousands of these a second.
    """

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: int | None = None

    def size(self) -> int:
        """Bytes the record's payload occupies; what `max_record_bytes` limits."""
        value, key = self.value, self.key
        n = (len(value) if value else 0) + (len(key) if key else 0)
        for name, hvalue in self.headers:  # a plain loop: no generator for header-less records
            n += len(name.encode()) + len(hvalue)
        return n


_PACKED_HEAD = struct.Struct(">qiiH")
_PACKED_NAME = struct.Struct(">H")
_PACKED_VALUE = struct.Struct(">i")


class PackedRecords(NamedTuple):
    """Records already laid out as bytes, timestamps resolved: what a hot producer
    hands the log so that no per-record Python object is built on the way.

    `data` holds `record_count` records back to back, each
    `timestamp i64 | key_len i32 (-1 null) | value_len i32 (-1 null) | header_count u16 |
    key | value | headers` with every header `name_len u16 | name | value_len i32 | value`
    (big-endian): the record layout of the embedded log's batches. `pack_records`
    writes it and `unpack_records` reads it; the gateway's C fast path writes it too.
    """

    data: bytes
    record_count: int
    first_timestamp: int
    max_timestamp: int


def pack_records(records: Sequence[NewRecord], *, now_ms: int) -> PackedRecords:
    """`records` packed; a record without a timestamp gets `now_ms` (log-append time)."""
    if not records:
        raise ValueError("a batch holds at least one record")
    parts: list[bytes] = []
    first_ts: int | None = None
    max_ts = -(2**63)
    pack_head = _PACKED_HEAD.pack
    for rec in records:
        ts = now_ms if rec.timestamp is None else rec.timestamp
        if first_ts is None:
            first_ts = ts
        if ts > max_ts:
            max_ts = ts
        key, value, headers = rec.key, rec.value, rec.headers
        parts.append(
            pack_head(
                ts,
                -1 if key is None else len(key),
                -1 if value is None else len(value),
                len(headers),
            )
        )
        if key:
            parts.append(key)
        if value:
            parts.append(value)
        for name, hvalue in headers:
            raw_name = name.encode()
            parts.append(_PACKED_NAME.pack(len(raw_name)))
            parts.append(raw_name)
            parts.append(_PACKED_VALUE.pack(len(hvalue)))
            parts.append(hvalue)
    assert first_ts is not None
    return PackedRecords(b"".join(parts), len(records), first_ts, max_ts)


def unpack_records(packed: PackedRecords) -> list[NewRecord]:
    """The records of `packed`, timestamps included; ValueError if the bytes do not
    hold exactly `record_count` well-formed records."""
    data, out, cursor = packed.data, [], 0
    try:
        for _ in range(packed.record_count):
            ts, klen, vlen, hcount = _PACKED_HEAD.unpack_from(data, cursor)
            cursor += _PACKED_HEAD.size
            key = value = None
            if klen >= 0:
                key, cursor = data[cursor : cursor + klen], cursor + klen
            if vlen >= 0:
                value, cursor = data[cursor : cursor + vlen], cursor + vlen
            headers: list[Header] = []
            for _h in range(hcount):
                (nlen,) = _PACKED_NAME.unpack_from(data, cursor)
                name = data[cursor + 2 : cursor + 2 + nlen].decode()
                cursor += 2 + nlen
                (hlen,) = _PACKED_VALUE.unpack_from(data, cursor)
                headers.append((name, data[cursor + 4 : cursor + 4 + hlen]))
                cursor += 4 + hlen
            out.append(NewRecord(value, key, tuple(headers), ts))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed packed records: {exc}") from exc
    if cursor != len(data):  # also catches a length that ran past the end
        raise ValueError("malformed packed records: lengths do not match the bytes")
    return out


class Record(NamedTuple):
    """A record as read back: byte-identical to what was appended, with its offset."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


class Durability(StrEnum):
    """When an append is acknowledged.

    FSYNC: after fdatasync (group commit shares one sync between appenders).
    INTERVAL: after the write; data is synced every `flush_interval_ms`.
    NONE: after the write; the OS decides when it reaches the disk.
    """

    FSYNC = "fsync"
    INTERVAL = "interval"
    NONE = "none"


class ValueFormat(StrEnum):
    JSON = "json"
    STRING = "string"
    BINARY = "binary"


class CleanupPolicy(StrEnum):
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """Per-topic settings, persisted with the topic by every backend.

    `retention_ms` / `retention_bytes` None keep data forever. `value_format` and
    `value_schema` are kept here so the topic's whole definition lives in one
    catalog; storage itself stores values as opaque bytes.
    """

    retention_ms: int | None = 7 * 24 * 3600 * 1000
    retention_bytes: int | None = None
    max_record_bytes: int = 1024 * 1024
    segment_bytes: int = 64 * 1024 * 1024
    segment_ms: int = 24 * 3600 * 1000
    durability: Durability = Durability.FSYNC
    flush_interval_ms: int = 1000
    value_format: ValueFormat = ValueFormat.JSON
    value_schema: str | None = None
    cleanup_policy: CleanupPolicy = CleanupPolicy.DELETE

    def to_dict(self) -> dict[str, object]:
        return {
            "retention_ms": self.retention_ms,
            "retention_bytes": self.retention_bytes,
            "max_record_bytes": self.max_record_bytes,
            "segment_bytes": self.segment_bytes,
            "segment_ms": self.segment_ms,
            "durability": self.durability.value,
            "flush_interval_ms": self.flush_interval_ms,
            "value_format": self.value_format.value,
            "value_schema": self.value_schema,
            "cleanup_policy": self.cleanup_policy.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TopicConfig:
        """Inverse of `to_dict`; unknown keys are ignored so old catalogs still load."""
        base = cls()
        known = {f for f in base.to_dict()}
        values = {k: v for k, v in data.items() if k in known}
        if "durability" in values:
            values["durability"] = Durability(str(values["durability"]))
        if "value_format" in values:
            values["value_format"] = ValueFormat(str(values["value_format"]))
        if "cleanup_policy" in values:
            values["cleanup_policy"] = CleanupPolicy(str(values["cleanup_policy"]))
        return replace(base, **values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    config: TopicConfig
    created_ms: int
    # The topic's immutable identity, never reused: a topic created again under a
    # deleted one's name gets another. Empty only for a TopicInfo not yet stored.
    topic_id: str = ""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """`start_offset` is the first readable offset, `end_offset` the next to be written."""

    partition: int
    start_offset: int
    end_offset: int
    bytes: int


@dataclass(frozen=True, slots=True)
class TopicDescription:
    topic: TopicInfo
    partitions: tuple[PartitionInfo, ...]


# The identity an idempotent append carries into its batch (`LogStore.append_batches`).
IDENTITY_BYTES = 16


class AppendResult(NamedTuple):
    """Offsets `base_offset .. base_offset + count - 1` now hold the batch, in order.

    `duplicate`: the partition already held a batch with the append's identity, so
    nothing was appended and these are that batch's offsets.

    A NamedTuple, as the records are: one is made for every partition an append
    writes, and a frozen dataclass costs several times as much to build (0.57 µs
    against 0.23). The `count` field hides tuple's `count` method, which nothing
    calls on a result."""

    partition: int
    base_offset: int
    count: int  # type: ignore[assignment]  # the field, not tuple.count (see above)
    timestamp: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Records from the requested offset; `next_offset` is where the next read starts."""

    records: tuple[Record, ...]
    next_offset: int
    start_offset: int
    end_offset: int
    bytes: int = field(default=0)
