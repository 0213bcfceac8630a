"""Woken fetches share one read within an event-loop pass, never past it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.http.woken import WokenReads
from storage.embedded.engine import EmbeddedLogStore
from storage.records import NewRecord, TopicConfig

pytestmark = pytest.mark.anyio


async def test_one_read_per_pass_and_position_then_fresh(tmp_path: Path) -> None:
    log = await EmbeddedLogStore.open(str(tmp_path))
    try:
        await log.create_topic("t", 1, TopicConfig())
        await log.append("t", 0, [NewRecord(value=b"1")])
        woken = WokenReads()
        first = await woken.read(log, "t", 0, 0, max_records=10, max_bytes=1 << 20)
        again = await woken.read(log, "t", 0, 0, max_records=10, max_bytes=1 << 20)
        other = await woken.read(log, "t", 0, 0, max_records=1, max_bytes=1 << 20)
        assert again is first
        assert other is not first  # other bounds, another read
        assert woken.shared == 1
        await log.append("t", 0, [NewRecord(value=b"2")])
        await asyncio.sleep(0)  # the pass is over: what was read is not kept
        later = await woken.read(log, "t", 0, 0, max_records=10, max_bytes=1 << 20)
        assert [r.value for r in later.records] == [b"1", b"2"]
    finally:
        await log.close()
