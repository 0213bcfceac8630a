"""What a partition remembers of the idempotent appends it holds: identity → offsets.

Kafka's brokers keep, per partition, the last sequence numbers of every
producer id (`ProducerStateManager`), rebuilt from the log after a crash, so a
retried batch is recognised and answered with its original offsets instead of
being appended again. This is the same idea for requests: an idempotent
append carries a 16-byte identity into its batch (`codec`), and the partition
keeps the identities of its newest idempotent batches in a `ProducerState`.

The memory is bounded by a `Window`: at most `max_batches` identities (the
newest, in log order) and none appended more than `max_age_ms` ago. An
identity outside the window is forgotten and its retry appends again; that is
the promise's limit, documented with the settings.

A snapshot (`encode_snapshot`) holds the state as of an offset: the writer
writes one at each segment roll and at a clean shutdown, so recovery loads
the newest one and reads only the batches after it (see `recover`). Pure: no
I/O here beyond what `recover` is handed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from storage.embedded.checksum import crc32


@dataclass(frozen=True, slots=True)
class Window:
    """How much a partition remembers: the newest `max_batches` identities, none
    older than `max_age_ms` (by the writer's clock when they were appended)."""

    max_batches: int = 10_000
    max_age_ms: int = 24 * 3600 * 1000

    def __post_init__(self) -> None:
        if self.max_batches < 0:
            raise ValueError("the idempotency window's batch count must not be negative")
        if self.max_age_ms < 0:
            raise ValueError("the idempotency window's age must not be negative")


class Held(NamedTuple):
    """Where a remembered batch lies: what its append answered, and when it was made."""

    base_offset: int
    records: int
    timestamp: int  # the batch's first timestamp, as AppendResult reports it
    appended_ms: int


class ProducerState:
    """The identities one partition holds within its window, in log order.

    Owned by the partition's writer thread: looked up and added to only there,
    so two appends of one identity are decided one after the other.
    """

    __slots__ = ("_held", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self._held: dict[bytes, Held] = {}  # insertion order is log order

    def __len__(self) -> int:
        return len(self._held)

    def get(self, identity: bytes, now_ms: int) -> Held | None:
        """The batch with `identity`, unless it fell out of the window."""
        held = self._held.get(identity)
        if held is None or held.appended_ms < now_ms - self.window.max_age_ms:
            return None
        return held

    def add(self, identity: bytes, held: Held, now_ms: int) -> None:
        """Remember a batch just written (or read back in log order by recovery)."""
        if self.window.max_batches == 0:
            return
        self._held.pop(identity, None)  # appended again after it was forgotten: the newest wins
        self._held[identity] = held
        while len(self._held) > self.window.max_batches:
            del self._held[next(iter(self._held))]
        self.expire(now_ms)

    def expire(self, now_ms: int) -> None:
        """Forget the oldest identities while they are older than the window."""
        oldest = now_ms - self.window.max_age_ms
        while self._held:
            first = next(iter(self._held))
            if self._held[first].appended_ms >= oldest:
                return
            del self._held[first]

    def forget_from(self, offset: int) -> None:
        """Forget batches at or past `offset` (written, then never acknowledged)."""
        for identity in [i for i, h in self._held.items() if h.base_offset >= offset]:
            del self._held[identity]

    def items(self) -> list[tuple[bytes, Held]]:
        return list(self._held.items())


# -- snapshots -------------------------------------------------------------------------

SNAPSHOT_SUFFIX = ".producers"
_MAGIC = b"TGPS"
_SNAP_HEAD = struct.Struct(">4sBQI")  # magic, version, offset it is the state at, entries
_SNAP_ENTRY = struct.Struct(">16sQIqq")  # identity, base offset, count, timestamp, appended_ms
_SNAP_CRC = struct.Struct(">I")


def snapshot_name(offset: int) -> str:
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


def parse_snapshot_name(filename: str) -> int | None:
    """The offset of a snapshot file name, or None for any other file."""
    stem = filename[: -len(SNAPSHOT_SUFFIX)]
    if not filename.endswith(SNAPSHOT_SUFFIX) or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def encode_snapshot(state: ProducerState, offset: int) -> bytes:
    """The state as of `offset` (every batch before it is accounted for), checksummed."""
    items = state.items()
    parts = [_SNAP_HEAD.pack(_MAGIC, 1, offset, len(items))]
    for identity, held in items:
        parts.append(_SNAP_ENTRY.pack(identity, *held))
    body = b"".join(parts)
    return body + _SNAP_CRC.pack(crc32(body))


def decode_snapshot(data: bytes, window: Window) -> tuple[int, ProducerState] | None:
    """(offset, state) of a snapshot, or None when it is not a whole, valid one."""
    if len(data) < _SNAP_HEAD.size + _SNAP_CRC.size:
        return None
    body, (crc,) = data[: -_SNAP_CRC.size], _SNAP_CRC.unpack_from(data, len(data) - 4)
    if crc32(body) != crc:
        return None
    magic, version, offset, count = _SNAP_HEAD.unpack_from(body, 0)
    if magic != _MAGIC or version != 1 or len(body) != _SNAP_HEAD.size + count * _SNAP_ENTRY.size:
        return None
    state = ProducerState(window)
    for i in range(count):
        identity, base, n, timestamp, appended_ms = _SNAP_ENTRY.unpack_from(
            body, _SNAP_HEAD.size + i * _SNAP_ENTRY.size
        )
        if base + n > offset:
            return None  # claims a batch it cannot have seen
        state._held[bytes(identity)] = Held(base, n, timestamp, appended_ms)
    return offset, state


def rebuilt(
    window: Window,
    batches: Iterable[tuple[bytes, Held]],
    now_ms: int,
    start: ProducerState | None = None,
) -> ProducerState:
    """`start` (or nothing) followed by `batches` in log order: the state the live
    partition had after appending them, as of `now_ms`."""
    state = start if start is not None else ProducerState(window)
    state.window = window  # a snapshot taken under another window is bounded by this one
    for identity, held in batches:
        state.add(identity, held, now_ms)
    if len(state) > window.max_batches:
        for identity in [i for i, _ in state.items()[: len(state) - window.max_batches]]:
            del state._held[identity]
    state.expire(now_ms)
    return state
