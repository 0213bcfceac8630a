"""The coordinator over the GroupStore: join, heartbeat, leave, commit, as plain calls.

Each operation reads the group, applies the pure rules of `membership.py` at
`now_ms` and writes the result with the store's compare-and-set, retrying
when another request (in this process or another gateway) changed the group
in between. Nothing about a group is kept in this process between calls, so
any gateway serves any member; the per-group lock only keeps the requests of
one process from racing each other's compare-and-set (a retry storm), it is
not what makes the result correct. Callable from an HTTP route, a long-lived
stream or any other transport: no request object anywhere.

Group and topic names here are storage names (namespaced by the caller).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from gateway.coordinator import document, membership
from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.membership import (
    CoordinatorError,
    Group,
    MustRejoin,
    RejoinReason,
    ResetPolicy,
)
from storage.backend import LogStore
from storage.errors import GroupNotFound, MemberFenced, TopicNotFound, VersionConflict
from storage.groups import GroupStore, OffsetCommit

T = TypeVar("T")

CAS_ATTEMPTS = 50
"""Compare-and-set attempts before giving up (VersionConflict): only other gateways'
writes to the same group at the same moment can make one fail."""


DECODED_GROUPS = 1024
"""Groups whose decoded document a service keeps (the most recently decoded)."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


async def _within(deadline: float | None, step: Awaitable[T]) -> T:
    """`await step`, cancelled with TimeoutError at `deadline` (the loop's clock).
    Only coordinator steps are bounded so: a compare-and-set cut short may have
    landed or not, and either is a state the next request reads and builds on."""
    if deadline is None:
        return await step
    async with asyncio.timeout_at(deadline):
        return await step


@dataclass(frozen=True, slots=True)
class Loaded:
    version: int
    group: Group


class NotAssigned(CoordinatorError):
    """A commit for a partition the member does not own in its generation."""

    def __init__(self, member_id: str, generation: int, tp: TopicPartition) -> None:
        super().__init__(
            f"partition {tp.partition} of {tp.topic!r} is not assigned to member "
            f"{member_id!r} in generation {generation}"
        )
        self.member_id = member_id
        self.generation = generation
        self.tp = tp


class _Locks:
    """One asyncio.Lock per group name while anyone uses it (then forgotten)."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._held.get(name, (asyncio.Lock(), 0))
        self._held[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[name]
            if users == 1:
                del self._held[name]
            else:
                self._held[name] = (lock, users - 1)


class GroupService:
    def __init__(
        self, groups: GroupStore, log: LogStore, *, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        self.groups = groups
        self.log = log
        self.clock = clock
        self._locks = _Locks()
        self._decoded: dict[str, tuple[bytes, Group]] = {}
        self._last: dict[str, Loaded] = {}  # a hint, proven by compare-and-set

    def decoded(self, name: str, body: bytes) -> Group:
        """`document.decode(body)`, remembered per group while the bytes stay the same
        (most reads find the group unchanged; a big group's document costs about a
        millisecond to decode). A cache of a pure function: the store decides."""
        known = self._decoded.get(name)
        if known is not None and known[0] == body:
            return known[1]
        group = document.decode(body)
        if len(self._decoded) >= DECODED_GROUPS:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[name] = (body, group)
        return group

    async def load(self, name: str) -> Loaded | None:
        stored = await self.groups.get_group(name)
        if stored is None:
            self._last.pop(name, None)
            return None
        loaded = Loaded(stored.version, self.decoded(name, stored.membership.body))
        self._remember(name, loaded)
        return loaded

    async def _update(
        self,
        name: str,
        change: Callable[[Group], Awaitable[Group]],
        *,
        create: bool = False,
        first: Loaded | None = None,
    ) -> Loaded:
        """Apply `change` to the group as stored, by compare-and-set; GroupNotFound
        when there is no group and `create` is false.

        The first attempt may start from `first` (the group as the caller just
        read it) or from the group as this service last read or wrote it: when
        the change writes, the compare-and-set proves that state current (and a
        conflict reads it again), saving a round trip. A decision that writes
        nothing (a heartbeat, a refusal) is only ever taken on a fresh read."""
        async with self._locks.hold(name):
            hint = first if first is not None else self._last.get(name)
            fresh = first is not None
            for _ in range(CAS_ATTEMPTS):
                if hint is not None:
                    loaded: Loaded | None = hint
                    hint = None
                else:
                    loaded = await self.load(name)
                    fresh = True
                if loaded is None and not create:
                    raise GroupNotFound(name)
                before = loaded.group if loaded is not None else Group()
                version = loaded.version if loaded is not None else 0
                try:
                    after = await change(before)
                except MustRejoin as exc:
                    if not fresh:
                        continue  # decided on a remembered state: read it again
                    exc.group = name
                    raise
                if after == before and loaded is not None:
                    if not fresh:
                        continue
                    return loaded
                try:
                    version = await self.groups.put_group(
                        name, document.membership(after), expected_version=version
                    )
                except VersionConflict:
                    self._last.pop(name, None)
                    continue
                done = Loaded(version, after)
                self._remember(name, done)
                return done
        raise VersionConflict(name, version, -1)

    def _remember(self, name: str, loaded: Loaded) -> None:
        if name not in self._last and len(self._last) >= DECODED_GROUPS:
            self._last.pop(next(iter(self._last)))
        self._last[name] = loaded

    async def partition_counts(
        self, topics: Sequence[str], *, required: Sequence[str]
    ) -> dict[str, int]:
        """Partition counts of `topics` (0 for one that is gone); TopicNotFound for a
        topic in `required` that does not exist."""
        counts: dict[str, int] = {}
        for topic in sorted(set(topics) | set(required)):
            try:
                counts[topic] = (await self.log.get_topic(topic)).partitions
            except TopicNotFound:
                if topic in required:
                    raise
                counts[topic] = 0
        return counts

    async def join(
        self,
        name: str,
        member_id: str,
        topics: Sequence[str],
        session_timeout_ms: int,
        *,
        assignor: str | None = None,
        reset: ResetPolicy | None = None,
    ) -> Loaded:
        """Join or rejoin; the member's assignment is in the returned group. Raises
        TopicNotFound for a topic that does not exist, ProtocolMismatch for an assignor or
        reset policy other than the group's."""
        now = self.clock()

        async def change(group: Group) -> Group:
            counts = await self.partition_counts(group.topics, required=topics)
            return membership.join(
                group,
                member_id,
                topics,
                session_timeout_ms,
                counts,
                now,
                assignor=assignor,
                reset=reset,
            )

        return await self._update(name, change, create=True)

    async def heartbeat(
        self,
        name: str,
        member_id: str,
        generation: int | None,
        *,
        loaded: Loaded | None = None,
        deadline: float | None = None,
    ) -> Loaded:
        """The member is alive and may act in `generation` (None: the one it joined);
        MustRejoin otherwise (after the group's expired members are removed).
        `loaded`: the group as the caller just read it (saves a read).

        `deadline` (the event loop's clock; with `loaded`): how long the call may
        wait for the group's lock, behind a join storm say. Past it the answer is
        the one `loaded` gives: MustRejoin if it says so (the expiry it found is
        written by the member's rejoin), else the member may act and its touch
        waits for its next request."""
        now = self.clock()
        refused: MustRejoin | None = None
        if loaded is not None:
            # Decided on a fresh read: with nothing to write (no touch due, nobody
            # expired) it needs no lock and no round trip, a refusal included.
            group = loaded.group
            try:
                if membership.heartbeat(group, member_id, generation, now) is group:
                    return loaded
            except MustRejoin as exc:
                exc.group = name
                if membership.expire(group, now) is group:
                    raise
                refused = exc  # and the expiry it found is written below

        async def beat(group: Group) -> Group:
            return membership.heartbeat(group, member_id, generation, now)

        try:
            return await _within(deadline, self._update(name, beat, first=loaded))
        except MustRejoin as exc:
            refused = exc
        except TimeoutError:
            if deadline is None or loaded is None:
                raise
            if refused is None:
                return loaded  # `loaded` says the member may act; its touch waits
        assert refused is not None
        try:  # a fresh read refused it: write the expiry it found, if time allows
            await _within(deadline, self.expire(name))
        except TimeoutError:
            if deadline is None:
                raise
        raise refused

    async def refresh(
        self,
        name: str,
        loaded: Loaded,
        *,
        deadline: float | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> Loaded:
        """A new generation if a subscribed topic's partition count changed. Past
        `deadline` (waiting for the group's lock), `loaded` as it was: the next
        request starts the new generation. `counts`: the subscribed topics'
        partition counts as the caller just read them (0 for one that is gone),
        so a request that needs the topics for more reads each of them once."""
        if counts is None:
            counts = await self.partition_counts(loaded.group.topics, required=())
        if counts == dict(loaded.group.partitions):
            return loaded
        now = self.clock()

        async def grown(group: Group) -> Group:
            return membership.refresh_partitions(group, counts, now)

        try:
            return await _within(deadline, self._update(name, grown))
        except TimeoutError:
            if deadline is None:
                raise
            return loaded

    async def leave(self, name: str, member_id: str) -> Loaded:
        now = self.clock()

        async def gone(group: Group) -> Group:
            return membership.leave(group, member_id, now)

        return await self._update(name, gone)

    async def commit(
        self, name: str, member_id: str, generation: int, offsets: Sequence[OffsetCommit]
    ) -> None:
        """Store `offsets` if the member owns each partition in `generation`, the
        current one; MustRejoin or NotAssigned otherwise, and nothing is stored.
        The store checks the generation and membership again in the same atomic
        step as the write, so a commit racing a rebalance cannot land."""
        loaded = await self.heartbeat(name, member_id, generation)
        owned = set(loaded.group.assigned(member_id))
        for o in offsets:
            tp = TopicPartition(o.topic, o.partition)
            if tp not in owned:
                raise NotAssigned(member_id, generation, tp)
        try:
            await self.groups.commit_offsets(
                name, member_id, generation, offsets, now_ms=self.clock()
            )
        except MemberFenced as exc:
            fenced = MustRejoin(RejoinReason.STALE_GENERATION, member_id, generation, exc.current)
            fenced.group = name
            raise fenced from None

    async def expire(self, name: str) -> Loaded:
        """The group with its expired members removed (for readers: describe, admin)."""
        now = self.clock()

        async def expired(group: Group) -> Group:
            return membership.expire(group, now)

        return await self._update(name, expired)
