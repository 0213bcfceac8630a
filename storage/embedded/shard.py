"""A shard: one writer thread that owns the appends of its partitions.

Appends arrive on a queue. The writer drains everything queued, writes each
batch to its partition's active segment, then syncs each dirty partition once
(group commit: concurrent producers share one fdatasync), advances the visible
ends and resolves the callers' futures on their event loop.

Failure rules, because they decide what a client is told:
* fdatasync fails: the partition is fenced. Its pending and later appends fail
  with PartitionFenced; the fsync is never retried and then acknowledged (the
  kernel may have dropped the dirty pages and would report success).
* the disk is full (ENOSPC/EDQUOT) or a write fails: the segment is cut back to
  where the batch started and only that append fails (DiskFull or
  BackendUnavailable); the partition stays writable and recovers by itself.
* an `fsync` topic's batches are written with a durable write (the write and
  its data sync in one system call): its failure counts as a failed fdatasync
  (fence), unless it says the disk is full (cut back, as above).
* anything unexpected fails the affected requests; the thread never dies.

An append with an identity (an idempotent request's) that the partition already
holds within its window appends nothing: it is answered with the held batch's
offsets, or, when that batch was written in the same pass and is not yet
acknowledged, with that batch's outcome. The check and the write happen in
this one thread, so two appends of one identity can never both be written.

An append that spans several partitions without an identity (a keyed batch)
reaches each shard as one `SpreadAppend`: one queue item for the request's
partitions of that shard, however many, their records not yet framed. A pass
frames all the entries it holds for a partition together, as one batch (split
past `MERGED_BATCH_BYTES`) and answers each entry, with the offsets of its own
records, straight into its request's `Joined` (the event loop then counts a
spread down once, not once per entry), with no per-partition request object: a
pass of 60 keyed requests over 32 partitions frames, writes and indexes 32
batches rather than 1,920. The batches of all those partitions that need no
durable write of their own are written with one call (`FileIO.write_files`,
one C call that lets go of the interpreter once): a pass over hundreds of
partitions would otherwise give the interpreter up, and wait to get it back
from the event loop, once per partition. Such a batch is
acknowledged whole or not at all, as any batch is: every entry in it was
answered by the same commit. An entry whose partition needs more than
a plain write in that pass (a roll, a fence, a deleted topic, or other appends
of its own to order with) becomes an `AppendRequest` and takes the path above.

A pass that writes to several `fsync` partitions (`SYNC_TOGETHER_AT` or more)
writes them all first and then makes them durable together
(`FileIO.sync_files`: one syncfs for the lot) instead of one durable write
each: the cost of a pass then stays about flat as the partitions a request
spans grow. Its failure is each file's own (see `sync_files`), and a
partition whose sync failed is fenced, as above.

Open files: a file written and not yet synced is never closed by the engine's
bound on open files (`openfiles.py`), so a pass works in groups of at most
`sync_group` partitions (each written, synced and acknowledged before the
next), and after each group, if the engine holds more files open than its
bound, the writer syncs its other unsynced files (interval and none
durability) early so that they can be closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from storage.embedded.codec import frame
from storage.embedded.crashpoints import CrashPoints
from storage.embedded.fileio import FileIO
from storage.embedded.openfiles import OpenFiles
from storage.embedded.partition import Partition, write_together
from storage.embedded.passes import answer_pass, frame_pass, group_pass
from storage.embedded.producers import Held
from storage.embedded.segment import sync_together
from storage.errors import (
    BackendUnavailable,
    DiskFull,
    PartitionFenced,
    StorageError,
    TopicNotFound,
)
from storage.observer import NO_OBSERVER, StorageObserver
from storage.records import AppendResult, Durability, PackedRecords

log = logging.getLogger(__name__)

MERGED_BATCH_BYTES = 1024 * 1024
"""Records of one partition's spread entries framed together as one batch, at most
(an entry larger than this is a batch of its own): a keyed request brings a few
records for each partition, and a pass of many such requests then writes, indexes
and checks one batch per partition instead of one per request, while a read of a
few records never has to copy and check a batch much larger than a megabyte."""

_new_tuple = tuple.__new__

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

SYNC_TOGETHER_AT = 2
"""`fsync` partitions written in one pass from which they are synced together (one
syncfs) rather than each by its own durable write. Measured on ext4: one file
costs the same either way (0.2 ms), 2 files 0.3 ms one by one and 0.1-0.2 ms
together (120 us of CPU against 60), 8 files 1.7-2.3 ms and 0.3 ms, 32 files 7 ms
and 0.5 ms. Two is a keyed request's share of each of four writers over 8
partitions: a durable write each made every pass of every writer flush the disk
twice."""


class ResultSink(Protocol):
    """Where an append's outcome goes on the event loop: a future, or one slot of a
    `Joined` (the parts of `_deliver` use, which `asyncio.Future` has too)."""

    def done(self) -> bool: ...

    def set_result(self, result: AppendResult, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class Joined:
    """One future for the appends of several partitions: it resolves, with each one's
    result or error in order, once the last of them is decided.

    A writer places the outcomes of a `SpreadAppend`'s entries straight into
    `results` (each slot is one writer's alone) and the event loop counts them
    down once per spread and pass (`count_down`), rather than once per
    partition; everything else is the event loop's."""

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.future: asyncio.Future[list[AppendResult | StorageError]] = loop.create_future()
        self.failed = 0  # outcomes that are errors: none, and the results need no search
        self.results: list[AppendResult | StorageError | None] = [None] * count
        self._left = count

    def slot(self, index: int) -> _Slot:
        return _Slot(self, index)

    def put(self, index: int, outcome: AppendResult | StorageError) -> None:
        self.results[index] = outcome
        self.count_down(1, 0 if outcome.__class__ is AppendResult else 1)

    def count_down(self, decided: int, failed: int) -> None:
        """Event loop: `decided` more slots hold their outcome, `failed` of them errors."""
        self.failed += failed
        self._left -= decided
        if not self._left and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]


class _Slot:
    """One partition's place in a `Joined`."""

    __slots__ = ("index", "joined")

    def __init__(self, joined: Joined, index: int) -> None:
        self.joined, self.index = joined, index

    def done(self) -> bool:
        # A cancelled caller's slots still count down; nothing is delivered to it then.
        return False

    def set_result(self, result: AppendResult, /) -> None:
        self.joined.put(self.index, result)

    def set_exception(self, exception: BaseException, /) -> None:
        assert isinstance(exception, StorageError)
        self.joined.put(self.index, exception)


@dataclass(slots=True, eq=False)
class AppendRequest:
    """One encoded batch waiting for its partition's writer."""

    partition: Partition
    batch: bytes
    count: int
    first_timestamp: int
    max_timestamp: int
    future: ResultSink
    base_offset: int = -1
    durable: bool = False  # written with a write that returned once it was on disk
    identity: bytes | None = None  # an idempotent request's, also framed into `batch`
    appended_ms: int = 0  # framed into `batch` with the identity
    # Later appends of the same identity in the same pass: they get this one's outcome.
    followers: list[ResultSink] | None = None

    def answer(self, outcome: _Outcome, result: AppendResult | StorageError) -> None:
        outcome.results.append((self.future, result))
        if self.followers:
            again = result
            if isinstance(result, AppendResult):
                again = result._replace(duplicate=True)
            outcome.results.extend((f, again) for f in self.followers)


@dataclass(slots=True, eq=False)
class SpreadAppend:
    """One request's batches for the partitions of one shard, without an identity:
    entry `i` is the packed records `packed[i]` (not framed: the writer frames a
    partition's entries of a pass together) for `partitions[i]`, answered into
    `joined` at `slots[i]`. Lists side by side rather than an object per entry: a
    keyed batch has an entry for most of a topic's partitions."""

    joined: Joined
    partitions: list[Partition] = field(default_factory=list)
    packed: list[PackedRecords] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    general: int = 0  # entries made requests of their own: they count themselves down
    failed: int = 0  # entries this pass placed an error for (the writer's own count)


# One spread entry of a pass, as `passes` takes it: (its packed records, its request's
# `Joined.results`, its slot there, the spread it came in).
_Entry = tuple[PackedRecords, list[AppendResult | StorageError | None], int, SpreadAppend]
_Entries = list[_Entry]


def _alone(p: Partition, entry: _Entry) -> AppendRequest:
    """A spread entry as a request of its own (framed alone), for the general path."""
    (data, count, first, last), _, slot, item = entry
    item.general += 1
    return AppendRequest(
        p, frame(data, count, first, last, None, 0), count, first, last, item.joined.slot(slot)
    )


def _place(entries: _Entries, error: StorageError) -> None:
    """Writer thread: every one of the entries fails with `error`."""
    for _, results, slot, item in entries:
        results[slot] = error
        item.failed += 1


@dataclass(slots=True, eq=False)
class _Framed:
    """A partition's spread entries of a pass framed and stamped (`passes.frame_pass`),
    not yet written: the batches back to back, each one's (base offset, count, max
    timestamp, size), and each entry's first offset."""

    entries: _Entries
    data: bytes
    placed: list[tuple[int, int, int, int]]
    starts: list[int]


@dataclass(slots=True, eq=False)
class _Written:
    """A partition's spread entries written in this pass, waiting for their commit,
    with each one's first offset."""

    entries: _Entries
    starts: list[int]
    durable: bool


@dataclass(slots=True, eq=False)
class _Call:
    """Work that must run in the writer thread, after everything queued before it."""

    fn: Callable[[], None]
    future: asyncio.Future[None]


@dataclass(slots=True, eq=False)
class _Stop:
    sync: bool  # False: abandon (tests simulating a crash) without a final sync


@dataclass(slots=True)
class _Outcome:
    """What to hand back to the event loop after one pass of the writer."""

    results: list[tuple[ResultSink, AppendResult | StorageError]] = field(default_factory=list)
    # Spread entries' outcomes are in their Joined's results already: how many of
    # each, and how many of those are errors.
    decided: list[tuple[Joined, int, int]] = field(default_factory=list)
    calls: list[tuple[asyncio.Future[None], BaseException | None]] = field(default_factory=list)
    woken: set[Partition] = field(default_factory=set)
    taken: int = 0  # appends this pass took from the queue (their outcome is in `results`)


def _deliver(outcome: _Outcome) -> None:
    """Runs on the event loop: resolve futures (skipping cancelled callers) and wake waiters."""
    for fut, result in outcome.results:
        if fut.done():
            continue
        if isinstance(result, StorageError):
            fut.set_exception(result)
        else:
            fut.set_result(result)
    for joined, decided, failed in outcome.decided:
        joined.count_down(decided, failed)
    for call_fut, error in outcome.calls:
        if not call_fut.done():
            if error is None:
                call_fut.set_result(None)
            else:
                call_fut.set_exception(error)
    for partition in outcome.woken:
        if partition.waiters:
            partition.wake()


_Item = AppendRequest | SpreadAppend | _Call | _Stop


def _take(item: list[AppendRequest | SpreadAppend] | _Call | _Stop, items: list[_Item]) -> None:
    """Writer thread: one queue item onto the pass's list (a loop pass's appends come as one)."""
    if isinstance(item, list):
        items.extend(item)
    else:
        items.append(item)


def write_error(partition: Partition, exc: OSError) -> StorageError:
    """The error an append gets when its write (or the roll before it) failed."""
    where = f"partition {partition.number} of {partition.topic!r}"
    if exc.errno in _SPACE_ERRNOS:
        return DiskFull(f"no space left on the device for {where}")
    return BackendUnavailable(f"write to {where} failed: {exc}")


class Shard:
    """The writer thread of a set of partitions, with its queue."""

    def __init__(
        self,
        number: int,
        *,
        loop: asyncio.AbstractEventLoop,
        max_queued: int,
        crash: CrashPoints,
        fio: FileIO | None = None,
        observer: StorageObserver = NO_OBSERVER,
        files: OpenFiles | None = None,
        sync_group: int = 1 << 30,
    ) -> None:
        self.number = number
        self._fio = fio if fio is not None else FileIO()
        self._observer = observer
        self._files = files if files is not None else OpenFiles(self._fio)
        self._sync_group = max(SYNC_TOGETHER_AT, sync_group)
        self.partitions: set[Partition] = set()  # writer-owned once started
        self._loop = loop
        self._max_queued = max_queued
        self._crash = crash
        # A loop pass's appends travel as one list: one put, one wake-up of the writer.
        self._queue: queue.SimpleQueue[list[AppendRequest | SpreadAppend] | _Call | _Stop] = (
            queue.SimpleQueue()
        )
        self._queued = 0  # appends handed over whose outcome is not back yet (loop thread only)
        self._unsynced: dict[Partition, float] = {}  # interval durability: flush deadline
        # Partitions written without a sync since (interval and none durability): their
        # active files stay open until synced, so they are synced early when the
        # engine holds more files open than its bound (`_sync_if_over_bound`).
        self._dirty: set[Partition] = set()
        self._held: list[AppendRequest | SpreadAppend] = []  # submitted in this loop pass
        self._thread = threading.Thread(
            target=self._run, name=f"tidegate-shard-{number}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: AppendRequest | SpreadAppend) -> None:
        """Queue an append; refuses (backpressure) when the writer is too far behind.

        Appends submitted while the event loop runs one pass are handed to the
        writer together at the end of that pass. Woken at the first of them,
        the writer could not run anyway (the loop's thread holds the
        interpreter until its pass ends) and would only contend for it; woken
        at the end, it finds the whole group.
        """
        self.check_room(1)
        if not self._held:
            self._loop.call_soon(self._hand_over)
        self._held.append(request)

    def check_room(self, items: int) -> None:
        """Refuse (backpressure) unless `items` more appends fit in the queue now. Event
        loop only: nothing is queued between this check and the `submit`s after it."""
        if self._queued + len(self._held) + items > self._max_queued:
            raise BackendUnavailable(
                f"shard {self.number} has {self._max_queued} appends queued; retry later"
            )

    def _hand_over(self) -> None:
        """Event loop: give the writer what this pass submitted, in order."""
        held, self._held = self._held, []
        if held:
            self._queued += len(held)
            self._queue.put(held)

    async def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` in the writer thread after everything already queued."""
        fut: asyncio.Future[None] = self._loop.create_future()
        self._hand_over()
        self._queue.put(_Call(fn, fut))
        await fut

    def stop(self, *, sync: bool = True) -> None:
        """Ask the writer to finish what is queued (and sync everything) and exit."""
        self._hand_over()
        self._queue.put(_Stop(sync))

    def join(self) -> None:
        self._thread.join()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = self._flush_timeout()
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._flush_due(force=False)
                self._sync_if_over_bound()
                continue
            items: list[_Item] = []
            _take(first, items)
            with contextlib.suppress(queue.Empty):
                while len(items) < self._max_queued:
                    _take(self._queue.get_nowait(), items)
            stop: _Stop | None = None
            try:
                stop = self._process(items)
            except BaseException:
                log.exception("shard %d: unexpected error in the writer", self.number)
                self._fail_all(items, BackendUnavailable("internal error in the storage writer"))
            self._flush_due(force=False)
            self._sync_if_over_bound()
            if stop is not None:
                if stop.sync:
                    self._flush_due(force=True)
                return

    def _process(self, items: list[_Item]) -> _Stop | None:
        now_ms = time.time_ns() // 1_000_000
        outcome = _Outcome()
        arrived: dict[Partition, list[AppendRequest]] = {}
        calls: list[_Call] = []
        stop: _Stop | None = None
        spread: dict[Partition, _Entries] = {}
        taken = 0
        for item in items:
            if isinstance(item, SpreadAppend):
                taken += 1
                group_pass(
                    spread, item.partitions, item.packed, item.joined.results, item.slots, item
                )
            elif isinstance(item, AppendRequest):
                taken += 1
                queued = arrived.get(item.partition)
                if queued is None:
                    arrived[item.partition] = [item]
                else:
                    queued.append(item)
            elif isinstance(item, _Stop):
                stop = item
            else:
                calls.append(item)
        outcome.taken = taken
        if spread:
            self._plain_or_general(spread, arrived)
        synced = sum(1 for p in arrived if p.config.durability == Durability.FSYNC)
        synced += sum(1 for p in spread if p.config.durability == Durability.FSYNC)
        together = synced >= SYNC_TOGETHER_AT and self._fio.syncs_together()
        # In groups of `sync_group` partitions, each written, synced and committed
        # before the next: written-but-unsynced files stay open until their sync, so
        # a group is what one writer holds open beyond the engine's bound.
        work: list[tuple[Partition, list[AppendRequest] | None, _Entries | None]] = [
            (p, requests, None) for p, requests in arrived.items()
        ]
        work.extend((p, None, entries) for p, entries in spread.items())
        for first in range(0, len(work), self._sync_group):
            pending: dict[Partition, list[AppendRequest]] = {}
            written: dict[Partition, _Written] = {}
            plain: list[tuple[Partition, _Framed]] = []  # written together, below
            group = work[first : first + self._sync_group]
            framing = self._frame_spreads(group)
            for partition, requests, entries in group:
                if entries is not None:
                    framed = self._fits(partition, framing.pop(partition), now_ms)
                    if framed is None:
                        requests = [_alone(partition, entry) for entry in entries]
                    elif not together and partition.config.durability == Durability.FSYNC:
                        bases = self._write_stamped(partition, framed, True)
                        self._written_spread(partition, framed, bases, written, True)
                        continue
                    else:
                        plain.append((partition, framed))
                        continue
                if requests is not None:
                    self._write_all(
                        partition, requests, pending, outcome, now_ms, durable=not together
                    )
            if plain:
                self._write_spreads(plain, written)
            if together:
                self._sync_together(pending, written, outcome)
            for partition, requests in pending.items():
                self._commit(partition, requests, outcome, force_sync=False)
            if written:
                self._commit_spreads(written, outcome)
            self._sync_if_over_bound()
        for item in items:
            if isinstance(item, SpreadAppend) and len(item.slots) > item.general:
                outcome.decided.append((item.joined, len(item.slots) - item.general, item.failed))
        for call in calls:
            try:
                call.fn()
                outcome.calls.append((call.future, None))
            except BaseException as exc:
                outcome.calls.append((call.future, exc))
        self._hand_back(outcome)
        return stop

    def _write_all(
        self,
        p: Partition,
        requests: list[AppendRequest],
        pending: dict[Partition, list[AppendRequest]],
        outcome: _Outcome,
        now_ms: int,
        *,
        durable: bool = True,
    ) -> None:
        """Write one partition's queued batches, in order, with as few writes as the
        segment rolls allow: every system call lets the event loop's thread take the
        interpreter back, so one write for many batches keeps both threads moving.
        `durable`: an `fsync` topic's writes are durable writes (else the pass syncs
        them together afterwards)."""
        if self._plain_run(p, requests, now_ms):
            # The common case, checked once for the lot: nothing to deduplicate, no
            # roll on the way, the partition writable: one write, no per-batch checks.
            self._write_run(p, requests, pending, outcome, durable=durable)
            return
        run: list[AppendRequest] = []
        unwritten = 0
        leaders: dict[bytes, AppendRequest] = {}  # this pass's appends with an identity
        for req in requests:
            if p.detached:
                outcome.results.append((req.future, TopicNotFound(p.topic)))
                continue
            if req.identity is not None:
                leader = leaders.get(req.identity)
                if leader is not None:
                    if leader.followers is None:
                        leader.followers = []
                    leader.followers.append(req.future)
                    continue
                held = p.producers.get(req.identity, now_ms)
                if held is not None:
                    result = AppendResult(
                        p.number, held.base_offset, held.records, held.timestamp, duplicate=True
                    )
                    outcome.results.append((req.future, result))
                    continue
            if p.fenced is None and p.needs_roll(len(req.batch), now_ms, unwritten=unwritten):
                self._write_run(p, run, pending, outcome, durable=durable)
                run, unwritten = [], 0
                # Everything before the roll becomes durable and visible first, so a
                # closed segment only ever holds acknowledged batches.
                self._commit(p, pending.pop(p, []), outcome, force_sync=True)
                if p.fenced is None:
                    try:
                        p.roll(now_ms)
                    except OSError as exc:
                        req.answer(outcome, write_error(p, exc))
                        continue
            if p.fenced is not None:
                req.answer(outcome, PartitionFenced(p.topic, p.number, p.fenced))
                continue
            if req.identity is not None:
                leaders[req.identity] = req
            run.append(req)
            unwritten += len(req.batch)
        self._write_run(p, run, pending, outcome, durable=durable)

    @staticmethod
    def _plain_run(p: Partition, requests: list[AppendRequest], now_ms: int) -> bool:
        """Whether `requests` go to `p`'s active segment as they are: none carries an
        identity, the partition is writable, and they fit before a roll is due (by
        size and by age), so that `_write_all`'s checks would pass each one."""
        if p.detached or p.fenced is not None:
            return False
        total = 0
        for r in requests:
            if r.identity is not None:
                return False
            total += len(r.batch)
        seg = p.active
        config = p.config
        return (
            seg.size + total <= config.segment_bytes and now_ms - seg.created_ms < config.segment_ms
        )

    def _plain_or_general(
        self,
        spread: dict[Partition, _Entries],
        arrived: dict[Partition, list[AppendRequest]],
    ) -> None:
        """Leave in `spread` the partitions whose entries may be written plainly in this
        pass (writable, and no other appends to order them with; `_frame_spread` checks
        the roll); the others' entries become requests, after the partition's own, in
        `arrived`."""
        general = [
            p for p, _ in spread.items() if p in arrived or p.detached or p.fenced is not None
        ]
        for p in general:
            requests = [_alone(p, entry) for entry in spread.pop(p)]
            queued = arrived.get(p)
            if queued is None:
                arrived[p] = requests
            else:
                queued.extend(requests)

    @staticmethod
    def _frame_spreads(
        group: list[tuple[Partition, list[AppendRequest] | None, _Entries | None]],
    ) -> dict[Partition, _Framed]:
        """The spread entries of a group's partitions framed together, each partition's
        as one batch (or a few, of at most `MERGED_BATCH_BYTES` of records each)
        stamped from its next offset, with one call for them all (`passes.frame_pass`);
        each entry's records keep their order and get consecutive offsets."""
        spreads = [(p, entries) for p, _, entries in group if entries is not None]
        if not spreads:
            return {}
        framed = frame_pass(
            [entries for _, entries in spreads],
            [p.next_offset for p, _ in spreads],
            MERGED_BATCH_BYTES,
        )
        return {
            p: _Framed(entries, data, placed, starts)
            for (p, entries), (data, placed, starts) in zip(spreads, framed, strict=True)
        }

    @staticmethod
    def _fits(p: Partition, framed: _Framed, now_ms: int) -> _Framed | None:
        """`framed`, or None when it does not fit before a roll is due (by size or by
        age): the caller then takes the general path with its entries."""
        seg, config = p.active, p.config
        if seg.size + len(framed.data) > config.segment_bytes or (
            now_ms - seg.created_ms >= config.segment_ms
        ):
            return None
        return framed

    def _written_spread(
        self,
        p: Partition,
        framed: _Framed,
        bases: list[int] | StorageError,
        written: dict[Partition, _Written],
        durable: bool,
    ) -> None:
        """A partition's framed spread entries after their write: on an error every
        entry fails (none was kept); else each waits in `written` for its commit."""
        if isinstance(bases, StorageError):
            _place(framed.entries, bases)
            return
        self._crash.hit("after-write")
        if durable:
            self._crash.hit("after-fsync")
        written[p] = _Written(framed.entries, framed.starts, durable)

    def _write_spreads(
        self, plain: list[tuple[Partition, _Framed]], written: dict[Partition, _Written]
    ) -> None:
        """Not durable writes of many partitions' framed spread entries with one write
        call for them all (`partition.write_together`): the interpreter is let go once
        for the lot, not once a partition. Each partition's error is its own."""
        partitions = [p for p, _ in plain]
        self._dirty.update(partitions)  # also if a write fails: some may have reached the file
        try:
            outcomes = write_together(
                partitions, [framed.data for _, framed in plain], [f.placed for _, f in plain]
            )
        except OSError:  # holding the files failed (a reopen): each one on its own
            for p, framed in plain:
                self._written_spread(
                    p, framed, self._write_stamped(p, framed, False), written, False
                )
            return
        for (p, framed), bases in zip(plain, outcomes, strict=True):
            if isinstance(bases, OSError):
                self._written_spread(p, framed, write_error(p, bases), written, False)
            else:
                self._written_spread(p, framed, bases, written, False)

    def _write_stamped(
        self, p: Partition, framed: _Framed, durable: bool
    ) -> list[int] | StorageError:
        """`_write_many` of a partition's framed spread entries."""
        return self._write_many(p, framed.data, framed.placed, durable)

    def _write_many(
        self,
        p: Partition,
        batches: list[tuple[bytes, int, int]] | bytes,
        placed: list[tuple[int, int, int, int]] | None,
        durable: bool,
    ) -> list[int] | StorageError:
        """The batches' base offsets after one write of them all, or the error every one
        of them answers. A failed durable write fences the partition (as a failed fsync
        does) unless the disk is full; a non-durable one leaves the partition dirty.
        `batches` are (batch, count, max timestamp) to stamp, or with `placed` the
        batches already stamped, back to back (`Partition.write_stamped`)."""
        if not durable:
            self._dirty.add(p)  # also if the write fails: some of it may have reached the file
        started = time.perf_counter()
        try:
            if placed is None:
                assert not isinstance(batches, bytes)
                bases = p.write_many(batches, durable=durable)
            else:
                assert isinstance(batches, bytes)
                bases = p.write_stamped(batches, placed, durable=durable)
        except OSError as exc:
            if durable and exc.errno not in _SPACE_ERRNOS:
                self._fence(p, "durable write", exc)
                return PartitionFenced(p.topic, p.number, p.fenced or "durable write failed")
            return write_error(p, exc)
        if durable:
            self._observer.synced(time.perf_counter() - started, "durable-write")
        return bases

    def _commit_spreads(self, written: dict[Partition, _Written], outcome: _Outcome) -> None:
        """`_commit` for the partitions' written spread entries: each partition made as
        durable as asked and published, then every entry of those answered with one
        call (`passes.answer_pass`: an `AppendResult` for each, into its `Joined`)."""
        numbers: list[int] = []
        groups: list[_Entries] = []
        starts: list[list[int]] = []
        for p, done in written.items():
            durability = p.config.durability
            if durability == Durability.FSYNC and not done.durable:
                if not self._sync(p):
                    error = PartitionFenced(p.topic, p.number, p.fenced or "fsync failed")
                    _place(done.entries, error)
                    continue
            elif durability == Durability.INTERVAL:
                deadline = time.monotonic() + p.config.flush_interval_ms / 1000
                self._unsynced.setdefault(p, deadline)
            p.publish()
            numbers.append(p.number)
            groups.append(done.entries)
            starts.append(done.starts)
            outcome.woken.add(p)
        answer_pass(AppendResult, numbers, groups, starts)

    def _write_run(
        self,
        p: Partition,
        run: list[AppendRequest],
        pending: dict[Partition, list[AppendRequest]],
        outcome: _Outcome,
        *,
        durable: bool = True,
    ) -> None:
        """One write for `run`; on an OSError every batch of it fails and none is kept.

        For an `fsync` topic that write is durable (write and data sync in one
        system call, see `FileIO.write_all_durable`), so the commit needs no
        sync of its own. Its error may then be the sync's: unless it says the
        disk is full, the partition is fenced, as after a failed fsync.
        """
        if not run:
            return
        durable = durable and p.config.durability == Durability.FSYNC
        bases = self._write_many(
            p, [(r.batch, r.count, r.max_timestamp) for r in run], None, durable
        )
        if isinstance(bases, StorageError):
            for r in run:
                r.answer(outcome, bases)
            return
        for req, base in zip(run, bases, strict=True):
            req.base_offset = base
            req.durable = durable
            if req.identity is not None:
                held = Held(base, req.count, req.first_timestamp, req.appended_ms)
                p.producers.add(req.identity, held, req.appended_ms)
                p.producers_dirty = True
        self._crash.hit("after-write")
        if durable:
            self._crash.hit("after-fsync")
        pending.setdefault(p, []).extend(run)

    def _commit(
        self,
        p: Partition,
        requests: list[AppendRequest],
        outcome: _Outcome,
        *,
        force_sync: bool,
    ) -> None:
        """Make a partition's written batches as durable as asked, then acknowledge them."""
        durability = p.config.durability
        if force_sync or (durability == Durability.FSYNC and not all(r.durable for r in requests)):
            if not self._sync(p):
                error = PartitionFenced(p.topic, p.number, p.fenced or "fsync failed")
                for r in requests:
                    r.answer(outcome, error)
                return
        elif durability == Durability.INTERVAL and requests:
            deadline = time.monotonic() + p.config.flush_interval_ms / 1000
            self._unsynced.setdefault(p, deadline)
        if not requests:
            return
        p.publish()
        number, results = p.number, outcome.results
        for r in requests:
            result = AppendResult(number, r.base_offset, r.count, r.first_timestamp)
            if r.followers:
                r.answer(outcome, result)
            else:
                results.append((r.future, result))
        outcome.woken.add(p)

    def _sync_together(
        self,
        pending: dict[Partition, list[AppendRequest]],
        written: dict[Partition, _Written],
        outcome: _Outcome,
    ) -> None:
        """Sync the pass's written `fsync` partitions together, one call per file
        system; a partition whose sync failed is fenced and its appends fail."""
        groups: dict[int, list[Partition]] = {}
        for p, requests in pending.items():
            if p.config.durability == Durability.FSYNC and not all(r.durable for r in requests):
                groups.setdefault(p.device, []).append(p)
        for p, done in written.items():
            if p.config.durability == Durability.FSYNC and not done.durable:
                groups.setdefault(p.device, []).append(p)
        for partitions in groups.values():
            started = time.perf_counter()
            errors = sync_together(self._files, [p.active for p in partitions])
            self._observer.synced(time.perf_counter() - started, "syncfs")
            for p, exc in zip(partitions, errors, strict=True):
                self._dirty.discard(p)
                if exc is None:
                    self._crash.hit("after-fsync")
                    self._unsynced.pop(p, None)
                    if p in written:
                        written[p].durable = True
                    else:
                        for r in pending[p]:
                            r.durable = True
                    continue
                self._fence(p, "fsync", exc)
                error = PartitionFenced(p.topic, p.number, p.fenced or "fsync failed")
                if p in written:
                    _place(written.pop(p).entries, error)
                else:
                    for r in pending.pop(p):
                        r.answer(outcome, error)

    def _sync(self, p: Partition) -> bool:
        """fdatasync the active segment once; on failure fence the partition for good."""
        self._dirty.discard(p)
        started = time.perf_counter()
        try:
            p.sync()
        except OSError as exc:
            self._fence(p, "fsync", exc)
            return False
        self._observer.synced(time.perf_counter() - started, "fdatasync")
        self._crash.hit("after-fsync")
        self._unsynced.pop(p, None)
        return True

    def _fence(self, p: Partition, what: str, exc: OSError) -> None:
        """A sync (or a write that syncs) failed: fence the partition for good."""
        log.error("%s failed on partition %d of %r: %s", what, p.number, p.topic, exc)
        p.fence(f"{what} failed: {exc}")
        self._unsynced.pop(p, None)

    def _sync_if_over_bound(self) -> None:
        """Sync this writer's partitions holding unsynced data when the engine holds
        more files open than its bound: those files cannot be closed before their
        sync (see `openfiles.py`), and waiting for their flush interval (or, with
        durability none, for the roll or the shutdown) would let them pile up.
        Syncing early only makes data more durable than its topic asks."""
        if not self._dirty or not self._files.over_capacity():
            return
        for p in list(self._dirty):
            if p.fenced is None and not p.detached:
                self._sync(p)
            elif p.fenced is not None:
                p.active.let_go_unsynced()
            self._dirty.discard(p)

    def _flush_timeout(self) -> float | None:
        if not self._unsynced:
            return None
        return max(0.0, min(self._unsynced.values()) - time.monotonic())

    def _flush_due(self, *, force: bool) -> None:
        """Sync interval-durability partitions whose deadline passed (all of them if `force`)."""
        now = time.monotonic()
        targets = self.partitions if force else [p for p, d in self._unsynced.items() if d <= now]
        for p in list(targets):
            if p.fenced is None and not p.detached:
                self._sync(p)
            self._unsynced.pop(p, None)

    def attach(self, p: Partition) -> None:
        """Writer thread (or before start): take charge of a partition."""
        self.partitions.add(p)

    def detach(self, p: Partition) -> None:
        """Writer thread: forget a partition (its topic is being deleted)."""
        p.detached = True
        self.partitions.discard(p)
        self._unsynced.pop(p, None)
        self._dirty.discard(p)

    def _fail_all(self, items: list[_Item], error: StorageError) -> None:
        outcome = _Outcome()
        outcome.taken = sum(1 for item in items if isinstance(item, AppendRequest | SpreadAppend))
        for item in items:
            if isinstance(item, AppendRequest):
                outcome.results.append((item.future, error))
            elif isinstance(item, SpreadAppend):
                # Nothing of the failed pass was handed back: every entry fails here.
                for slot in item.slots:
                    item.joined.results[slot] = error
                outcome.decided.append((item.joined, len(item.slots), len(item.slots)))
            elif isinstance(item, _Call):
                outcome.calls.append((item.future, error))
        self._hand_back(outcome)

    def _hand_back(self, outcome: _Outcome) -> None:
        if not (outcome.results or outcome.calls or outcome.woken or outcome.taken):
            return
        # RuntimeError: the event loop is gone, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._delivered, outcome)

    def _delivered(self, outcome: _Outcome) -> None:
        """Event loop: the pass's outcome is back; its appends no longer count as queued."""
        self._queued -= outcome.taken
        _deliver(outcome)
