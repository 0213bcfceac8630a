"""A state machine of one partition against a list of records: the engine must agree exactly.

Appends of odd records (null vs empty keys and values, binary, repeated and
unicode header names), reads at random offsets with random limits, segment
rolls (tiny segments), retention by bytes, clean reopens and crash reopens
(the store abandoned without its final sync, index flush or clean marker).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.errors import OffsetOutOfRange
from storage.records import NewRecord, Record, TopicConfig

T = TypeVar("T")

maybe_bytes = st.one_of(st.none(), st.just(b""), st.binary(max_size=60))
header_names = st.sampled_from(["a", "a", "trace-id", "ünï", "名前", ""])
headers = st.lists(st.tuples(header_names, st.binary(max_size=10)), max_size=4).map(tuple)
new_records = st.builds(
    NewRecord,
    value=maybe_bytes,
    key=maybe_bytes,
    headers=headers,
    timestamp=st.one_of(st.none(), st.integers(0, 2**45)),
)
batches = st.lists(new_records, min_size=1, max_size=6)

CONFIG = TopicConfig(segment_bytes=400, retention_ms=None, max_record_bytes=10_000)
OPTIONS = EngineOptions(shards=1, index_interval_bytes=100)


class PartitionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp(prefix="tidegate-model-")
        self.model: list[tuple[NewRecord, int, int]] = []  # record, earliest and latest ts
        self.start = 0
        self.store = self.run(self.open())
        self.run(self.store.create_topic("t", 1, CONFIG))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def open(self) -> EmbeddedLogStore:
        return await EmbeddedLogStore.open(self.dir, options=OPTIONS)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(batch=batches)
    def append(self, batch: list[NewRecord]) -> None:
        before = time.time_ns() // 1_000_000
        result = self.run(self.store.append("t", 0, batch))
        after = time.time_ns() // 1_000_000
        assert result.base_offset == len(self.model)
        assert result.count == len(batch)
        self.model.extend((r, before, after) for r in batch)

    @rule(data=st.data(), max_records=st.integers(1, 20), max_bytes=st.integers(1, 600))
    def read(self, data: st.DataObject, max_records: int, max_bytes: int) -> None:
        end = len(self.model)
        offset = data.draw(st.integers(self.start, end))
        fetched = self.run(
            self.store.read("t", 0, offset, max_records=max_records, max_bytes=max_bytes)
        )
        assert (fetched.start_offset, fetched.end_offset) == (self.start, end)
        got = list(fetched.records)
        if offset < end:
            assert 1 <= len(got) <= max_records
        else:
            assert got == []
        assert fetched.next_offset == offset + len(got)
        if len(got) > 1:
            assert fetched.bytes <= max_bytes
        for i, record in enumerate(got):
            self.check(offset + i, record)
        # A reader asking for everything gets everything.
        if max_records >= end - offset and max_bytes >= sum(r.size() for r, _, _ in self.model):
            assert len(got) == end - offset

    def check(self, offset: int, record: Record) -> None:
        sent, earliest, latest = self.model[offset]
        assert record.offset == offset
        assert (record.key, record.value, record.headers) == (sent.key, sent.value, sent.headers)
        if sent.timestamp is None:
            assert earliest <= record.timestamp <= latest
        else:
            assert record.timestamp == sent.timestamp

    @rule(offset=st.integers(-3, 3))
    def read_out_of_range(self, offset: int) -> None:
        target = self.start - 1 - abs(offset) if offset < 0 else len(self.model) + 1 + offset
        with pytest.raises(OffsetOutOfRange):
            self.run(self.store.read("t", 0, target))

    @rule(limit=st.integers(0, 1500))
    def retention_by_bytes(self, limit: int) -> None:
        config = TopicConfig.from_dict({**CONFIG.to_dict(), "retention_bytes": limit})
        self.run(self.store.update_topic_config("t", config))
        self.run(self.store.enforce_retention())
        info = self.run(self.store.offsets("t", 0))
        assert self.start <= info.start_offset <= info.end_offset == len(self.model)
        self.start = info.start_offset
        self.run(self.store.update_topic_config("t", CONFIG))

    @rule()
    def reopen_clean(self) -> None:
        self.run(self.store.close())
        self.store = self.run(self.open())
        assert self.store.recovery.clean_shutdown

    @rule()
    def reopen_after_crash(self) -> None:
        self.run(self.store._abandon())
        self.store = self.run(self.open())
        assert not self.store.recovery.clean_shutdown
        assert self.store.recovery.truncated_bytes == 0

    @invariant()
    def offsets_match(self) -> None:
        info = self.run(self.store.offsets("t", 0))
        assert (info.start_offset, info.end_offset) == (self.start, len(self.model))


PartitionMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
TestPartitionModel = PartitionMachine.TestCase
