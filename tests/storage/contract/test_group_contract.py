"""What every GroupStore promises, run against each engine through open_backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from storage.errors import GroupNotFound, MemberFenced, VersionConflict
from storage.groups import MemberPosition, Membership, OffsetCommit
from storage.open import Backend, StorageConfig, open_backend
from storage.records import NewRecord, TopicConfig

pytestmark = pytest.mark.anyio


def members(generation: int, *ids: str, body: bytes = b"doc") -> Membership:
    return Membership(generation=generation, members=frozenset(ids), body=body)


async def test_create_read_and_compare_and_set(backend: Backend) -> None:
    groups = backend.groups
    assert await groups.get_group("t~g") is None
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    stored = await groups.get_group("t~g")
    assert stored is not None
    assert (stored.version, stored.membership) == (version, members(1, "a"))
    with pytest.raises(VersionConflict):  # creating again
        await groups.put_group("t~g", members(1, "b"), expected_version=0)
    with pytest.raises(VersionConflict):  # a stale version
        await groups.put_group("t~g", members(2, "b"), expected_version=version + 5)
    newer = await groups.put_group("t~g", members(2, "a", "b", body=b"x"), expected_version=version)
    assert newer > version
    stored = await groups.get_group("t~g")
    assert stored is not None
    assert stored.membership == members(2, "a", "b", body=b"x")


async def test_only_one_of_racing_compare_and_sets_wins(backend: Backend) -> None:
    groups = backend.groups
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    outcomes = await asyncio.gather(
        *(
            groups.put_group("t~g", members(2, f"m{i}"), expected_version=version)
            for i in range(10)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1
    assert all(isinstance(o, VersionConflict) for o in outcomes if not isinstance(o, int))


async def test_list_groups_by_prefix(backend: Backend) -> None:
    for name in ("acme~b", "acme~a", "other~a", "acme%~x"):
        await backend.groups.put_group(name, members(1), expected_version=0)
    assert await backend.groups.list_groups("acme~") == ["acme~a", "acme~b"]
    assert await backend.groups.list_groups("acme%") == ["acme%~x"]
    assert len(await backend.groups.list_groups()) == 4


async def test_commit_lands_only_for_a_member_of_the_current_generation(backend: Backend) -> None:
    groups = backend.groups
    commit = [OffsetCommit("t~orders", 0, 5, "meta"), OffsetCommit("t~orders", 1, 7)]
    with pytest.raises(GroupNotFound):
        await groups.commit_offsets("t~g", "a", 1, commit, now_ms=1)
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    await groups.commit_offsets("t~g", "a", 1, commit, now_ms=1000)
    stored = await groups.committed_offsets("t~g")
    assert [(c.topic, c.partition, c.offset, c.metadata, c.committed_ms) for c in stored] == [
        ("t~orders", 0, 5, "meta", 1000),
        ("t~orders", 1, 7, "", 1000),
    ]
    await groups.put_group("t~g", members(2, "b"), expected_version=version)
    late = [OffsetCommit("t~orders", 0, 99)]
    with pytest.raises(MemberFenced) as fenced:  # the old generation
        await groups.commit_offsets("t~g", "a", 1, late, now_ms=2000)
    assert fenced.value.current == 2
    with pytest.raises(MemberFenced):  # right generation, not a member of it
        await groups.commit_offsets("t~g", "a", 2, late, now_ms=2000)
    with pytest.raises(MemberFenced):  # a member, wrong generation
        await groups.commit_offsets("t~g", "b", 1, late, now_ms=2000)
    assert [c.offset for c in await groups.committed_offsets("t~g")] == [5, 7]


async def test_reset_and_delete_are_fenced_by_version(backend: Backend) -> None:
    groups = backend.groups
    version = await groups.put_group("t~g", members(1), expected_version=0)
    await groups.reset_offsets(
        "t~g", [OffsetCommit("t~x", 0, 3)], expected_version=version, now_ms=5
    )
    assert [c.offset for c in await groups.committed_offsets("t~g")] == [3]
    joined = await groups.put_group("t~g", members(2, "a"), expected_version=version)
    with pytest.raises(VersionConflict):
        await groups.reset_offsets(
            "t~g", [OffsetCommit("t~x", 0, 0)], expected_version=version, now_ms=6
        )
    with pytest.raises(VersionConflict):
        await groups.delete_group("t~g", expected_version=version)
    await groups.put_position("t~g", "a", MemberPosition(2, b"pos"))
    await groups.delete_group("t~g", expected_version=joined)
    assert await groups.get_group("t~g") is None
    assert await groups.committed_offsets("t~g") == []
    assert await groups.get_position("t~g", "a") is None
    with pytest.raises(GroupNotFound):
        await groups.delete_group("t~g", expected_version=joined)


async def test_positions_are_fenced_and_dropped_with_their_member(backend: Backend) -> None:
    groups = backend.groups
    version = await groups.put_group("t~g", members(3, "a", "b"), expected_version=0)
    await groups.put_position("t~g", "a", MemberPosition(3, b"one"))
    assert await groups.get_position("t~g", "a") == MemberPosition(3, b"one")
    with pytest.raises(MemberFenced):
        await groups.put_position("t~g", "a", MemberPosition(2, b"old"))
    with pytest.raises(MemberFenced):
        await groups.put_position("t~g", "c", MemberPosition(3, b"stranger"))
    await groups.put_group("t~g", members(4, "b"), expected_version=version)
    assert await groups.get_position("t~g", "a") is None


async def test_a_position_is_replaced_only_while_its_member_is_in_that_generation(
    backend: Backend, storage_config: StorageConfig
) -> None:
    """A member's later positions replace its row; once the generation moves on, a
    write naming the old one is fenced although the row is still there, and the
    new generation's write lands, in the file too."""
    groups = backend.groups
    version = await groups.put_group("t~g", members(3, "a", "b"), expected_version=0)
    for body in (b"one", b"two"):
        await groups.put_position("t~g", "a", MemberPosition(3, body))
        assert await groups.get_position("t~g", "a") == MemberPosition(3, body)
    await groups.put_group("t~g", members(4, "a", "b"), expected_version=version)
    with pytest.raises(MemberFenced):
        await groups.put_position("t~g", "a", MemberPosition(3, b"late"))
    assert await groups.get_position("t~g", "a") == MemberPosition(3, b"two")
    await groups.put_position("t~g", "a", MemberPosition(4, b"next"))
    await backend.close()
    reopened = await open_backend(storage_config)
    try:
        assert await reopened.groups.get_position("t~g", "a") == MemberPosition(4, b"next")
    finally:
        await reopened.close()


async def test_wait_for_records_across_topics(backend: Backend) -> None:
    log = backend.log
    await log.create_topic("t~a", 2, TopicConfig())
    await log.create_topic("t~b", 1, TopicConfig())
    await log.append("t~a", 0, [NewRecord(b"x")])
    positions = {("t~a", 0): 1, ("t~a", 1): 0, ("t~b", 0): 0, ("t~gone", 0): 0}
    assert not await backend.groups.wait_for_records(positions, timeout_s=0.05)
    waiting = asyncio.create_task(backend.groups.wait_for_records(positions, timeout_s=10))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await log.append("t~b", 0, [NewRecord(b"y")])
    assert await asyncio.wait_for(waiting, 5)
    assert await backend.groups.wait_for_records({("t~a", 0): 0}, timeout_s=0)  # already past


async def test_cancelled_wait_leaves_nothing_behind(backend: Backend) -> None:
    await backend.log.create_topic("t~a", 1, TopicConfig())
    waiting = asyncio.create_task(backend.groups.wait_for_records({("t~a", 0): 0}, timeout_s=30))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await backend.log.append("t~a", 0, [NewRecord(b"x")])  # wakes no one, breaks nothing


async def test_a_waiter_on_a_generation_wakes_when_the_group_leaves_it(backend: Backend) -> None:
    """Parked on a generation: a write keeping it (a heartbeat's) wakes no one, the
    next generation does at once (long before the timeout), and so does deleting
    the group; a generation already left answers at once."""
    groups = backend.groups
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    assert not await groups.wait_for_new_generation("t~g", 1, timeout_s=0.05)
    assert await groups.wait_for_new_generation("t~g", 0, timeout_s=0)
    assert await groups.wait_for_new_generation("t~missing", 1, timeout_s=0)
    waiting = asyncio.create_task(groups.wait_for_new_generation("t~g", 1, timeout_s=30))
    await asyncio.sleep(0.01)
    version = await groups.put_group(
        "t~g", members(1, "a", body=b"touched"), expected_version=version
    )
    await asyncio.sleep(0.01)
    assert not waiting.done()
    version = await groups.put_group("t~g", members(2, "a", "b"), expected_version=version)
    assert await asyncio.wait_for(waiting, 5)
    waiting = asyncio.create_task(groups.wait_for_new_generation("t~g", 2, timeout_s=30))
    await asyncio.sleep(0.01)
    await groups.delete_group("t~g", expected_version=version)
    assert await asyncio.wait_for(waiting, 5)


async def test_a_cancelled_generation_wait_leaves_nothing_behind(backend: Backend) -> None:
    groups = backend.groups
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    waiting = asyncio.create_task(groups.wait_for_new_generation("t~g", 1, timeout_s=30))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await groups.put_group("t~g", members(2, "a"), expected_version=version)  # wakes no one


async def test_commits_survive_reopening(backend: Backend, storage_config: StorageConfig) -> None:
    groups = backend.groups
    version = await groups.put_group("t~g", members(1, "a"), expected_version=0)
    await groups.commit_offsets("t~g", "a", 1, [OffsetCommit("t~x", 0, 42, "m")], now_ms=9)
    await backend.close()
    reopened = await open_backend(storage_config)
    try:
        stored = await reopened.groups.get_group("t~g")
        assert stored is not None
        assert stored.version == version
        assert stored.membership == members(1, "a")
        assert [(c.offset, c.metadata) for c in await reopened.groups.committed_offsets("t~g")] == [
            (42, "m")
        ]
    finally:
        await reopened.close()


async def test_member_view_reads_group_position_and_commits_together(backend: Backend) -> None:
    groups = backend.groups
    empty = await groups.member_view("t~g", "a")
    assert (empty.group, empty.position, empty.committed) == (None, None, [])
    await groups.put_group("t~g", members(1, "a"), expected_version=0)
    await groups.put_position("t~g", "a", MemberPosition(1, b"p"))
    await groups.commit_offsets("t~g", "a", 1, [OffsetCommit("t~x", 0, 4)], now_ms=1)
    view = await groups.member_view("t~g", "a")
    assert view.group == await groups.get_group("t~g")
    assert view.position == MemberPosition(1, b"p")
    assert view.committed == await groups.committed_offsets("t~g")
    assert (await groups.member_view("t~g", "b")).position is None


async def test_every_read_shows_what_the_file_holds(storage_config: StorageConfig) -> None:
    """After each kind of write, what the open store answers is what a store opened
    afresh on the same data reads: no read is served from a state the writes left
    behind (an engine may keep reads in memory, never a stale one)."""

    async def seen(backend: Backend) -> tuple[object, ...]:
        groups = backend.groups
        view = await groups.member_view("t~g", "a")
        return (
            view.group,
            view.position,
            view.committed,
            await groups.get_group("t~g"),
            await groups.get_position("t~g", "b"),
            await groups.committed_offsets("t~g"),
        )

    async def step(write: Callable[[Backend], Awaitable[object]]) -> None:
        opened = await open_backend(storage_config)
        try:
            await seen(opened)  # read before the write, so a copy in memory exists
            await write(opened)
            live = await seen(opened)
        finally:
            await opened.close()
        fresh = await open_backend(storage_config)
        try:
            assert live == await seen(fresh)
        finally:
            await fresh.close()

    async def version(b: Backend) -> int:
        stored = await b.groups.get_group("t~g")
        assert stored is not None
        return stored.version

    def regroup(generation: int, *ids: str) -> Callable[[Backend], Awaitable[object]]:
        async def put(b: Backend) -> int:
            return await b.groups.put_group(
                "t~g", members(generation, *ids), expected_version=await version(b)
            )

        return put

    async def fenced_position(b: Backend) -> None:
        with pytest.raises(MemberFenced):
            await b.groups.put_position("t~g", "a", MemberPosition(1, b"late"))

    async def reset(b: Backend) -> None:
        offsets = [OffsetCommit("t~x", 0, 1)]
        await b.groups.reset_offsets("t~g", offsets, expected_version=await version(b), now_ms=7)

    async def delete(b: Backend) -> None:
        await b.groups.delete_group("t~g", expected_version=await version(b))

    commit = [OffsetCommit("t~x", 1, 9, "m"), OffsetCommit("t~x", 0, 3)]
    await step(lambda b: b.groups.put_group("t~g", members(1, "a", "b"), expected_version=0))
    await step(lambda b: b.groups.put_position("t~g", "a", MemberPosition(1, b"a1")))
    await step(lambda b: b.groups.put_position("t~g", "b", MemberPosition(1, b"b1")))
    await step(lambda b: b.groups.commit_offsets("t~g", "a", 1, commit, now_ms=5))
    await step(regroup(2, "b"))
    await step(fenced_position)
    await step(lambda b: b.groups.put_position("t~g", "b", MemberPosition(2, b"b2")))
    await step(regroup(3))
    await step(reset)
    await step(delete)
    await step(lambda b: b.groups.put_group("t~g", members(1, "a"), expected_version=0))


async def test_a_position_write_racing_a_rebalance_lands_only_if_fenced_in(
    backend: Backend,
) -> None:
    """Position writes and compare-and-sets at once: afterwards no member that the
    group no longer has keeps a position, and none of another generation landed."""
    groups = backend.groups
    version = await groups.put_group("t~g", members(1, "a", "b"), expected_version=0)

    async def write(member: str, generation: int) -> None:
        with contextlib.suppress(MemberFenced):
            await groups.put_position("t~g", member, MemberPosition(generation, b"p"))

    await asyncio.gather(
        *(write(m, 1) for m in ("a", "b") for _ in range(20)),
        groups.put_group("t~g", members(2, "b"), expected_version=version),
        *(write(m, 2) for m in ("a", "b") for _ in range(20)),
    )
    assert await groups.get_position("t~g", "a") is None
    position = await groups.get_position("t~g", "b")
    assert position is None or position.generation in (1, 2)
    await groups.put_position("t~g", "b", MemberPosition(2, b"last"))
    assert (await groups.member_view("t~g", "b")).position == MemberPosition(2, b"last")


async def test_concurrent_position_writes_are_each_fenced_on_their_own(
    backend: Backend, storage_config: StorageConfig
) -> None:
    """Writes of several fetches at once (an engine may write them together): a
    stale generation's, a stranger's and a missing group's are refused, each
    alone; the others land, in the file too."""
    groups = backend.groups
    await groups.put_group("t~g", members(3, "a", "b", "c"), expected_version=0)
    await groups.put_group("t~h", members(1, "a"), expected_version=0)
    await groups.put_position("t~g", "c", MemberPosition(3, b"c-before"))
    outcomes = await asyncio.gather(
        groups.put_position("t~g", "a", MemberPosition(3, b"a3")),
        groups.put_position("t~g", "b", MemberPosition(2, b"stale")),
        groups.put_position("t~g", "x", MemberPosition(3, b"stranger")),
        groups.put_position("t~none", "a", MemberPosition(1, b"nowhere")),
        groups.put_position("t~h", "a", MemberPosition(1, b"h1")),
        groups.put_position("t~g", "c", MemberPosition(3, b"c-after")),
        return_exceptions=True,
    )
    kinds = [type(o) if isinstance(o, BaseException) else None for o in outcomes]
    assert kinds == [None, MemberFenced, MemberFenced, GroupNotFound, None, None]
    landed = {
        ("t~g", "a"): MemberPosition(3, b"a3"),
        ("t~g", "b"): None,
        ("t~g", "x"): None,
        ("t~h", "a"): MemberPosition(1, b"h1"),
        ("t~g", "c"): MemberPosition(3, b"c-after"),
    }
    for (group, member), position in landed.items():
        assert await groups.get_position(group, member) == position
    await backend.close()
    reopened = await open_backend(storage_config)
    try:
        for (group, member), position in landed.items():
            assert await reopened.groups.get_position(group, member) == position
    finally:
        await reopened.close()
