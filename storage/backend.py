"""The narrow interface every storage engine implements in full.

`LogStore` is the log (topics, partitions, records); `StateStore` is a small
durable key-value space for what the gateway must remember beside the log
(idempotency replies, later consumer-group offsets). The embedded engine keeps
both on local disk; the Redis engine keeps both in Redis, so any number of
stateless gateways can share them. One behaviour suite (tests/storage/contract)
runs against every engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from storage.errors import StorageError
from storage.records import (
    AppendResult,
    FetchResult,
    NewRecord,
    PackedRecords,
    PartitionInfo,
    TopicConfig,
    TopicDescription,
    TopicInfo,
)


class LogStore(Protocol):
    """A Kafka-style log: topics of N partitions, each an ordered, gapless sequence."""

    async def create_topic(self, name: str, partitions: int, config: TopicConfig) -> TopicInfo:
        """Create a topic with a new `topic_id` (never one a deleted topic had);
        raises TopicExists, InvalidTopicName, InvalidConfig or DiskFull. A create
        that fails leaves nothing behind: the name stays free."""
        ...

    async def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data; raises TopicNotFound. Once this returns
        the data is never served again, also after a crash."""
        ...

    async def update_topic_config(self, name: str, config: TopicConfig) -> TopicInfo:
        """Replace a topic's config; applies to later appends and retention runs."""
        ...

    async def add_partitions(self, name: str, partitions: int) -> TopicInfo:
        """Grow the topic to `partitions` (the same count changes nothing), durably;
        new partitions start empty at offset 0. Raises PartitionsCannotShrink for a
        smaller count, DiskFull when there is no space. Keyed records map to the new
        count from then on (as in Kafka); the records already stored stay put."""
        ...

    async def get_topic(self, name: str) -> TopicInfo:
        """The topic's definition; raises TopicNotFound. Cheap: no disk scan."""
        ...

    async def list_topics(self, prefix: str = "") -> list[TopicInfo]:
        """Topics whose name starts with `prefix`, sorted by name."""
        ...

    async def describe_topic(self, name: str) -> TopicDescription:
        """The topic with each partition's start/end offsets and stored bytes."""
        ...

    async def append(
        self,
        name: str,
        partition: int,
        records: Sequence[NewRecord],
        *,
        identity: bytes | None = None,
    ) -> AppendResult:
        """Append a batch atomically; returns once it is as durable as the topic asks.

        All records get consecutive offsets, or none is appended. Raises
        TopicNotFound, PartitionNotFound, RecordTooLarge, PartitionFenced,
        DiskFull, BackendUnavailable. A caller cancelled while it waits abandons
        the result, not the append: a batch accepted by the first step of the
        call is appended whole or fails whole on its own.

        `identity` (`IDENTITY_BYTES` opaque bytes, an idempotent request's) is
        stored with the batch. When the partition already holds a batch with
        that identity within its idempotency window, also after a restart or
        a crash, nothing is appended and the result is that batch's, marked
        `duplicate`; two appends of one identity never both append.
        """
        ...

    async def append_packed(
        self, name: str, partition: int, packed: PackedRecords, *, identity: bytes | None = None
    ) -> AppendResult:
        """`append` for records already packed (timestamps resolved by the caller):
        the hot producer's path, which builds no per-record objects. Same guarantees
        and errors; a backend that stores records another way unpacks them
        (`storage.records.unpack_records`).
        """
        ...

    async def append_batches(
        self,
        name: str,
        batches: Sequence[tuple[int, PackedRecords]],
        *,
        identity: bytes | None = None,
    ) -> list[AppendResult | StorageError]:
        """`append_packed` to several partitions of one topic at once, one batch per
        partition: handed to the writers together and awaited once, so a request
        that spreads over many partitions costs about what a one-partition one does.

        Every batch is checked first; an error found then (TopicNotFound,
        PartitionNotFound, RecordTooLarge, InvalidConfig for a partition named
        twice) is raised and nothing is appended. After that each batch is
        atomic on its own and the list holds, in order, each one's AppendResult
        or the StorageError that failed it (a disk can fill between two). As for
        `append_packed`, a cancelled caller abandons the results, not the appends.

        `identity` is carried by every batch of the call (each is checked in its
        own partition, as for `append`): retried after a partial failure, the
        call appends only the batches whose partitions lack it, and every
        result is what the first call's was, or would have been.
        """
        ...

    async def read(
        self,
        name: str,
        partition: int,
        offset: int,
        *,
        max_records: int = 500,
        max_bytes: int = 1024 * 1024,
    ) -> FetchResult:
        """Records from `offset` on, in order, up to the limits (at least one record
        when any is available, even past `max_bytes`, so a reader always progresses).

        Only acknowledged records are visible. `offset == end_offset` returns no
        records; outside `start_offset..end_offset` raises OffsetOutOfRange; a
        stored range that fails its CRC raises CorruptData.
        """
        ...

    async def offsets(self, name: str, partition: int) -> PartitionInfo:
        """The partition's current start and end offsets and size."""
        ...

    async def offset_for_time(self, name: str, partition: int, timestamp_ms: int) -> int:
        """The first offset whose timestamp is >= `timestamp_ms`, or the end offset."""
        ...

    async def wait_for(
        self,
        name: str,
        positions: Mapping[int, int],
        timeout_s: float,
        *,
        partitions: int | None = None,
    ) -> bool:
        """Wait until any partition `p` in `positions` has an end offset past
        `positions[p]`; True if one did, False at the timeout (`math.inf`: none,
        the caller waits until an append, a deleted topic or the closing store
        wakes it). `partitions`: the partition count the caller knows the topic
        to have; the wait then also ends (True) once the topic has more, so a
        stream of every partition learns of new ones without looking now and then.

        A wake-up from the append path (or another gateway's append, for shared
        backends), never a polling loop. Cancelling the caller frees the waiter.
        """
        ...

    async def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete whole closed segments past their topic's retention; returns how many."""
        ...

    async def close(self) -> None:
        """Finish in-flight appends, flush, and release files or connections."""
        ...


class StateStore(Protocol):
    """A small durable key-value space with expiry, beside the log."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        """Store durably (overwriting); forget after `ttl_s` seconds when given."""
        ...

    async def put_if_absent(
        self, key: str, value: bytes, *, ttl_s: float | None = None
    ) -> bytes | None:
        """Store unless present; returns the existing value, or None if stored."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...
