"""A stream's reader of the log: its positions, the next run of records, gaps, waits.

Both transports use it. `poll` reads the next run of records from the followed
partitions, taking turns so that a busy partition cannot starve the others;
`wait` sleeps on the log's wake-up (`LogStore.wait_for`, never a polling loop)
until any followed partition passes its position. Positions move only when
the caller says a run was delivered (`advance`), so a stream interrupted
while sending still knows exactly what its client has.

The reads and frames of every stream in a process are shared (`SharedFrames`):
the subscribers that one append wakes all read at the same position in the
same event-loop pass, and one read (`WokenReads`) and one rendering of the
frame (`RenderedRecords`, keyed by the record objects the log hands out)
serve them all, so fan-out does not re-read or re-encode per connection.

A stream that follows every partition (no `partitions` subset and no position
list) follows the partitions added to its topic while it is open as well,
from their first offset, so that nothing produced to them is missed (`grown`).
Its wait on the log names the partition count it knows, so new partitions
end the wait as an append does: an idle stream does not wake to look.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

from gateway.http.rendered import RenderedRecords
from gateway.http.woken import WokenReads
from gateway.streams.filters import RecordFilter
from gateway.streams.frames import GapEntry, records_frame, sse_context, sse_records
from storage.backend import LogStore
from storage.errors import OffsetOutOfRange
from storage.records import Record, ValueFormat


class SharedFrames:
    """The reads and rendered `records` frames and event runs that a process's streams
    share."""

    def __init__(self, render_cache_bytes: int) -> None:
        self.reads = WokenReads()
        self.frames: RenderedRecords[str] = RenderedRecords(render_cache_bytes)
        self.events = RenderedEvents(EVENTS_HELD, EVENTS_BYTES)

    def sse(
        self,
        records: Sequence[Record],
        partition: int,
        fmt: ValueFormat,
        positions: Mapping[int, int],
        filtered: bool = False,
    ) -> bytes:
        """The `record` events of a run for a stream at `positions`: rendered once for
        every SSE stream at the same positions (the resume tokens name them all), unless
        the run was filtered."""
        context = sse_context(partition, positions)
        if filtered or not records:
            return sse_records(records, partition, fmt, context)
        return self.events.get(records, partition, fmt, context)

    def frame(
        self, records: Sequence[Record], partition: int, fmt: ValueFormat, filtered: bool = False
    ) -> str:
        """The `records` frame of a run: from the cache, unless the run was filtered (two
        filters can keep different records with the same first, last and count)."""
        if filtered:
            return records_frame(records, partition, fmt)
        code = _FORMATS[fmt]
        return self.frames.head(
            records, partition, code, lambda run: records_frame(run, partition, fmt)
        )


_FORMATS = {ValueFormat.JSON: 0, ValueFormat.STRING: 1, ValueFormat.BINARY: 2}

EVENTS_HELD = 64
"""Event runs kept: the streams one append wakes all render the same run in the same
pass, so only the latest few runs of each busy partition need keeping."""
EVENTS_BYTES = 4 << 20
"""...and at most this many bytes of them (a larger run is rendered and not kept)."""


class RenderedEvents:
    """The latest rendered SSE event runs, found by the identity of the run's first and
    last record objects (kept with the entry, so their ids are not reused while it
    lives, as in `RenderedRecords`), its length, partition, format and token context."""

    def __init__(self, held: int, budget_bytes: int) -> None:
        self.held = held
        self.budget_bytes = budget_bytes
        self.held_bytes = 0
        self.hits = 0
        self._entries: dict[tuple[object, ...], tuple[Record, Record, bytes]] = {}

    def get(
        self,
        records: Sequence[Record],
        partition: int,
        fmt: ValueFormat,
        context: tuple[bytes, bytes],
    ) -> bytes:
        first, last = records[0], records[-1]
        key = (id(first), id(last), len(records), partition, fmt, context)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is first and entry[1] is last:
            self.hits += 1
            return entry[2]
        body = sse_records(records, partition, fmt, context)
        if len(body) > self.budget_bytes:
            return body
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self.held_bytes -= len(replaced[2])
        self._entries[key] = (first, last, body)
        self.held_bytes += len(body)
        # The oldest go first (dicts keep insertion order).
        while len(self._entries) > self.held or self.held_bytes > self.budget_bytes:
            oldest = next(iter(self._entries))
            self.held_bytes -= len(self._entries.pop(oldest)[2])
        return body


@dataclass(frozen=True, slots=True)
class Batch:
    """A run of one partition's records, and the position right after it (a filtered
    stream's run may hold none: the position moves on all the same)."""

    partition: int
    records: Sequence[Record]
    next_offset: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Followed positions that the log no longer holds."""

    entries: tuple[GapEntry, ...]


class Follower:
    """Where one stream is in each followed partition, and what comes next (slotted:
    every open stream holds one)."""

    __slots__ = (
        "_order",
        "_recheck",
        "_turn",
        "every",
        "frame_bytes",
        "log",
        "name",
        "only",
        "positions",
        "shared",
    )

    def __init__(
        self,
        log: LogStore,
        name: str,
        positions: Mapping[int, int],
        shared: SharedFrames,
        *,
        frame_bytes: int,
        only: RecordFilter | None = None,
        allow_empty: bool = False,
        every: bool = False,
    ) -> None:
        if not positions and not allow_empty:
            raise ValueError("a stream follows at least one partition")
        self.every = every  # follows every partition, those added to the topic later too
        self._recheck = False
        self.log = log
        self.name = name
        self.positions = dict(positions)
        self.shared = shared
        self.frame_bytes = frame_bytes
        self.only = only
        self._order = sorted(positions)
        self._turn = 0

    def recheck(self) -> None:
        """The topic may have grown: look at its partitions on the next `grown`."""
        self._recheck = True

    async def grown(self) -> bool:
        """For a stream of every partition: follow the partitions the topic has gained,
        from their first retained offset (True when there were some). The topic is
        looked at when `recheck` says so: after a wait that something ended (new
        records or new partitions), or when the feeds say it grew."""
        if not self.every or not self._recheck:
            return False
        self._recheck = False
        info = await self.log.get_topic(self.name)
        added = [p for p in range(info.partitions) if p not in self.positions]
        for p in added:
            self.positions[p] = (await self.log.offsets(self.name, p)).start_offset
        if added:
            self._order = sorted(self.positions)
        return bool(added)

    def follow(self, positions: Mapping[int, int]) -> None:
        """Follow these partitions from here on (a group member's new assignment). The
        positions change in place: a stream holds the same dict."""
        fresh = dict(positions)
        self.positions.clear()
        self.positions.update(fresh)
        self._order = sorted(positions)
        self._turn = 0

    async def poll(self, max_records: int, skip: Container[int] = ()) -> Batch | Gap | None:
        """The next run (at most `max_records`), the gaps found, or None when every
        followed partition (but those in `skip`) is at its end. Nothing moves until
        `advance`/`skip`."""
        gaps: list[GapEntry] = []
        order, count, frame_bytes = self._order, len(self._order), self.frame_bytes
        for i in range(count):
            p = order[(self._turn + i) % count]
            if p in skip:
                continue
            offset = self.positions[p]
            try:
                result = await self.shared.reads.read(
                    self.log, self.name, p, offset, max_records=max_records, max_bytes=frame_bytes
                )
            except OffsetOutOfRange as exc:
                if exc.requested < exc.earliest:
                    gaps.append(GapEntry(p, exc.requested, exc.earliest))
                    continue
                raise
            if result.records and not gaps:
                self._turn = (self._turn + i + 1) % count
                records = result.records if self.only is None else self.only.apply(result.records)
                return Batch(p, records, result.next_offset, result.bytes)
        if gaps:
            return Gap(tuple(gaps))
        return None

    async def wait(self, timeout_s: float) -> bool:
        """Until a followed partition has a record at its position (True) or the timeout;
        a stream of every partition also until the topic has more partitions than it
        follows (True, and `grown` then looks)."""
        if not self.every:
            return await self.log.wait_for(self.name, self.positions, timeout_s)
        known = len(self.positions)
        woken = await self.log.wait_for(self.name, self.positions, timeout_s, partitions=known)
        self._recheck = self._recheck or woken
        return woken

    def advance(self, batch: Batch) -> None:
        """`batch` was delivered: read on after it."""
        self.positions[batch.partition] = batch.next_offset

    def skip(self, gap: Gap) -> None:
        """Continue each gap's partition from its earliest retained offset."""
        for entry in gap.entries:
            self.positions[entry.partition] = entry.earliest
