"""Parked WebSocket streams learn of partitions added to their topic from a wait on the
log (`wait_for(..., partitions=n)`), one per fed topic, never from looking now and then."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import pytest

from gateway.streams.feeds import Feeds, Frame, Taken
from gateway.streams.follower import SharedFrames
from storage.backend import LogStore
from storage.embedded.engine import EmbeddedLogStore
from storage.records import TopicConfig, TopicInfo, ValueFormat

pytestmark = pytest.mark.anyio


class Watched:
    """The embedded log, with the calls the feeds' growth watch makes counted."""

    def __init__(self, log: EmbeddedLogStore) -> None:
        self.log = log
        self.looks = 0  # get_topic calls
        self.growth_waits: list[int] = []  # the `partitions` of each wait naming one
        self.waiting = asyncio.Event()

    async def get_topic(self, name: str) -> TopicInfo:
        self.looks += 1
        return await self.log.get_topic(name)

    async def wait_for(
        self,
        name: str,
        positions: Mapping[int, int],
        timeout_s: float,
        *,
        partitions: int | None = None,
    ) -> bool:
        if partitions is not None:
            assert timeout_s == math.inf  # no timer: an idle topic never wakes it
            self.growth_waits.append(partitions)
            self.waiting.set()
        return await self.log.wait_for(name, positions, timeout_s, partitions=partitions)

    def __getattr__(self, name: str) -> object:
        return getattr(self.log, name)


def as_log(watched: Watched) -> LogStore:
    return cast(LogStore, watched)  # the calls a feed makes, passed on


JSON = ValueFormat.JSON


class Parked:
    """A subscriber that takes every frame and notes being told of new partitions."""

    def __init__(self) -> None:
        self.grew = asyncio.Event()

    def offer(self, frame: Frame, taken: Taken) -> bool:
        return True

    def dropped(self, partition: int) -> None:
        pass

    def topic_grew(self) -> None:
        self.grew.set()


async def test_parked_subscribers_are_told_of_new_partitions_by_the_logs_wait(
    tmp_path: Path,
) -> None:
    log = await EmbeddedLogStore.open(str(tmp_path))
    try:
        await log.create_topic("t", 2, TopicConfig())
        watched = Watched(log)
        feeds = Feeds(SharedFrames(1 << 20), frame_records=100, frame_bytes=1 << 20)
        subscribers = [Parked(), Parked()]
        for partition, subscriber in enumerate(subscribers):
            feed = feeds.join(subscriber, as_log(watched), "t", partition, JSON, 0, partitions=2)
            assert feed is not None
        await asyncio.wait_for(watched.waiting.wait(), 5)
        assert watched.growth_waits == [2]
        assert watched.looks == 0  # idle: the topic is not looked at
        await log.add_partitions("t", 3)
        for subscriber in subscribers:
            await asyncio.wait_for(subscriber.grew.wait(), 5)
        # Then it waits again, for more than the topic has now, once for the topic.
        while watched.growth_waits != [2, 3]:
            watched.waiting.clear()
            await asyncio.wait_for(watched.waiting.wait(), 5)
        assert watched.looks == 1
        await feeds.close()
    finally:
        await log.close()


async def test_the_watch_ends_with_the_topics_last_feed(tmp_path: Path) -> None:
    log = await EmbeddedLogStore.open(str(tmp_path))
    try:
        await log.create_topic("t", 1, TopicConfig())
        watched = Watched(log)
        feeds = Feeds(SharedFrames(1 << 20), frame_records=100, frame_bytes=1 << 20)
        subscriber = Parked()
        feed = feeds.join(subscriber, as_log(watched), "t", 0, JSON, 0, partitions=1)
        assert feed is not None
        await asyncio.wait_for(watched.waiting.wait(), 5)
        (watch,) = feeds._watches.values()
        feed.discard(subscriber)
        await asyncio.wait({watch}, timeout=5)  # the cancelled watch lets go of its wait
        assert watch.cancelled()
        assert not log._topics["t"].growth_waiters
        assert len(feeds) == 0
    finally:
        await log.close()


async def test_subscribers_of_chosen_partitions_start_no_watch(tmp_path: Path) -> None:
    log = await EmbeddedLogStore.open(str(tmp_path))
    try:
        await log.create_topic("t", 3, TopicConfig())
        watched = Watched(log)
        feeds = Feeds(SharedFrames(1 << 20), frame_records=100, frame_bytes=1 << 20)
        subscriber = Parked()
        feed = feeds.join(subscriber, as_log(watched), "t", 1, JSON, 0, partitions=None)
        assert feed is not None
        assert not feeds._watches  # a watch would be a task from the join on
        assert watched.growth_waits == []
        assert not log._topics["t"].growth_waiters
        await log.add_partitions("t", 4)
        assert not subscriber.grew.is_set()  # it keeps to partition 1 anyway
        await feeds.close()
    finally:
        await log.close()
