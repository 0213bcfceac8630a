"""Group mode (`group=G`): a WebSocket stream that is a member of consumer group G.

The connection joins G for its topic through the coordinator (`GroupService`,
the same rules and store as the `/v1/groups` routes, so WebSocket and HTTP
members share one group), reads the partitions assigned to it from the
group's committed offsets (the group's reset policy where none is committed),
heartbeats while open, and leaves when it closes. Nothing about the group is
held here but this member's id, generation and assignment: the group itself
lives in the GroupStore, as for any member.

A rebalance reaches the connection as its heartbeat's answer (must rejoin):
it rejoins with its member id and hands the stream a `Reassignment`, the new
generation's partitions and where each starts. Partitions it keeps go on from
the stream's position; partitions it gains start at their committed offsets.
Until a member's next heartbeat it still reads the partitions of its old
generation (at most a third of its session timeout): records it was sent then
and did not commit are delivered again to their new owner, as with any
consumer group (at-least-once; commits are what count).

Commits are fenced by generation: a `commit` frame names the generation it
belongs to (the connection's current one if it names none), and a commit in a
generation that is no longer current, or for a partition this member does not
own, is refused with an `error` frame; the stream stays open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from gateway.coordinator.membership import MustRejoin, ResetPolicy
from gateway.coordinator.service import GroupService, Loaded
from gateway.http.names import is_valid_topic_name, storage_name
from gateway.http.params import MAX_INT64, parse_int
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.settings import Settings
from gateway.streams.positions import format_positions
from storage.groups import OffsetCommit

MEMBER_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_METADATA = 4096
MAX_COMMIT_OFFSETS = 10_000
NOT_WITH_GROUP = ("from", "timestamp", "partitions", "last_event_id")
"""Start parameters a group stream does not take: the group's offsets say where it starts."""


@dataclass(frozen=True, slots=True)
class GroupParams:
    """What the URL asks of group mode."""

    group: str  # the tenant's name for it
    member_id: str | None
    session_timeout_ms: int


def _invalid(parameter: str, detail: str) -> GatewayError:
    return GatewayError(ProblemType.INVALID_PARAMETER, detail, parameter=parameter)


def group_params(params: Mapping[str, str], settings: Settings) -> GroupParams | None:
    """The group-mode parameters, or None without `group=`; 400 for a bad one."""
    group = params.get("group")
    if group is None:
        return None
    if not is_valid_topic_name(group):
        raise _invalid("group", "a group name is 1 to 249 of A-Z a-z 0-9 . _ - and not '.' or '..'")
    for name in NOT_WITH_GROUP:
        if name in params:
            raise _invalid(name, f"{name} is not taken with group=: the group's offsets decide")
    member_id = params.get("member_id")
    if member_id is not None and not MEMBER_ID.match(member_id):
        raise _invalid("member_id", "member_id is 1 to 128 of A-Z a-z 0-9 . _ -")
    timeout = settings.group_session_timeout_ms
    text = params.get("session_timeout_ms")
    if text is not None:
        value = parse_int(text)
        if value is None:
            raise _invalid("session_timeout_ms", "session_timeout_ms must be an integer")
        timeout = value
    low, high = settings.group_min_session_timeout_ms, settings.group_max_session_timeout_ms
    if not low <= timeout <= high:
        raise _invalid("session_timeout_ms", f"session_timeout_ms must be within {low}..{high}")
    return GroupParams(group, member_id, timeout)


class BadCommit(ValueError):
    """A `commit` frame that is not one (a protocol error: the stream closes, 4400)."""


@dataclass(frozen=True, slots=True)
class CommitFrame:
    generation: int | None
    offsets: tuple[tuple[int, int, str], ...]  # (partition, offset, metadata)


def _non_negative(value: Any) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= MAX_INT64


def commit_frame(frame: Mapping[str, Any]) -> CommitFrame:
    """`{"type": "commit", "generation"?, "offsets": [{"partition", "offset",
    "metadata"?}]}` checked; BadCommit naming what is wrong. Pure."""
    unknown = set(frame) - {"type", "generation", "offsets"}
    if unknown:
        raise BadCommit(f"a commit frame has no field {sorted(unknown)[0]!r}")
    generation = frame.get("generation")
    if generation is not None and not _non_negative(generation):
        raise BadCommit("a commit frame's generation is an integer >= 0")
    offsets = frame.get("offsets")
    if not isinstance(offsets, list) or not 1 <= len(offsets) <= MAX_COMMIT_OFFSETS:
        raise BadCommit(f"a commit frame's offsets are a list of 1 to {MAX_COMMIT_OFFSETS}")
    out: list[tuple[int, int, str]] = []
    for i, entry in enumerate(offsets):
        if not isinstance(entry, dict) or set(entry) - {"partition", "offset", "metadata"}:
            raise BadCommit(f'offsets[{i}] is {{"partition", "offset", "metadata"?}}')
        partition, offset = entry.get("partition"), entry.get("offset")
        metadata = entry.get("metadata", "")
        if not _non_negative(partition) or not _non_negative(offset):
            raise BadCommit(f"offsets[{i}]: partition and offset are integers >= 0")
        if not isinstance(metadata, str) or len(metadata) > MAX_METADATA:
            raise BadCommit(f"offsets[{i}].metadata is a string of at most {MAX_METADATA}")
        out.append((partition, offset, metadata))
    return CommitFrame(generation, tuple(out))


def assigned_frame(member_id: str, generation: int, starts: Mapping[int, int]) -> str:
    """The partitions this member owns in `generation`, and where each goes on from."""
    return orjson.dumps(
        {
            "type": "assigned",
            "member_id": member_id,
            "generation": generation,
            "assignment": sorted(starts),
            "from": format_positions(starts),
        }
    ).decode()


def revoked_frame(generation: int, partitions: list[int]) -> str:
    """Partitions this member owned until `generation` ended: nothing more comes from them."""
    return orjson.dumps(
        {"type": "revoked", "generation": generation, "partitions": sorted(partitions)}
    ).decode()


def committed_frame(generation: int, offsets: Mapping[int, int]) -> str:
    """A commit frame's offsets are stored."""
    return orjson.dumps(
        {
            "type": "committed",
            "generation": generation,
            "offsets": [{"partition": p, "offset": o} for p, o in sorted(offsets.items())],
        }
    ).decode()


@dataclass(frozen=True, slots=True)
class Reassignment:
    """A new generation's partitions for this member, and where each starts if new to it
    (committed offset, else the reset policy)."""

    generation: int
    starts: dict[int, int]


class GroupMember:
    """This connection as a member of one group, for one topic (storage names)."""

    def __init__(
        self,
        service: GroupService,
        namespace: str,
        params: GroupParams,
        topic: str,
        member_id: str,
    ) -> None:
        self.service = service
        self.stored = storage_name(namespace, params.group)
        self.topic = topic
        self.member_id = member_id
        self.session_timeout_ms = params.session_timeout_ms
        self.generation = 0
        self.left = False

    @property
    def heartbeat_s(self) -> float:
        """A third of the session: two heartbeats may be late before the session ends."""
        return self.session_timeout_ms / 3000

    async def join(self) -> Reassignment:
        """Join (or rejoin with this member id): the assignment and its starts."""
        loaded = await self.service.join(
            self.stored, self.member_id, [self.topic], self.session_timeout_ms
        )
        return await self._reassignment(loaded)

    async def beat(self) -> Reassignment | None:
        """Heartbeat; a new Reassignment when the group moved on (after rejoining)."""
        try:
            loaded = await self.service.heartbeat(self.stored, self.member_id, self.generation)
        except MustRejoin:
            return await self.join()
        if loaded.group.generation != self.generation:
            return await self.join()
        return None

    async def _reassignment(self, loaded: Loaded) -> Reassignment:
        group = loaded.group
        mine = [tp.partition for tp in group.assigned(self.member_id) if tp.topic == self.topic]
        committed = {
            c.partition: c.offset
            for c in await self.service.groups.committed_offsets(self.stored)
            if c.topic == self.topic
        }
        starts: dict[int, int] = {}
        for p in mine:
            known = committed.get(p)
            if known is None:
                info = await self.service.log.offsets(self.topic, p)
                earliest = group.reset is ResetPolicy.EARLIEST
                known = info.start_offset if earliest else info.end_offset
            starts[p] = known
        self.generation = group.generation
        return Reassignment(group.generation, starts)

    async def commit(self, frame: CommitFrame) -> tuple[int, dict[int, int]]:
        """Store the frame's offsets, fenced by its generation (the current one if it
        names none): MustRejoin, NotAssigned or a GatewayError (past the end of the
        log) when refused, and then nothing is stored."""
        generation = self.generation if frame.generation is None else frame.generation
        log = self.service.log
        offsets = []
        for partition, offset, metadata in frame.offsets:
            end = (await log.offsets(self.topic, partition)).end_offset
            if offset > end:
                raise GatewayError(
                    ProblemType.INVALID_BODY,
                    f"offset {offset} of partition {partition} is past its end offset {end}",
                )
            offsets.append(OffsetCommit(self.topic, partition, offset, metadata))
        await self.service.commit(self.stored, self.member_id, generation, offsets)
        return generation, {o.partition: o.offset for o in offsets}

    async def leave(self) -> None:
        """Leave the group (once): its partitions go to the others."""
        if not self.left:
            self.left = True
            await self.service.leave(self.stored, self.member_id)
