"""Describe and list groups with their lag: `GET /v1/groups/{group}`, `GET /v1/groups`.

Per partition: `committed` (the next offset to read, or null), `end_offset`,
`lag` (end - committed; without a commit, what the reset policy would leave
to read), `time_behind_ms` (now - the timestamp of the next unread record, as
Kinesis' MillisBehindLatest; 0 when nothing is unread), its owner, and a
Burrow-style `status` (see `status.py`). The group: `state` (`stable`,
`rebalancing`, `empty`, `dead`), generation, assignor, members with their
assignments, total lag and the worst status. Expired members are removed
first, so what is shown is what the next fetch would see.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.membership import Group, GroupState, ResetPolicy
from gateway.coordinator.service import GroupService
from gateway.groups import status as health
from gateway.groups.names import GroupRequest
from gateway.http.names import client_name, tenant_prefix
from gateway.http.responses import json_response
from gateway.http.runtime import Runtime
from storage.backend import LogStore
from storage.errors import GroupNotFound, OffsetOutOfRange, TopicNotFound
from storage.groups import CommittedOffset
from storage.records import PartitionInfo


def unread_from(group: Group, committed: int | None, info: PartitionInfo) -> int:
    """Where the group reads a partition from: its commit, else the reset policy's
    end of the log; never past the end, so end minus it is the lag."""
    if committed is not None:
        return min(committed, info.end_offset)
    return info.start_offset if group.reset is ResetPolicy.EARLIEST else info.end_offset


async def partition_lag(
    log: LogStore,
    group: Group,
    tp: TopicPartition,
    committed: CommittedOffset | None,
    now_ms: int,
) -> dict[str, Any] | None:
    """One partition's figures; None when its topic is gone."""
    try:
        info = await log.offsets(tp.topic, tp.partition)
    except TopicNotFound:
        return None
    position = unread_from(group, None if committed is None else committed.offset, info)
    lag = info.end_offset - position
    behind = 0
    if lag > 0:
        try:
            result = await log.read(
                tp.topic, tp.partition, max(position, info.start_offset), max_records=1
            )
        except OffsetOutOfRange:
            result = None
        if result is not None and result.records:
            behind = max(0, now_ms - result.records[0].timestamp)
    return {
        "partition": tp.partition,
        "committed": None if committed is None else committed.offset,
        "end_offset": info.end_offset,
        "lag": lag,
        "time_behind_ms": behind,
        "committed_ms": None if committed is None else committed.committed_ms,
        "metadata": None if committed is None else committed.metadata,
    }


async def group_json(service: GroupService, stored: str, namespace: str) -> dict[str, Any]:
    """The description of the group stored as `stored`; GroupNotFound if none. Needs
    only the service (its GroupStore and log), so the CLI uses it offline too."""
    loaded = await service.expire(stored)
    group = loaded.group
    now = service.clock()
    commits = {
        TopicPartition(c.topic, c.partition): c
        for c in await service.groups.committed_offsets(stored)
    }
    owners = {tp: m for m, tps in group.assignment for tp in tps}
    partitions = sorted(
        {TopicPartition(t, p) for t, n in group.partitions for p in range(n)} | set(commits)
    )
    rows = []
    statuses = []
    for tp in partitions:
        row = await partition_lag(service.log, group, tp, commits.get(tp), now)
        if row is None:
            continue
        figures = health.PartitionLag(row["lag"], row["time_behind_ms"], row["committed_ms"])
        verdict = health.partition_status(
            figures, has_members=bool(group.members), generation_ms=group.changed_ms, now_ms=now
        )
        statuses.append(verdict)
        rows.append(
            {
                "topic": client_name(namespace, tp.topic),
                **row,
                "member_id": owners.get(tp),
                "status": verdict.label,
            }
        )
    state = group.state
    if state is GroupState.EMPTY and not rows:
        state = GroupState.DEAD
    return {
        "group": client_name(namespace, stored),
        "state": state.value,
        "generation": group.generation,
        "assignor": group.assignor,
        "auto_offset_reset": group.reset.value,
        "status": health.group_status(statuses).label,
        "lag": sum(r["lag"] for r in rows),
        "members": [
            {
                "member_id": m.member_id,
                "topics": [client_name(namespace, t) for t in m.topics],
                "session_timeout_ms": m.session_timeout_ms,
                "last_seen_ms": m.last_seen_ms,
                "generation": m.joined_generation,
                "assignment": [
                    {"topic": client_name(namespace, tp.topic), "partition": tp.partition}
                    for tp in group.assigned(m.member_id)
                ],
            }
            for m in group.members
        ],
        "partitions": rows,
    }


async def describe(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime)
    return json_response(await group_json(service, target.stored, target.principal.namespace))


async def list_groups(request: Request, runtime: Runtime, service: GroupService) -> Response:
    principal = await runtime.principal(request, GroupRequest.LOOK)
    return json_response({"groups": await groups_json(service, principal.namespace)})


async def groups_json(service: GroupService, namespace: str) -> list[dict[str, Any]]:
    """A summary of each of the tenant's groups."""
    out = []
    for stored in await service.groups.list_groups(tenant_prefix(namespace)):
        try:
            view = await group_json(service, stored, namespace)
        except GroupNotFound:
            continue  # deleted meanwhile
        out.append(
            {
                "group": view["group"],
                "state": view["state"],
                "generation": view["generation"],
                "members": len(view["members"]),
                "lag": view["lag"],
                "status": view["status"],
            }
        )
    return out
