"""The consumer-group seam: membership, generations, positions and commits, atomically.

`GroupStore` is what the group coordinator keeps its state in, so that no
gateway process holds state another cannot see: any gateway can serve any
member's request (no sticky sessions). The store knows just enough of a group
to fence writes atomically: its generation and the member ids of that
generation. The rest of the coordinator's document (subscriptions, sessions,
the assignment) is opaque bytes to it, replaced only by a versioned
compare-and-set, so two requests racing to change one group cannot both win.

Promises every engine keeps (tests/storage/contract/test_group_contract.py):
- `put_group` is a compare-and-set on `version`; a lost race raises
  VersionConflict and changes nothing.
- `commit_offsets` and `put_position` land only while the member is in the
  generation they name, checked in the same atomic step as the write
  (MemberFenced otherwise), so a fenced commit never lands.
- A commit that returned is durable: it survives a crash of the process.
- `wait_for_records` wakes when any of several partitions of several topics
  passes its position, without polling.
- `wait_for_new_generation` wakes as soon as a write moves the group to another
  generation (a member joined, left or expired) or deletes it, without
  polling, so a member parked in a long fetch hears of a rebalance at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Membership:
    """A group's generation, the members of that generation, and the coordinator's
    document (opaque here)."""

    generation: int
    members: frozenset[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group as read, with the version a compare-and-set must name."""

    name: str
    version: int
    membership: Membership


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    """One partition's committed position: the next offset to read (Kafka's convention)."""

    topic: str
    partition: int
    offset: int
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int
    metadata: str
    committed_ms: int


@dataclass(frozen=True, slots=True)
class MemberPosition:
    """Where a member's reading stands (the coordinator's bytes), for one generation."""

    generation: int
    body: bytes


@dataclass(frozen=True, slots=True)
class MemberView:
    """What a member's fetch needs, read at one moment: the group, the member's
    position, and the group's committed offsets."""

    group: StoredGroup | None
    position: MemberPosition | None
    committed: list[CommittedOffset]


class GroupStore(Protocol):
    """Consumer groups, keyed by name (callers namespace names per tenant)."""

    async def get_group(self, group: str) -> StoredGroup | None:
        """The group, or None when there is none."""
        ...

    async def put_group(self, group: str, membership: Membership, *, expected_version: int) -> int:
        """Replace the group's membership if it is at `expected_version` (0: create it,
        only if absent); returns the new version. Raises VersionConflict otherwise,
        changing nothing."""
        ...

    async def list_groups(self, prefix: str = "") -> list[str]:
        """Names of the groups that start with `prefix`, sorted."""
        ...

    async def delete_group(self, group: str, *, expected_version: int) -> None:
        """Remove the group with its commits and positions, if it is at
        `expected_version`; VersionConflict otherwise, GroupNotFound if absent."""
        ...

    async def commit_offsets(
        self,
        group: str,
        member_id: str,
        generation: int,
        offsets: Sequence[OffsetCommit],
        *,
        now_ms: int,
    ) -> None:
        """Store `offsets` durably, all or none, if `member_id` is a member of the
        group's current generation and that is `generation`. Raises GroupNotFound,
        or MemberFenced (nothing stored)."""
        ...

    async def reset_offsets(
        self,
        group: str,
        offsets: Sequence[OffsetCommit],
        *,
        expected_version: int,
        now_ms: int,
    ) -> None:
        """An operator's commit, durably, all or none, if the group is still at
        `expected_version` (the version at which the caller saw it without members);
        VersionConflict otherwise."""
        ...

    async def committed_offsets(self, group: str) -> list[CommittedOffset]:
        """Every committed offset of the group, sorted by topic and partition."""
        ...

    async def get_position(self, group: str, member_id: str) -> MemberPosition | None:
        """The member's reading position, or None."""
        ...

    async def member_view(self, group: str, member_id: str) -> MemberView:
        """`get_group`, `get_position` and `committed_offsets` in one consistent read
        (one round trip: the group fetch's hot path)."""
        ...

    async def put_position(self, group: str, member_id: str, position: MemberPosition) -> None:
        """Store the member's position if it is a member of `position.generation`,
        the current one; MemberFenced otherwise. Need not survive a power cut
        (the durable progress is the commit), but survives a process crash once
        this returns. Concurrent calls may be written together, each fenced on its
        own: one refused leaves the others to land."""
        ...

    async def wait_for_records(
        self, positions: Mapping[tuple[str, int], int], timeout_s: float
    ) -> bool:
        """Wait until any partition `(topic, p)` has an end offset past its position;
        True if one did, False at the timeout. Topics that no longer exist are not
        waited on. A wake-up from the append path, never polling; cancelling the
        caller frees the waiter."""
        ...

    async def wait_for_new_generation(self, group: str, generation: int, timeout_s: float) -> bool:
        """Wait until the group is no longer at `generation` (another generation, or
        no group); True if so (at once when it already is), False at the timeout.
        Woken by the write that changed it, never polling; cancelling the caller
        frees the waiter."""
        ...

    async def close(self) -> None: ...
