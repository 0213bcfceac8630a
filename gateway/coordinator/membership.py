"""The group coordinator's membership core: plain data in, decisions out. Pure.

A `Group` is the whole state of one consumer group: its generation, its
members (subscription, session timeout, when last heard from, the generation
each last joined), and the assignment of that generation. Every function here
takes a group and `now_ms` and returns the group it becomes, or raises
`MustRejoin`; none does I/O, so the HTTP routes, a stream's group mode and a
Kafka listener drive the same rules, and tests control the clock.

Rules:
- Any membership change (a join with a new member or a new subscription, a
  leave, a session that expired, a topic whose partition count changed)
  computes a new assignment and bumps the generation by one. The assignment
  only ever changes with the generation, so a generation names one
  assignment and no partition has two owners in one generation.
- A member is live while `now_ms - last_seen_ms <= session_timeout_ms`;
  every group operation first removes the members that are not.
- A member has caught up with the generation once it joined at it. Until all
  have, the group is `rebalancing`; a member behind is told to rejoin
  (`rebalance-in-progress`), a member the group no longer has (it left or
  expired) or a generation that is not the member's is `stale-generation`.
  Rejoining with the old member id is the way back in either case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.coordinator.assignors import ASSIGNORS, DEFAULT_ASSIGNOR, TopicPartition


class GroupState(StrEnum):
    EMPTY = "empty"  # no members (committed offsets may remain)
    STABLE = "stable"  # every member joined at the current generation
    REBALANCING = "rebalancing"  # some member has yet to rejoin at the current generation
    DEAD = "dead"  # no members, and nothing left to read: its topics are gone


class ResetPolicy(StrEnum):
    """Where a partition without a committed offset starts."""

    EARLIEST = "earliest"
    LATEST = "latest"


class RejoinReason(StrEnum):
    REBALANCE_IN_PROGRESS = "rebalance-in-progress"
    STALE_GENERATION = "stale-generation"


class CoordinatorError(Exception):
    """Base of what the coordinator refuses (mapped to problem+json by the gateway)."""


class MustRejoin(CoordinatorError):
    """The member cannot act in the generation it named; it should join again."""

    group = ""  # the group's storage name, once known (the pure core does not know it)

    def __init__(self, reason: RejoinReason, member_id: str, generation: int, current: int) -> None:
        self.reason = reason
        self.member_id = member_id
        self.generation = generation
        self.current = current
        super().__init__(reason.value)


class ProtocolMismatch(CoordinatorError):
    """A join naming another assignor or reset policy than the group's members use."""


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    topics: tuple[str, ...]
    session_timeout_ms: int
    last_seen_ms: int
    joined_generation: int  # the generation this member last joined at

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.last_seen_ms > self.session_timeout_ms

    def needs_touch(self, now_ms: int) -> bool:
        """Whether a request now should record the member as heard from: liveness is
        kept with a resolution of a tenth of the session, not one write per request."""
        return now_ms - self.last_seen_ms >= self.session_timeout_ms // 10


@dataclass(frozen=True, slots=True)
class Group:
    generation: int = 0
    assignor: str = DEFAULT_ASSIGNOR
    reset: ResetPolicy = ResetPolicy.EARLIEST
    members: tuple[Member, ...] = ()  # sorted by member id
    partitions: tuple[tuple[str, int], ...] = ()  # topic → partition count, as assigned
    assignment: tuple[tuple[str, tuple[TopicPartition, ...]], ...] = ()  # member → partitions
    changed_ms: int = 0  # when the generation last changed

    def member(self, member_id: str) -> Member | None:
        for member in self.members:
            if member.member_id == member_id:
                return member
        return None

    def assigned(self, member_id: str) -> tuple[TopicPartition, ...]:
        for owner, tps in self.assignment:
            if owner == member_id:
                return tps
        return ()

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({t for m in self.members for t in m.topics}))

    @property
    def state(self) -> GroupState:
        if not self.members:
            return GroupState.EMPTY
        if all(m.joined_generation == self.generation for m in self.members):
            return GroupState.STABLE
        return GroupState.REBALANCING


def _with_members(
    group: Group,
    members: Sequence[Member],
    partitions: Mapping[str, int],
    now_ms: int,
) -> Group:
    """The group with `members`, a fresh assignment and the next generation."""
    ordered = tuple(sorted(members, key=lambda m: m.member_id))
    subscriptions = {m.member_id: m.topics for m in ordered}
    previous = dict(group.assignment)
    assignment = ASSIGNORS[group.assignor](subscriptions, partitions, previous) if ordered else {}
    topics = {t for m in ordered for t in m.topics}
    return replace(
        group,
        generation=group.generation + 1,
        members=ordered,
        partitions=tuple(sorted((t, n) for t, n in partitions.items() if t in topics)),
        assignment=tuple((m, tuple(tps)) for m, tps in sorted(assignment.items())),
        changed_ms=now_ms,
    )


def expire(group: Group, now_ms: int) -> Group:
    """Remove the members whose session has run out (a new generation if any did)."""
    live = [m for m in group.members if not m.expired(now_ms)]
    if len(live) == len(group.members):
        return group
    return _with_members(group, live, dict(group.partitions), now_ms)


def join(
    group: Group,
    member_id: str,
    topics: Sequence[str],
    session_timeout_ms: int,
    partitions: Mapping[str, int],
    now_ms: int,
    *,
    assignor: str | None = None,
    reset: ResetPolicy | None = None,
) -> Group:
    """`member_id` joins (or rejoins) subscribed to `topics`; `partitions` holds the
    partition count of every topic the group will read. A rejoin that changes
    nothing only marks the member caught up with the current generation.
    `assignor` and `reset` apply when the group has no members yet; given with
    other values while it has members, ProtocolMismatch."""
    group = expire(group, now_ms)
    if not group.members:
        group = replace(
            group,
            assignor=assignor or group.assignor,
            reset=reset or group.reset,
        )
    else:
        if assignor is not None and assignor != group.assignor:
            raise ProtocolMismatch(
                f"the group uses the {group.assignor!r} assignor; all its members must"
            )
        if reset is not None and reset != group.reset:
            raise ProtocolMismatch(f"the group's reset policy is {group.reset.value!r}")
    if assignor is not None and assignor not in ASSIGNORS:
        raise ProtocolMismatch(f"unknown assignor {assignor!r}")
    subscribed = tuple(sorted(set(topics)))
    old = group.member(member_id)
    wanted = {t: partitions[t] for t in {*group.topics, *subscribed}}
    if (
        old is not None
        and old.topics == subscribed
        and old.session_timeout_ms == session_timeout_ms
        and wanted == dict(group.partitions)
    ):
        caught_up = replace(old, last_seen_ms=now_ms, joined_generation=group.generation)
        return _replace_member(group, caught_up)
    others = [m for m in group.members if m.member_id != member_id]
    newcomer = Member(member_id, subscribed, session_timeout_ms, now_ms, group.generation + 1)
    return _with_members(group, [*others, newcomer], wanted, now_ms)


def _replace_member(group: Group, member: Member) -> Group:
    members = tuple(member if m.member_id == member.member_id else m for m in group.members)
    return replace(group, members=members)


def check(group: Group, member_id: str, generation: int | None) -> Member:
    """The member, if it may act in `generation` (None: whatever generation it last
    joined at, which must be the current one); MustRejoin otherwise."""
    member = group.member(member_id)
    named = generation if generation is not None else (member.joined_generation if member else 0)
    if member is None or named > group.generation:
        raise MustRejoin(RejoinReason.STALE_GENERATION, member_id, named, group.generation)
    if member.joined_generation != group.generation or named != group.generation:
        reason = (
            RejoinReason.REBALANCE_IN_PROGRESS
            if named == member.joined_generation
            else RejoinReason.STALE_GENERATION
        )
        raise MustRejoin(reason, member_id, named, group.generation)
    return member


def heartbeat(group: Group, member_id: str, generation: int | None, now_ms: int) -> Group:
    """The member is alive (any request by it counts); MustRejoin if it must rejoin.
    Returns the same group when nothing needs writing."""
    group = expire(group, now_ms)
    member = check(group, member_id, generation)
    if not member.needs_touch(now_ms):
        return group
    return _replace_member(group, replace(member, last_seen_ms=now_ms))


def leave(group: Group, member_id: str, now_ms: int) -> Group:
    """The member leaves (a no-op for one the group does not have)."""
    group = expire(group, now_ms)
    if group.member(member_id) is None:
        return group
    others = [m for m in group.members if m.member_id != member_id]
    return _with_members(group, others, dict(group.partitions), now_ms)


def refresh_partitions(group: Group, partitions: Mapping[str, int], now_ms: int) -> Group:
    """A new generation when a subscribed topic's partition count changed (grown, or
    0 for a topic that is gone)."""
    wanted = {t: partitions.get(t, 0) for t in group.topics}
    if wanted == dict(group.partitions) or not group.members:
        return group
    return _with_members(group, list(group.members), wanted, now_ms)
