"""Idempotent appends: a partition knows which request identities it holds, also
after a crash, a clean restart, segment rolls and a partial failure, and answers a
retry with the original offsets instead of appending again."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.embedded.codec import decode_records, frame_batch, read_prefix, validate_batch
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.embedded.producers import (
    Held,
    ProducerState,
    Window,
    decode_snapshot,
    encode_snapshot,
    rebuilt,
)
from storage.errors import DiskFull, InvalidConfig
from storage.records import (
    AppendResult,
    Durability,
    NewRecord,
    PackedRecords,
    TopicConfig,
    pack_records,
)
from tests.storage.faults import FullDirectory
from tests.storage.layout import partition_dir

TOPIC = "t"
NOW = 1_700_000_000_000


def ident(n: int) -> bytes:
    return n.to_bytes(16, "big")


def packed(tag: str, n: int = 3) -> PackedRecords:
    return pack_records([NewRecord(f"{tag}-{i}".encode()) for i in range(n)], now_ms=NOW)


async def open_store(path: Path, fio: FileIO | None = None, **kw: object) -> EmbeddedLogStore:
    options = EngineOptions(shards=2, **kw)  # type: ignore[arg-type]
    return await EmbeddedLogStore.open(str(path), options=options, fileio=fio)


async def values(store: EmbeddedLogStore, partition: int) -> list[bytes | None]:
    result = await store.read(TOPIC, partition, 0, max_records=100_000, max_bytes=1 << 30)
    return [r.value for r in result.records]


# -- the batch format --------------------------------------------------------------------


def test_a_batch_carries_its_identity_under_the_crc() -> None:
    records = packed("a")
    plain = frame_batch(records)
    carried = frame_batch(records, identity=ident(7), appended_ms=NOW)
    assert len(carried) == len(plain) + 24
    for raw in (plain, carried):
        _header, decoded = decode_records(raw)
        assert [r.value for r in decoded] == [b"a-0", b"a-1", b"a-2"]
    assert validate_batch(carried).attributes == 1
    flipped = bytearray(carried)
    flipped[40] ^= 0xFF  # inside the identity
    with pytest.raises(ValueError, match="CRC"):
        validate_batch(bytes(flipped))
    assert read_prefix(carried)[1] == len(carried)


# -- the state, pure ---------------------------------------------------------------------

ops = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 5), st.integers(0, 2_000)), max_size=200
)


@given(ops, st.integers(0, 12), st.integers(0, 5_000), st.integers(0, 3_000))
def test_state_stays_in_its_window_and_rebuilds_equal(
    steps: list[tuple[int, int, int]], max_batches: int, max_age_ms: int, later: int
) -> None:
    window = Window(max_batches=max_batches, max_age_ms=max_age_ms)
    live = ProducerState(window)
    log: list[tuple[bytes, Held]] = []
    now, offset = NOW, 0
    for who, count, step in steps:
        now += step
        if live.get(ident(who), now) is not None:
            continue  # a retry: nothing is appended
        held = Held(offset, count, now, now)
        live.add(ident(who), held, now)
        log.append((ident(who), held))
        offset += count
        assert len(live) <= max_batches
        assert all(h.appended_ms >= now - max_age_ms for _, h in live.items())
    end = now + later
    from_log = rebuilt(window, log, end)
    live.expire(end)
    assert from_log.items() == live.items()
    # And through a snapshot taken at any point of the log.
    cut = len(log) // 2
    head = rebuilt(window, log[:cut], now)
    at = log[cut][1].base_offset if cut < len(log) else offset
    decoded = decode_snapshot(encode_snapshot(head, at), window)
    assert decoded is not None
    assert decoded[0] == at
    assert rebuilt(window, log[cut:], end, decoded[1]).items() == live.items()


def test_a_damaged_snapshot_is_refused() -> None:
    state = ProducerState(Window())
    state.add(ident(1), Held(0, 2, NOW, NOW), NOW)
    data = encode_snapshot(state, 2)
    assert decode_snapshot(data, Window()) is not None
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x01
        assert decode_snapshot(bytes(damaged), Window()) is None
    assert decode_snapshot(data[:-1], Window()) is None


# -- the engine --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_retry_appends_nothing_and_gets_the_offsets(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        await store.create_topic(TOPIC, 1, TopicConfig())
        await store.append_packed(TOPIC, 0, packed("x"))
        first = await store.append_packed(TOPIC, 0, packed("a"), identity=ident(1))
        again = await store.append_packed(TOPIC, 0, packed("a"), identity=ident(1))
        assert (again.base_offset, again.count, again.duplicate) == (3, 3, True)
        assert not first.duplicate
        assert (await store.offsets(TOPIC, 0)).end_offset == 6
        # Concurrent duplicates in one pass: one append, the same offsets for all.
        results = await asyncio.gather(
            *(store.append_packed(TOPIC, 0, packed("b"), identity=ident(2)) for _ in range(20))
        )
        assert {(r.base_offset, r.count) for r in results} == {(6, 3)}
        assert sum(not r.duplicate for r in results) == 1
        assert (await store.offsets(TOPIC, 0)).end_offset == 9
    finally:
        await store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["crash", "clean"])
async def test_the_partition_knows_what_it_holds_after_a_restart(tmp_path: Path, how: str) -> None:
    config = TopicConfig(segment_bytes=2048, durability=Durability.FSYNC)
    store = await open_store(tmp_path)
    answered: dict[int, AppendResult] = {}
    try:
        await store.create_topic(TOPIC, 2, config)
        for n in range(120):  # many segment rolls, idempotent and plain appends mixed
            if n % 3 == 0:
                await store.append_packed(TOPIC, n % 2, packed(f"plain{n}"))
            else:
                answered[n] = await store.append_packed(
                    TOPIC, n % 2, packed(f"idem{n}"), identity=ident(n)
                )
    finally:
        await (store._abandon() if how == "crash" else store.close())
    store = await open_store(tmp_path)
    try:
        assert store.recovery.clean_shutdown is (how == "clean")
        ends = [(await store.offsets(TOPIC, p)).end_offset for p in (0, 1)]
        for n, first in answered.items():
            again = await store.append_packed(TOPIC, n % 2, packed(f"idem{n}"), identity=ident(n))
            assert again.duplicate
            assert (again.base_offset, again.count) == (first.base_offset, first.count)
        assert [(await store.offsets(TOPIC, p)).end_offset for p in (0, 1)] == ends
        snapshots = [
            f for f in os.listdir(partition_dir(tmp_path, TOPIC, 0)) if f.endswith(".producers")
        ]
        assert 1 <= len(snapshots) <= 2
    finally:
        await store.close()


@pytest.mark.anyio
async def test_what_recovery_read_from_the_log_survives_the_next_roll_and_crash(
    tmp_path: Path,
) -> None:
    """Identities recovered from the active segment (not from a snapshot) are
    snapshotted when that segment closes, even with no idempotent append since."""
    config = TopicConfig(segment_bytes=1024)
    store = await open_store(tmp_path)
    await store.create_topic(TOPIC, 1, config)
    first = await store.append_packed(TOPIC, 0, packed("idem"), identity=ident(5))
    await store._abandon()
    store = await open_store(tmp_path)
    for n in range(40):  # plain appends only: several rolls
        await store.append_packed(TOPIC, 0, packed(f"plain{n}"))
    assert len(store._topics[TOPIC].partitions[0].segments) > 3
    await store._abandon()
    store = await open_store(tmp_path)
    try:
        again = await store.append_packed(TOPIC, 0, packed("idem"), identity=ident(5))
        assert again.duplicate
        assert again.base_offset == first.base_offset
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_window_bounds_what_is_remembered(tmp_path: Path) -> None:
    store = await open_store(tmp_path, idempotency_window=Window(max_batches=4))
    try:
        await store.create_topic(TOPIC, 1, TopicConfig())
        for n in range(10):
            await store.append_packed(TOPIC, 0, packed(f"{n}", 1), identity=ident(n))
        newest = await store.append_packed(TOPIC, 0, packed("9", 1), identity=ident(9))
        assert newest.duplicate
        oldest = await store.append_packed(TOPIC, 0, packed("0", 1), identity=ident(0))
        assert not oldest.duplicate  # outside the window: appended again, as documented
    finally:
        await store._abandon()
    store = await open_store(tmp_path, idempotency_window=Window(max_batches=4))
    try:
        again = await store.append_packed(TOPIC, 0, packed("9", 1), identity=ident(9))
        assert again.duplicate
        assert again.base_offset == 9
        assert not (
            await store.append_packed(TOPIC, 0, packed("1", 1), identity=ident(1))
        ).duplicate
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_five_partition_batch_failing_on_its_third_then_retried(tmp_path: Path) -> None:
    """The disk under partition 2 is full: 0, 1, 3, 4 are appended, 2 fails. The
    retry with the same identity appends only partition 2, and every result is
    what a first success would have answered: every record exactly once."""
    fio = FullDirectory()
    store = await open_store(tmp_path, fio)
    try:
        await store.create_topic(TOPIC, 5, TopicConfig(durability=Durability.FSYNC))
        for p in range(5):
            await store.append_packed(TOPIC, p, packed(f"before{p}", p + 1))
        batches = [(p, packed(f"req-p{p}", 4)) for p in range(5)]
        fio.full.add(str(partition_dir(tmp_path, TOPIC, 2)))
        first = await store.append_batches(TOPIC, batches, identity=ident(42))
        assert isinstance(first[2], DiskFull)
        assert all(isinstance(first[p], AppendResult) for p in (0, 1, 3, 4))
        fio.full.clear()
        retry = await store.append_batches(TOPIC, batches, identity=ident(42))
        assert all(isinstance(r, AppendResult) for r in retry)
        for p in (0, 1, 3, 4):
            was = first[p]
            assert isinstance(was, AppendResult)
            assert retry[p] == AppendResult(p, was.base_offset, 4, was.timestamp, duplicate=True)
        assert retry[2] == AppendResult(2, 3, 4, NOW)
        for p in range(5):
            expected = [f"before{p}-{i}".encode() for i in range(p + 1)]
            expected += [f"req-p{p}-{i}".encode() for i in range(4)]
            assert await values(store, p) == expected
        third = await store.append_batches(TOPIC, batches, identity=ident(42))
        assert all(isinstance(r, AppendResult) and r.duplicate for r in third)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_identities_are_checked(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        await store.create_topic(TOPIC, 1, TopicConfig())
        with pytest.raises(InvalidConfig, match="16 bytes"):
            await store.append_packed(TOPIC, 0, packed("a"), identity=b"short")
    finally:
        await store.close()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 15), st.booleans()), min_size=1, max_size=40))
def test_rebuilt_from_the_log_equals_the_live_state(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, bool]]
) -> None:
    """Whatever mix of idempotent appends, retries and segment rolls came before a
    crash, the state recovered from the log answers every identity as the live
    one did."""
    path = tmp_path_factory.mktemp("rebuild")

    async def run() -> None:
        window = Window(max_batches=6)
        config = TopicConfig(segment_bytes=400)
        store = await open_store(path, idempotency_window=window)
        await store.create_topic(TOPIC, 1, config)
        for who, plain in steps:
            if plain:
                await store.append_packed(TOPIC, 0, packed(f"p{who}", 2))
            await store.append_packed(TOPIC, 0, packed(f"i{who}", 2), identity=ident(who))
        live = store._topics[TOPIC].partitions[0].producers.items()
        await store._abandon()
        store = await open_store(path, idempotency_window=window)
        try:
            assert store._topics[TOPIC].partitions[0].producers.items() == live
        finally:
            await store.close()

    asyncio.run(run())
