"""Changing a group from outside: delete it, reset its offsets (`groups:write`).

Both only while no member is active (after expired members are removed), and
both fenced by the version at which the group was seen empty, so a member
that joins meanwhile wins and the operator gets 409 rather than a group torn
under its members.

`POST /v1/groups/{group}/offsets/reset` moves the committed offsets of the
named topics (default: every topic the group has committed or read) to
`earliest`, `latest`, the first record at or after a `timestamp`, or an
explicit `offset` (clamped into the partition's range). With `dry_run` it only
answers what it would do: each partition's previous and new offset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response

from gateway.coordinator.service import GroupService, Loaded
from gateway.groups.names import GroupRequest
from gateway.http.bodies import read_json
from gateway.http.names import SEPARATOR, client_name
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import Runtime
from storage.groups import OffsetCommit

BODY_LIMIT = 64 * 1024


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["earliest", "latest", "timestamp", "offset"]
    timestamp: StrictInt | None = Field(default=None, ge=0)
    offset: StrictInt | None = Field(default=None, ge=0)
    topics: list[StrictStr] | None = Field(default=None, min_length=1, max_length=100)
    dry_run: StrictBool = False


async def _empty(service: GroupService, stored: str, doing: str) -> Loaded:
    loaded = await service.expire(stored)
    if loaded.group.members:
        group = stored.split(SEPARATOR, 1)[-1]
        raise GatewayError(
            ProblemType.GROUP_NOT_EMPTY,
            f"consumer group {group!r} has {len(loaded.group.members)} active "
            f"members; {doing} once they have left or their sessions expired",
            members=len(loaded.group.members),
        )
    return loaded


async def delete_group(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, scope=GroupRequest.CHANGE)
    loaded = await _empty(service, target.stored, "delete it")
    await runtime.groups.delete_group(target.stored, expected_version=loaded.version)
    return Response(status_code=204)


async def reset_offsets(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, scope=GroupRequest.CHANGE)
    body = validated(
        ResetIn, await read_json(request, limit=BODY_LIMIT, limits=runtime.json_limits)
    )
    topics = None if body.topics is None else [target.stored_topic(t) for t in body.topics]
    shown = await reset_group(
        service, target.stored, target.principal.namespace, body, topics=topics
    )
    return json_response({"dry_run": body.dry_run, "offsets": shown})


async def reset_group(
    service: GroupService,
    stored: str,
    namespace: str,
    body: ResetIn,
    *,
    topics: list[str] | None,
) -> list[dict[str, Any]]:
    """Plan (and unless `body.dry_run`, apply) an offset reset of the empty group
    `stored`; `topics` are storage names (None: every topic it committed or read).
    Needs only the service, so the CLI uses it offline too."""
    needed = {"timestamp": body.timestamp, "offset": body.offset}
    if body.to in needed and needed[body.to] is None:
        raise GatewayError(
            ProblemType.INVALID_BODY,
            f"to={body.to!r} needs {body.to!r}",
            errors=[{"pointer": f"/{body.to}", "message": "required"}],
        )
    loaded = await _empty(service, stored, "reset its offsets")
    committed = {(c.topic, c.partition): c for c in await service.groups.committed_offsets(stored)}
    if topics is None:
        topics = sorted({t for t, _ in committed} | {t for t, _ in loaded.group.partitions})
    planned: list[OffsetCommit] = []
    shown = []
    log = service.log
    for topic in sorted(set(topics)):
        info = await log.get_topic(topic)
        for p in range(info.partitions):
            offsets = await log.offsets(topic, p)
            if body.to == "earliest":
                new = offsets.start_offset
            elif body.to == "latest":
                new = offsets.end_offset
            elif body.to == "timestamp":
                assert body.timestamp is not None
                new = await log.offset_for_time(topic, p, body.timestamp)
            else:
                assert body.offset is not None
                new = min(max(body.offset, offsets.start_offset), offsets.end_offset)
            before = committed.get((topic, p))
            planned.append(OffsetCommit(topic, p, new, before.metadata if before else ""))
            shown.append(
                {
                    "topic": client_name(namespace, topic),
                    "partition": p,
                    "previous": None if before is None else before.offset,
                    "offset": new,
                }
            )
    if not body.dry_run and planned:
        await service.groups.reset_offsets(
            stored, planned, expected_version=loaded.version, now_ms=service.clock()
        )
    return shown
