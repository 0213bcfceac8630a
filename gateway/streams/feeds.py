"""Live tails shared by a process's WebSocket streams: one read and one frame per append
of a partition, pushed to every subscriber at the tail without waking its task.

A subscriber that has caught up with a partition joins that partition's `Feed`.
The feed is one task asleep on the log's wake-up at the tail; when records
arrive it reads them once, renders the `records` frame once (its JSON text and
the same as a whole WebSocket frame on the wire), and offers it to each
subscriber in turn, in the same call: the subscriber writes the bytes to its
connection if its credit and its send buffer allow, and otherwise leaves the
feed and wakes its own task, which reads on from its own position (as every
subscriber that is behind does). So the cost of a delivery to a caught-up
subscriber is a credit check and a write; fan-out neither re-reads, re-encodes
nor wakes a task per connection, and the traffic it counts is charged once a
frame per tenant, not once a subscriber. Used on the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.http.tenant_usage import Traffic
from gateway.streams.filters import RecordFilter
from gateway.streams.follower import SharedFrames
from storage.backend import LogStore
from storage.errors import StorageError
from storage.records import Record, ValueFormat


def wire_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, unfragmented WebSocket text frame (RFC 6455 5.2): what
    a server sends for a text message on a connection without extensions."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


@dataclass(frozen=True, slots=True)
class Frame:
    """One run of a partition's records, rendered once for every subscriber (of a
    filtered feed: the run's records that match, maybe none)."""

    partition: int
    records: Sequence[Record]
    count: int  # len(records)
    first_offset: int
    next_offset: int
    size: int  # stored bytes of the records
    wire: bytes  # the whole WebSocket frame


Taken = list[Traffic]
"""Per frame: the traffic counters of the subscribers that took it, one entry each."""


class Subscriber(Protocol):
    def offer(self, frame: Frame, taken: Taken) -> bool:
        """Stay (True: `frame` taken, counted in `taken`, or already had), or leave the
        feed (False) and catch up on its own."""
        ...

    def dropped(self, partition: int) -> None:
        """The feed stopped: read on alone from the current position."""
        ...

    def topic_grew(self) -> None:
        """Partitions were added to the topic: a stream of every partition follows them."""
        ...


_Key = tuple[int, str, int, ValueFormat, RecordFilter | None]
_Topic = tuple[int, str]  # (id of the log, stored topic name)


def charge(frame: Frame, taken: Taken) -> None:
    """Count `frame` once for each subscriber that took it, one call per tenant."""
    if not taken:
        return
    first = taken[0]
    if all(map(operator.is_, taken, itertools.repeat(first))):  # one tenant: no loop in Python
        n = len(taken)
        first.consumed(frame.size * n, frame.count * n)
        return
    times: dict[int, tuple[Traffic, int]] = {}
    for traffic in taken:  # by identity: the counters are mutable, unhashable records
        held = times.get(id(traffic))
        times[id(traffic)] = (traffic, 1 if held is None else held[1] + 1)
    for traffic, n in times.values():
        traffic.consumed(frame.size * n, frame.count * n)


class Feed:
    """The live tail of one partition in this process, and who is at it."""

    def __init__(
        self,
        feeds: Feeds,
        key: _Key,
        log: LogStore,
        tail: int,
    ) -> None:
        self.feeds = feeds
        self.key = key
        self.log = log
        self.name = key[1]
        self.topic: _Topic = (key[0], key[1])
        self.partition = key[2]
        self.fmt = key[3]
        self.only = key[4]
        self.tail = tail  # the next offset this feed reads
        self.subscribers: dict[Subscriber, None] = {}
        self.task: asyncio.Task[None] | None = None

    def discard(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)
        if not self.subscribers:
            self.feeds.forget(self)

    async def run(self) -> None:
        shared, settings = self.feeds.shared, self.feeds
        try:
            while self.subscribers:
                # No timeout: an append wakes it, and so do a deleted topic and a closing
                # store (whose next call then raises); a feed left by all is cancelled.
                await self.log.wait_for(self.name, {self.partition: self.tail}, math.inf)
                result = await shared.reads.read(
                    self.log,
                    self.name,
                    self.partition,
                    self.tail,
                    max_records=settings.frame_records,
                    max_bytes=settings.frame_bytes,
                )
                if not result.records:
                    continue
                records: Sequence[Record] = result.records
                if self.only is not None:
                    records = self.only.apply(records)
                text = shared.frame(records, self.partition, self.fmt, self.only is not None)
                frame = Frame(
                    self.partition,
                    records,
                    len(records),
                    result.records[0].offset,
                    result.next_offset,
                    result.bytes,
                    wire_frame(text.encode()) if records else b"",
                )
                self.tail = result.next_offset
                taken: Taken = []
                subscribers = self.subscribers
                for subscriber in list(subscribers):
                    if not subscriber.offer(frame, taken):
                        subscribers.pop(subscriber, None)
                charge(frame, taken)
        except StorageError:
            pass  # the topic went, or the tail is gone: each subscriber finds out alone
        finally:
            left, self.subscribers = list(self.subscribers), {}
            self.feeds.forget(self)
            for subscriber in left:
                subscriber.dropped(self.partition)


class Feeds:
    """The feeds of a process, one per (log, topic, partition, value format, filter)."""

    def __init__(self, shared: SharedFrames, *, frame_records: int, frame_bytes: int) -> None:
        self.shared = shared
        self.frame_records = frame_records
        self.frame_bytes = frame_bytes
        self._feeds: dict[_Key, Feed] = {}
        # Per fed topic: the partitions its subscribers knew it to have, and the task
        # that waits for more (a parked subscriber reads nothing that would tell it).
        self._counts: dict[_Topic, int] = {}
        self._watches: dict[_Topic, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._feeds)

    def join(
        self,
        subscriber: Subscriber,
        log: LogStore,
        name: str,
        partition: int,
        fmt: ValueFormat,
        position: int,
        only: RecordFilter | None = None,
        *,
        partitions: int | None,
    ) -> Feed | None:
        """Add `subscriber`, at `position`, to the partition's feed (made if needed); None
        when the feed is past that position (the subscriber is behind: it reads alone).
        `partitions`: how many the subscriber knows the topic to have, when it follows
        the partitions added to it (None: it keeps to its own, nothing to watch for)."""
        topic = (id(log), name)
        known = self._counts.get(topic)
        if partitions is not None and (known is None or partitions < known):
            self._counts[topic] = partitions
            # The watch waits for more than it knew: one that knows fewer starts again.
            self._watch(topic, log, name)
        key = (id(log), name, partition, fmt, only)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = Feed(self, key, log, position)
            feed.subscribers[subscriber] = None
            feed.task = asyncio.ensure_future(feed.run())
            return feed
        if position < feed.tail:
            return None
        feed.subscribers[subscriber] = None
        return feed

    def _watch(self, topic: _Topic, log: LogStore, name: str) -> None:
        running = self._watches.get(topic)
        if running is not None:
            running.cancel()
        self._watches[topic] = asyncio.ensure_future(self._watch_growth(topic, log, name))

    async def _watch_growth(self, topic: _Topic, log: LogStore, name: str) -> None:
        """While the topic is fed: wait on the log until it has more partitions than its
        subscribers knew (`wait_for(..., partitions=n)`, no timer: an idle topic never
        wakes it), then tell them, one look at the topic for all its subscribers."""
        try:
            while topic in self._counts:
                known = self._counts[topic]
                await log.wait_for(name, {}, math.inf, partitions=known)
                count = (await log.get_topic(name)).partitions
                if count <= known:
                    continue  # woken without growth: wait again
                self._counts[topic] = count
                for feed in [f for f in self._feeds.values() if f.topic == topic]:
                    for subscriber in list(feed.subscribers):
                        subscriber.topic_grew()
        except StorageError:
            pass  # the topic went, or the store closed: each feed finds out on its own
        finally:
            if self._watches.get(topic) is asyncio.current_task():
                del self._watches[topic]

    def forget(self, feed: Feed) -> None:
        if self._feeds.get(feed.key) is feed:
            del self._feeds[feed.key]
            if not any(f.topic == feed.topic for f in self._feeds.values()):
                self._counts.pop(feed.topic, None)  # nobody follows it here: stop watching
                watch = self._watches.pop(feed.topic, None)
                if watch is not None:
                    watch.cancel()
        task = feed.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    async def close(self) -> None:
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        tasks += self._watches.values()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
