"""A stream of every partition learns of partitions added to its topic from its wait on
the log (the topic's partition count is part of it), not by waking to look."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.streams.follower import Batch, Follower, SharedFrames
from storage.embedded.engine import EmbeddedLogStore
from storage.records import NewRecord, TopicConfig

pytestmark = pytest.mark.anyio


async def test_an_idle_stream_of_every_partition_is_woken_by_new_partitions(
    tmp_path: Path,
) -> None:
    log = await EmbeddedLogStore.open(str(tmp_path))
    try:
        await log.create_topic("t", 1, TopicConfig())
        shared = SharedFrames(1 << 20)
        every = Follower(log, "t", {0: 0}, shared, frame_bytes=1 << 20, every=True)
        some = Follower(log, "t", {0: 0}, shared, frame_bytes=1 << 20)
        waits = [asyncio.ensure_future(f.wait(30)) for f in (every, some)]
        await asyncio.sleep(1.3)  # longer than a stream used to sleep before looking
        assert not any(w.done() for w in waits)
        assert not await every.grown()  # nothing ended a wait: the topic is not looked at
        started = time.monotonic()
        await log.add_partitions("t", 3)
        assert await asyncio.wait_for(waits[0], 5)
        assert time.monotonic() - started < 1
        assert await every.grown()
        assert every.positions == {0: 0, 1: 0, 2: 0}
        await log.append("t", 2, [NewRecord(b"new")])
        batch = await every.poll(10)
        assert isinstance(batch, Batch)
        assert [r.value for r in batch.records] == [b"new"]
        # A stream of a subset keeps to it: its wait goes on.
        assert not waits[1].done()
        waits[1].cancel()
    finally:
        await log.close()
