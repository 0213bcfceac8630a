"""The coordinator over the embedded GroupStore, with a clock the test turns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.coordinator.membership import GroupState, MustRejoin, RejoinReason
from gateway.coordinator.service import GroupService, NotAssigned
from storage.groups import OffsetCommit
from storage.open import Backend, StorageConfig, open_backend
from storage.records import TopicConfig

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
async def backend(anyio_backend: str, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(StorageConfig(data_dir=str(tmp_path / "data"), shards=1))
    await opened.log.create_topic("t~orders", 6, TopicConfig())
    try:
        yield opened
    finally:
        await opened.close()


async def test_three_members_share_six_partitions_and_rebalance(backend: Backend) -> None:
    clock = Clock()
    service = GroupService(backend.groups, backend.log, clock=clock)
    for member in ("a", "b", "c"):
        await service.join("t~g", member, ["t~orders"], 1_000)
    for member in ("a", "b", "c"):  # everyone catches up with the last generation
        loaded = await service.join("t~g", member, ["t~orders"], 1_000)
    group = loaded.group
    assert group.state is GroupState.STABLE
    owned = [set(group.assigned(m)) for m in ("a", "b", "c")]
    assert [len(o) for o in owned] == [2, 2, 2]
    assert set().union(*owned) == {("t~orders", p) for p in range(6)}
    generation = group.generation

    # c goes silent; a's heartbeat past c's session removes it.
    clock.ms += 600
    await service.heartbeat("t~g", "a", generation)
    await service.heartbeat("t~g", "b", generation)
    clock.ms += 600
    with pytest.raises(MustRejoin) as rejoin:
        await service.heartbeat("t~g", "a", generation)
    assert rejoin.value.reason is RejoinReason.REBALANCE_IN_PROGRESS
    # c's commit of its old generation is fenced: nothing lands.
    with pytest.raises(MustRejoin) as fenced:
        await service.commit("t~g", "c", generation, [OffsetCommit("t~orders", 4, 1)])
    assert fenced.value.reason is RejoinReason.STALE_GENERATION
    assert await backend.groups.committed_offsets("t~g") == []
    after = (await service.join("t~g", "a", ["t~orders"], 1_000)).group
    after = (await service.join("t~g", "b", ["t~orders"], 1_000)).group
    assert after.generation == generation + 1
    assert {len(after.assigned(m)) for m in ("a", "b")} == {3}
    assert set(owned[0]) <= set(after.assigned("a"))  # sticky

    # a commits what it owns; not what it does not.
    mine = after.assigned("a")[0]
    await service.commit(
        "t~g", "a", after.generation, [OffsetCommit(mine.topic, mine.partition, 3)]
    )
    theirs = after.assigned("b")[0]
    with pytest.raises(NotAssigned):
        await service.commit(
            "t~g", "a", after.generation, [OffsetCommit(theirs.topic, theirs.partition, 3)]
        )
    assert [(c.partition, c.offset) for c in await backend.groups.committed_offsets("t~g")] == [
        (mine.partition, 3)
    ]

    # c comes back under its old member id; b leaves.
    back = (await service.join("t~g", "c", ["t~orders"], 1_000)).group
    assert back.member("c") is not None
    assert back.generation == after.generation + 1
    left = (await service.leave("t~g", "b")).group
    assert left.member("b") is None
    assert left.generation == back.generation + 1
    assert set(left.assigned("a")) | set(left.assigned("c")) == {("t~orders", p) for p in range(6)}


async def test_growing_a_topic_starts_a_new_generation(backend: Backend) -> None:
    service = GroupService(backend.groups, backend.log, clock=Clock())
    loaded = await service.join("t~g", "a", ["t~orders"], 10_000)
    await backend.log.add_partitions("t~orders", 8)
    refreshed = await service.refresh("t~g", loaded)
    assert refreshed.group.generation == loaded.group.generation + 1
    assert len(refreshed.group.assigned("a")) == 8


async def test_two_gateways_share_one_group_through_the_store(backend: Backend) -> None:
    """Two services over one store, as two gateway processes: what one changes the
    other sees at its next call, whatever it remembers (no sticky sessions)."""
    clock = Clock()
    one = GroupService(backend.groups, backend.log, clock=clock)
    two = GroupService(backend.groups, backend.log, clock=clock)
    a = (await one.join("t~g", "a", ["t~orders"], 10_000)).group
    assert len(a.assigned("a")) == 6
    await one.heartbeat("t~g", "a", a.generation)  # `one` now remembers this generation
    b = (await two.join("t~g", "b", ["t~orders"], 10_000)).group
    assert b.generation == a.generation + 1
    with pytest.raises(MustRejoin) as told:  # `one` must not answer from memory
        await one.heartbeat("t~g", "a", a.generation)
    assert told.value.reason is RejoinReason.REBALANCE_IN_PROGRESS
    with pytest.raises(MustRejoin):
        await one.commit("t~g", "a", a.generation, [OffsetCommit("t~orders", 0, 1)])
    again = (await one.join("t~g", "a", ["t~orders"], 10_000)).group  # a write from memory
    assert again.generation == b.generation  # the compare-and-set saw `two`'s write
    assert set(again.assigned("a")).isdisjoint(again.assigned("b"))
    loaded = await two.heartbeat("t~g", "b", b.generation)
    assert loaded.group == again


async def test_a_heartbeat_with_a_deadline_does_not_wait_out_a_busy_group(
    backend: Backend,
) -> None:
    """While the group's lock is taken (a join storm in this process), a heartbeat
    with a deadline answers from the group as just read: it may act, or must
    rejoin; the write it would have made waits for a later request."""
    clock = Clock()
    service = GroupService(backend.groups, backend.log, clock=clock)
    await service.join("t~g", "a", ["t~orders"], 1_000)
    await service.join("t~g", "b", ["t~orders"], 10_000)
    joined = await service.join("t~g", "a", ["t~orders"], 1_000)
    generation = joined.group.generation
    held = asyncio.Event()
    release = asyncio.Event()

    async def storm() -> None:
        async with service._locks.hold("t~g"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(storm())
    await held.wait()
    loop = asyncio.get_running_loop()
    try:
        clock.ms += 500  # a's touch is due (a tenth of its session has passed)
        fresh = await service.load("t~g")
        assert fresh is not None
        beat = service.heartbeat("t~g", "a", generation, loaded=fresh, deadline=loop.time())
        assert await asyncio.wait_for(beat, 10) is fresh  # may act; the touch waits
        with pytest.raises(MustRejoin):  # refused on the fresh read: no write, no wait
            await asyncio.wait_for(
                service.heartbeat("t~g", "a", generation - 1, loaded=fresh, deadline=loop.time()),
                10,
            )
        clock.ms += 1_000  # a's session ran out: b must rejoin, and a's expiry wants a write
        with pytest.raises(MustRejoin) as told:
            await asyncio.wait_for(
                service.heartbeat("t~g", "b", generation, loaded=fresh, deadline=loop.time()),
                10,
            )
        assert told.value.reason is RejoinReason.REBALANCE_IN_PROGRESS
        unchanged = await backend.groups.get_group("t~g")
        assert unchanged is not None
        assert unchanged.version == fresh.version  # nothing written past the deadline
    finally:
        release.set()
        await holder
    with pytest.raises(MustRejoin):  # the lock free again: the expiry is written now
        await service.heartbeat("t~g", "b", generation)
    after = await service.load("t~g")
    assert after is not None
    assert after.group.generation == generation + 1
    assert after.group.member("a") is None
