"""The embedded log engine: topics of partitions in segment files on local disk.

`EmbeddedLogStore` implements `storage.backend.LogStore`. Appends are
validated and encoded on the caller's event loop, then handed to the writer
thread of the partition's shard, which group-commits them; reads run on the
event loop (each is bounded by `max_bytes`). One engine owns a data directory
(lock.py). A clean-shutdown marker lets a clean restart skip scanning the
active segments; after a crash they are validated batch by batch (see
recovery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import struct
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from storage.embedded.catalog import Catalog, new_topic_id
from storage.embedded.codec import frame
from storage.embedded.crashpoints import CrashPoints
from storage.embedded.decoded import DecodedBatches
from storage.embedded.fileio import FileIO
from storage.embedded.lock import DataDirLock
from storage.embedded.openfiles import OpenFiles
from storage.embedded.options import EngineOptions
from storage.embedded.partition import Partition
from storage.embedded.recovery import recover_partition, recover_producers
from storage.embedded.shard import AppendRequest, Joined, ResultSink, Shard, SpreadAppend
from storage.embedded.spread import MAX_COUNT, MAX_TS, MIN_TS, Spread, by_shard, spread
from storage.errors import (
    InvalidConfig,
    InvalidTopicName,
    PartitionNotFound,
    PartitionsCannotShrink,
    RecordTooLarge,
    StorageError,
    StoreClosed,
    TopicExists,
    TopicNotFound,
)
from storage.records import (
    IDENTITY_BYTES,
    AppendResult,
    FetchResult,
    NewRecord,
    PackedRecords,
    PartitionInfo,
    TopicConfig,
    TopicDescription,
    TopicInfo,
    is_valid_topic_name,
    pack_records,
    unpack_records,
)

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_MARKER = "clean-shutdown"
MAX_PARTITIONS = 10_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_config(config: TopicConfig) -> None:
    positive = {
        "segment_bytes": config.segment_bytes,
        "segment_ms": config.segment_ms,
        "max_record_bytes": config.max_record_bytes,
        "flush_interval_ms": config.flush_interval_ms,
    }
    for name, value in positive.items():
        if value < 1:
            raise InvalidConfig(f"{name} must be at least 1, not {value}")
    for name, limit in (
        ("retention_ms", config.retention_ms),
        ("retention_bytes", config.retention_bytes),
    ):
        if limit is not None and limit < 0:
            raise InvalidConfig(f"{name} must not be negative")


def _check_identity(identity: bytes | None) -> None:
    if identity is not None and len(identity) != IDENTITY_BYTES:
        raise InvalidConfig(f"an append identity is {IDENTITY_BYTES} bytes, not {len(identity)}")


def _framed(packed: PackedRecords, limit: int, identity: bytes | None, appended_ms: int) -> bytes:
    """`packed` checked against the topic's record limit and framed as one batch."""
    if packed.record_count < 1:
        raise InvalidConfig("an append needs at least one record")
    if len(packed.data) > limit:  # the bytes bound each record: measure only when they must
        try:
            records = unpack_records(packed)
        except ValueError as exc:
            raise InvalidConfig(f"records cannot be stored: {exc}") from exc
        for i, record in enumerate(records):
            size = record.size()
            if size > limit:
                raise RecordTooLarge(size, limit, i)
    try:
        return frame(*packed, identity, appended_ms)
    except (ValueError, struct.error) as exc:
        raise InvalidConfig(f"records cannot be stored: {exc}") from exc


@dataclass
class RecoveryStats:
    """What the last open found; tests and operators read it."""

    clean_shutdown: bool = False
    scanned_segments: int = 0
    truncated_bytes: int = 0
    quarantined_ranges: int = 0


@dataclass
class _Topic:
    info: TopicInfo
    partitions: list[Partition]
    shards: list[Shard]  # each partition's writer, by number (looked up once, not per append)
    # Waits that also end when the topic gains partitions (`wait_for(partitions=...)`).
    growth_waiters: dict[asyncio.Future[bool], None] = field(default_factory=dict)


class EmbeddedLogStore:
    """A LogStore on local files: sharded writers, group commit, crash recovery."""

    def __init__(
        self,
        data_dir: str,
        *,
        options: EngineOptions,
        fio: FileIO,
        loop: asyncio.AbstractEventLoop,
        catalog: Catalog,
        crash: CrashPoints,
    ) -> None:
        self.data_dir = data_dir
        self.options = options
        self.recovery = RecoveryStats()
        self._fio = fio
        self.files = OpenFiles(fio, options.max_open_files)
        self._loop = loop
        self._catalog = catalog
        self._crash = crash
        self._topics: dict[str, _Topic] = {}
        self._decoded = (
            DecodedBatches(options.decoded_cache_bytes) if options.decoded_cache_bytes else None
        )
        self._shards = [
            Shard(
                i,
                loop=loop,
                max_queued=options.max_queued_appends,
                crash=crash,
                fio=fio,
                observer=options.observer,
                files=self.files,
                sync_group=options.max_open_files // (2 * options.shards),
            )
            for i in range(options.shards)
        ]
        self._admin = asyncio.Lock()
        self._closed = False
        self._retention_task: asyncio.Task[None] | None = None
        self._lock: DataDirLock | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        data_dir: str,
        *,
        options: EngineOptions | None = None,
        fileio: FileIO | None = None,
    ) -> EmbeddedLogStore:
        """Recover every partition under `data_dir`, then start the writers and retention."""
        options = options or EngineOptions()
        fio = fileio or FileIO()
        crash = CrashPoints(options.crash_point)
        store = cls(
            data_dir,
            options=options,
            fio=fio,
            loop=asyncio.get_running_loop(),
            catalog=Catalog(fio, data_dir, crash),
            crash=crash,
        )
        try:
            await asyncio.to_thread(store._recover)
        except BaseException:
            store._release_lock()
            raise
        for shard in store._shards:
            shard.start()
        store._retention_task = asyncio.create_task(store._retention_loop())
        return store

    def _recover(self) -> None:
        fio = self._fio
        if not fio.exists(self.data_dir):
            fio.mkdir(self.data_dir)
            fio.fsync_dir(os.path.dirname(os.path.abspath(self.data_dir)))
        # Before anything else is read or written: another engine may own the directory.
        self._lock = DataDirLock.acquire(self.data_dir)
        marker = os.path.join(self.data_dir, CLEAN_SHUTDOWN_MARKER)
        clean = fio.exists(marker)
        self.recovery.clean_shutdown = clean
        self._catalog.prepare()
        for info in self._catalog.load():
            partitions = [
                self._open_partition(info, p, clean=clean) for p in range(info.partitions)
            ]
            shards = [self._shard_of(partition) for partition in partitions]
            for shard, partition in zip(shards, partitions, strict=True):
                shard.attach(partition)  # the writers are not running yet
            self._topics[info.name] = _Topic(info, partitions, shards)
        if clean:
            # From here on a crash must be followed by a full scan again.
            fio.unlink(marker)
            fio.fsync_dir(self.data_dir)

    def _open_partition(self, info: TopicInfo, number: int, *, clean: bool) -> Partition:
        directory = self._catalog.partition_dir(info.topic_id, number)
        recovered = recover_partition(
            self.files,
            directory,
            clean=clean,
            index_interval_bytes=self.options.index_interval_bytes,
            now_ms=_now_ms(),
        )
        producers, unsnapshotted = recover_producers(
            self._fio,
            directory,
            recovered.segments,
            self.options.idempotency_window,
            clean=clean,
            now_ms=_now_ms(),
        )
        self.recovery.scanned_segments += recovered.scanned_segments
        self.recovery.truncated_bytes += recovered.truncated_bytes
        self.recovery.quarantined_ranges += len(recovered.quarantined)
        if recovered.truncated_bytes:
            log.warning(
                "partition %d of %r: cut %d bytes of torn tail",
                number,
                info.name,
                recovered.truncated_bytes,
            )
        for start, end in recovered.quarantined:
            log.error(
                "partition %d of %r: offsets %d..%d are corrupt", number, info.name, start, end - 1
            )
        partition = Partition(
            info.name,
            number,
            directory,
            fio=self._fio,
            files=self.files,
            config=info.config,
            recovered=recovered,
            index_interval_bytes=self.options.index_interval_bytes,
            crash=self._crash,
            decoded=self._decoded,
            producers=producers,
        )
        partition.producers_dirty = unsnapshotted
        return partition

    def _shard_of(self, partition: Partition) -> Shard:
        # crc32 rather than hash(): stable across processes, so a partition keeps its shard.
        key = f"{partition.topic}\x00{partition.number}".encode()
        return self._shards[zlib.crc32(key) % len(self._shards)]

    async def close(self) -> None:
        """Finish queued appends, sync, write indexes, close files, mark a clean shutdown."""
        if self._closed:
            return
        self._closed = True
        await self._stop_background()
        for shard in self._shards:
            shard.stop(sync=True)
        try:
            await asyncio.to_thread(self._join_and_flush)
        finally:
            self._release_lock()
        self._wake_all(False)

    async def _abandon(self) -> None:
        """Test hook: stop as a crash would (no final sync, no indexes, no clean marker)."""
        if self._closed:
            return
        self._closed = True
        await self._stop_background()
        for shard in self._shards:
            shard.stop(sync=False)
        await asyncio.to_thread(self._join_shards)
        for topic in self._topics.values():
            for partition in topic.partitions:
                partition.close_files()
        self._release_lock()  # as the kernel does when a process dies
        self._wake_all(False)

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _stop_background(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task

    def _join_shards(self) -> None:
        for shard in self._shards:
            shard.join()

    def _join_and_flush(self) -> None:
        self._join_shards()
        clean = True
        for topic in self._topics.values():
            for partition in topic.partitions:
                if partition.fenced is not None:
                    clean = False
                else:
                    try:
                        self._crash.hit("index-flush")
                        partition.active.flush_indexes()
                        if partition.producers_dirty:
                            partition.write_producer_snapshot()
                    except OSError as exc:
                        log.error(
                            "could not write indexes or producer state of %r/%d: %s",
                            topic.info.name,
                            partition.number,
                            exc,
                        )
                        clean = False
                partition.close_files()
        if clean:
            self._fio.write_atomic(os.path.join(self.data_dir, CLEAN_SHUTDOWN_MARKER), b"clean\n")

    def _wake_all(self, result: bool) -> None:
        for topic in self._topics.values():
            for partition in topic.partitions:
                partition.wake_all(result)

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.retention_interval_s)
            try:
                await self.enforce_retention()
            except Exception:
                log.exception("retention pass failed")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the log store is closed")

    # -- topics -------------------------------------------------------------------------

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotFound(name)
        return topic

    @staticmethod
    def _partition(topic: _Topic, number: int) -> Partition:
        if not 0 <= number < len(topic.partitions):
            raise PartitionNotFound(topic.info.name, number, len(topic.partitions))
        return topic.partitions[number]

    async def create_topic(self, name: str, partitions: int, config: TopicConfig) -> TopicInfo:
        self._check_open()
        if not is_valid_topic_name(name):
            raise InvalidTopicName(name)
        self._check_count(partitions)
        _check_config(config)
        async with self._admin:
            if name in self._topics:
                raise TopicExists(name)
            info = TopicInfo(name, partitions, config, _now_ms(), new_topic_id())
            created = await asyncio.to_thread(
                self._build, info, lambda open_range: self._catalog.create(info, open_range)
            )
            await self._attach(created)
            self._topics[name] = _Topic(info, created, [self._shard_of(p) for p in created])
            return info

    @staticmethod
    def _check_count(partitions: int) -> None:
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidConfig(
                f"partitions must be between 1 and {MAX_PARTITIONS}, not {partitions}"
            )

    def _build(
        self,
        info: TopicInfo,
        change: Callable[[Callable[[int, int], list[Partition]]], list[Partition]],
    ) -> list[Partition]:
        """Run a catalog change that opens partitions of `info`; if it fails, the
        partitions it opened are closed again (the catalog removed their files)."""
        opened: list[Partition] = []

        def open_range(first: int, end: int) -> list[Partition]:
            for number in range(first, end):
                opened.append(self._open_partition(info, number, clean=False))
            return opened

        try:
            return change(open_range)
        except BaseException:
            for partition in opened:
                partition.close_files()
            raise

    async def _attach(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            shard = self._shard_of(partition)
            await shard.call(functools.partial(shard.attach, partition))

    async def delete_topic(self, name: str) -> None:
        self._check_open()
        async with self._admin:
            topic = self._topic(name)
            # The durable rename is the deletion point: if it fails, nothing changed;
            # once it returned, the topic is gone, also after a crash.
            await asyncio.to_thread(self._catalog.delete, topic.info.topic_id)
            del self._topics[name]
            for partition in topic.partitions:
                shard = self._shard_of(partition)
                await shard.call(functools.partial(shard.detach, partition))
                partition.close_files()
                partition.wake_all(True)
            for fut in topic.growth_waiters:
                if not fut.done():
                    fut.set_result(True)
            await asyncio.to_thread(self._catalog.remove_deleted, topic.info.topic_id)

    async def update_topic_config(self, name: str, config: TopicConfig) -> TopicInfo:
        self._check_open()
        _check_config(config)
        async with self._admin:
            topic = self._topic(name)
            info = replace(topic.info, config=config)
            await asyncio.to_thread(self._catalog.update, info)
            topic.info = info
            for partition in topic.partitions:
                partition.config = config
            return info

    async def add_partitions(self, name: str, partitions: int) -> TopicInfo:
        self._check_open()
        self._check_count(partitions)
        async with self._admin:
            topic = self._topic(name)
            current = topic.info.partitions
            if partitions < current:
                raise PartitionsCannotShrink(name, current, partitions)
            if partitions == current:
                return topic.info
            info = replace(topic.info, partitions=partitions)
            added = await asyncio.to_thread(
                self._build, info, lambda open_range: self._catalog.grow(info, current, open_range)
            )
            await self._attach(added)
            topic.partitions = [*topic.partitions, *added]
            topic.shards = [*topic.shards, *(self._shard_of(p) for p in added)]
            topic.info = info
            waiters, topic.growth_waiters = topic.growth_waiters, {}
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)
            return info

    async def get_topic(self, name: str) -> TopicInfo:
        self._check_open()
        return self._topic(name).info

    async def list_topics(self, prefix: str = "") -> list[TopicInfo]:
        self._check_open()
        return [t.info for n, t in sorted(self._topics.items()) if n.startswith(prefix)]

    async def describe_topic(self, name: str) -> TopicDescription:
        self._check_open()
        topic = self._topic(name)
        return TopicDescription(topic.info, tuple(p.info() for p in topic.partitions))

    # -- records ------------------------------------------------------------------------

    async def append(
        self,
        name: str,
        partition: int,
        records: Sequence[NewRecord],
        *,
        identity: bytes | None = None,
    ) -> AppendResult:
        self._check_open()
        self._partition(self._topic(name), partition)
        if not records:
            raise InvalidConfig("an append needs at least one record")
        try:
            packed = pack_records(records, now_ms=_now_ms())
        except (ValueError, UnicodeError, OverflowError, struct.error) as exc:
            raise InvalidConfig(f"records cannot be stored: {exc}") from exc
        return await self.append_packed(name, partition, packed, identity=identity)

    async def append_packed(
        self, name: str, partition: int, packed: PackedRecords, *, identity: bytes | None = None
    ) -> AppendResult:
        self._check_open()
        topic = self._topic(name)
        target = self._partition(topic, partition)
        _check_identity(identity)
        future: asyncio.Future[AppendResult] = self._loop.create_future()
        request = self._request(topic, target, packed, future, identity)
        observer = self.options.observer
        started = time.perf_counter()
        try:
            topic.shards[partition].submit(request)
            # If the caller is cancelled, the writer still completes or fails the
            # append on its own; the result is then dropped.
            result = await future
        except StorageError as exc:
            observer.failed(exc)
            raise
        observer.appended(time.perf_counter() - started)
        return result

    async def append_batches(
        self,
        name: str,
        batches: Sequence[tuple[int, PackedRecords]],
        *,
        identity: bytes | None = None,
    ) -> list[AppendResult | StorageError]:
        self._check_open()
        topic = self._topic(name)
        _check_identity(identity)
        joined = Joined(self._loop, len(batches))
        # Every batch is checked before any is handed over: a refusal here appends
        # nothing at all. This loop runs once per partition a request writes (a
        # keyed batch spans most of a topic's), so it does each thing once.
        partitions, shards = topic.partitions, topic.shards
        count = len(partitions)
        limit = topic.info.config.max_record_bytes
        if identity is None:
            # One item per shard holds the request's batches for it, unframed: the
            # writer frames each partition's records of a pass together (shard.py).
            # `spread` checks and groups them in one call (in C when built); when it
            # declines, `_checked_spread` finds what is wrong.
            spreads = spread(batches, partitions, shards, limit)
            if spreads is None:
                spreads = self._checked_spread(topic, batches)
            requests: list[tuple[Shard, AppendRequest | SpreadAppend]] = [
                (shard, SpreadAppend(joined, parts, packs, slots))
                for shard, parts, packs, slots in spreads
            ]
        else:
            # With an identity each batch is a request of its own (the writer
            # deduplicates those), framed here with the identity in it.
            appended_ms = _now_ms()
            requests = []
            taken: set[int] = set()
            for i, (p, packed) in enumerate(batches):
                if p in taken:
                    raise InvalidConfig("append_batches takes one batch per partition")
                taken.add(p)
                target = partitions[p] if 0 <= p < count else self._partition(topic, p)
                request = AppendRequest(
                    target,
                    _framed(packed, limit, identity, appended_ms),
                    packed.record_count,
                    packed.first_timestamp,
                    packed.max_timestamp,
                    joined.slot(i),
                    identity=identity,
                    appended_ms=appended_ms,
                )
                requests.append((shards[p], request))
        observer = self.options.observer
        # Room on every shard first, then the hand-over: a shard whose queue is full
        # refuses the whole request, never its part after another shard took theirs.
        wanted: dict[Shard, int] = {}
        for shard, _ in requests:
            wanted[shard] = wanted.get(shard, 0) + 1
        try:
            for shard, items in wanted.items():
                shard.check_room(items)
        except StorageError as exc:
            observer.failed(exc)
            raise
        started = time.perf_counter()
        for shard, item in requests:
            shard.submit(item)
        results = await joined.future
        elapsed = time.perf_counter() - started
        # One append, one observation, however many partitions it spans.
        if joined.failed:
            for failure in [r for r in results if isinstance(r, StorageError)]:
                observer.failed(failure)
        if joined.failed < len(results):
            observer.appended(elapsed)
        return results

    def _checked_spread(
        self, topic: _Topic, batches: Sequence[tuple[int, PackedRecords]]
    ) -> Spread[Shard, Partition]:
        """`spread` for batches it declined: each is checked, raising what is wrong (the
        checks run over the whole request at once: min/max of each field); if none is,
        a batch had more bytes of records than a record may have, and measured
        record by record it fits."""
        numbers = [p for p, _ in batches]
        packs = [packed for _, packed in batches]
        limit = topic.info.config.max_record_bytes
        if len(set(numbers)) != len(numbers):
            raise InvalidConfig("append_batches takes one batch per partition")
        if numbers and (min(numbers) < 0 or max(numbers) >= len(topic.partitions)):
            for p in numbers:
                self._partition(topic, p)  # raises for the first out of range
        if packs:
            data, records, first, last = zip(*packs, strict=True)
            if not (
                min(records) > 0
                and max(records) <= MAX_COUNT
                and max(map(len, data)) <= limit
                and min(first) >= MIN_TS
                and max(first) <= MAX_TS
                and min(last) >= MIN_TS
                and max(last) <= MAX_TS
            ):
                for packed in packs:
                    _framed(packed, limit, None, 0)  # raises what is wrong, if anything
        spreads = by_shard(batches, topic.partitions, topic.shards, sys.maxsize)
        assert spreads is not None, "by_shard refused batches that passed every check"
        return spreads

    def _request(
        self,
        topic: _Topic,
        target: Partition,
        packed: PackedRecords,
        sink: ResultSink,
        identity: bytes | None = None,
    ) -> AppendRequest:
        """A checked, framed batch for `target`'s writer, reporting to `sink`."""
        appended_ms = _now_ms() if identity is not None else 0
        batch = _framed(packed, topic.info.config.max_record_bytes, identity, appended_ms)
        return AppendRequest(
            target,
            batch,
            packed.record_count,
            packed.first_timestamp,
            packed.max_timestamp,
            sink,
            identity=identity,
            appended_ms=appended_ms,
        )

    async def read(
        self,
        name: str,
        partition: int,
        offset: int,
        *,
        max_records: int = 500,
        max_bytes: int = 1024 * 1024,
    ) -> FetchResult:
        self._check_open()
        if max_records < 1 or max_bytes < 1:
            raise InvalidConfig("max_records and max_bytes must be at least 1")
        target = self._partition(self._topic(name), partition)
        return target.read(offset, max_records, max_bytes)

    async def offsets(self, name: str, partition: int) -> PartitionInfo:
        self._check_open()
        return self._partition(self._topic(name), partition).info()

    async def offset_for_time(self, name: str, partition: int, timestamp_ms: int) -> int:
        self._check_open()
        return self._partition(self._topic(name), partition).offset_for_time(timestamp_ms)

    async def wait_for(
        self,
        name: str,
        positions: Mapping[int, int],
        timeout_s: float,
        *,
        partitions: int | None = None,
    ) -> bool:
        self._check_open()
        topic = self._topic(name)
        watched = [(self._partition(topic, p), pos) for p, pos in positions.items()]
        if partitions is None:
            return await self._park(watched, timeout_s)
        if len(topic.partitions) > partitions:
            return True
        return await self._park(watched, timeout_s, topic.growth_waiters)

    async def wait_for_any(
        self, positions: Mapping[tuple[str, int], int], timeout_s: float
    ) -> bool:
        """`wait_for` over partitions of several topics (a group member's assignment):
        one future parked in every partition named; topics that are gone are skipped."""
        self._check_open()
        watched: list[tuple[Partition, int]] = []
        for (name, number), pos in positions.items():
            topic = self._topics.get(name)
            if topic is not None and 0 <= number < len(topic.partitions):
                watched.append((topic.partitions[number], pos))
        return await self._park(watched, timeout_s)

    async def _park(
        self,
        watched: list[tuple[Partition, int]],
        timeout_s: float,
        growth: dict[asyncio.Future[bool], None] | None = None,
    ) -> bool:
        """True at once if any watched partition is past its position; else one future
        parked in every one of them (and in `growth`, a topic's growth waiters) until
        an append or new partitions wake it, or `timeout_s` passes."""
        if any(p.end_offset > pos for p, pos in watched):
            return True
        if not (watched or growth is not None) or timeout_s <= 0:
            return False
        fut: asyncio.Future[bool] = self._loop.create_future()
        for p, pos in watched:
            p.waiters[fut] = pos
        if growth is not None:
            growth[fut] = None
        try:
            if timeout_s == math.inf:  # no timer to arm and cancel on every wake-up
                return await fut
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return False
        finally:
            for p, _ in watched:
                p.waiters.pop(fut, None)
            if growth is not None:
                growth.pop(fut, None)

    def waiter_count(self) -> int:
        """Registered wait_for waiters over all partitions (leak checks in tests)."""
        return sum(len(p.waiters) for t in self._topics.values() for p in t.partitions)

    async def enforce_retention(self, now_ms: int | None = None) -> int:
        self._check_open()
        when = _now_ms() if now_ms is None else now_ms
        partitions = [p for t in self._topics.values() for p in t.partitions]
        return await asyncio.to_thread(self._retention_pass, partitions, when)

    def _retention_pass(self, partitions: list[Partition], now_ms: int) -> int:
        deleted = 0
        for partition in partitions:
            victims = partition.take_expired(now_ms)
            try:
                for segment in victims:
                    segment.delete()
                    deleted += 1
                if victims:
                    self._fio.fsync_dir(partition.directory)
            except OSError as exc:
                log.warning("retention of %r/%d: %s", partition.topic, partition.number, exc)
        return deleted
