"""Membership and commits: join, heartbeat, leave, commit, read back the offsets.

- `POST /v1/groups/{group}/members` joins (a new member id) or rejoins (the
  `member_id` a 409 named, also after its session expired) and answers the
  member's assignment in the group's current generation.
- `POST /v1/groups/{group}/members/{member_id}/heartbeat` keeps the session
  (any group request by the member does too); 409 when it must rejoin.
- `DELETE /v1/groups/{group}/members/{member_id}` leaves: its partitions go to
  the others in the next generation.
- `POST /v1/groups/{group}/offsets` commits, fenced by generation and member:
  nothing lands unless the member owns every partition named in the current
  generation. The committed offset is the next offset to read.
- `GET /v1/groups/{group}/offsets` reads the commits back.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response

from gateway.coordinator.membership import Group, ResetPolicy
from gateway.coordinator.service import GroupService
from gateway.groups.fetch import assignment_json
from gateway.groups.names import GroupRequest
from gateway.http.bodies import parse_json, read_body, read_json, require_json_media
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import Runtime
from storage.errors import GroupNotFound
from storage.groups import OffsetCommit

BODY_LIMIT = 1024 * 1024
MEMBER_ID = r"^[A-Za-z0-9._-]{1,128}$"
MAX_METADATA = 4096


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[StrictStr] = Field(min_length=1, max_length=100)
    session_timeout_ms: StrictInt | None = None
    member_id: StrictStr | None = Field(default=None, pattern=MEMBER_ID)
    assignor: Literal["sticky", "range", "round-robin"] | None = None
    auto_offset_reset: Literal["earliest", "latest"] | None = None


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generation: StrictInt | None = None


class OffsetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: StrictStr
    partition: StrictInt = Field(ge=0)
    offset: StrictInt = Field(ge=0)
    metadata: StrictStr = Field(default="", max_length=MAX_METADATA)


class CommitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: StrictStr = Field(pattern=MEMBER_ID)
    generation: StrictInt = Field(ge=0)
    offsets: list[OffsetIn] = Field(min_length=1, max_length=10_000)


def joined_json(group: Group, member_id: str, namespace: str) -> dict[str, object]:
    member = group.member(member_id)
    return {
        "member_id": member_id,
        "generation": group.generation,
        "assignment": assignment_json(group, member_id, namespace),
        "state": group.state.value,
        "assignor": group.assignor,
        "auto_offset_reset": group.reset.value,
        "session_timeout_ms": member.session_timeout_ms if member else None,
        "members": len(group.members),
    }


async def join(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, consuming=True)
    body = validated(JoinIn, await read_json(request, limit=BODY_LIMIT, limits=runtime.json_limits))
    settings = runtime.settings
    timeout = body.session_timeout_ms or settings.group_session_timeout_ms
    low, high = settings.group_min_session_timeout_ms, settings.group_max_session_timeout_ms
    if not low <= timeout <= high:
        raise GatewayError(
            ProblemType.INVALID_BODY,
            f"session_timeout_ms must be within {low}..{high}",
            errors=[{"pointer": "/session_timeout_ms", "message": f"not within {low}..{high}"}],
        )
    topics = [target.stored_topic(t) for t in body.topics]
    member_id = body.member_id or uuid.uuid4().hex
    loaded = await service.join(
        target.stored,
        member_id,
        topics,
        timeout,
        assignor=body.assignor,
        reset=ResetPolicy(body.auto_offset_reset) if body.auto_offset_reset else None,
    )
    return json_response(joined_json(loaded.group, member_id, target.principal.namespace))


async def heartbeat(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, consuming=True)
    raw = await read_body(request, BODY_LIMIT)
    generation = None
    if raw.strip():  # the body is optional: {"generation": n} checks that generation too
        require_json_media(request)
        generation = validated(HeartbeatIn, parse_json(raw, runtime.json_limits)).generation
    loaded = await service.heartbeat(target.stored, request.path_params["member_id"], generation)
    group = loaded.group
    return json_response({"generation": group.generation, "state": group.state.value})


async def leave(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, consuming=True)
    await service.leave(target.stored, request.path_params["member_id"])
    return Response(status_code=204)


async def commit(request: Request, runtime: Runtime, service: GroupService) -> Response:
    target = await GroupRequest.of(request, runtime, consuming=True)
    body = validated(
        CommitIn, await read_json(request, limit=BODY_LIMIT, limits=runtime.json_limits)
    )
    offsets = []
    errors = []
    for i, o in enumerate(body.offsets):
        stored = target.stored_topic(o.topic)
        info = await runtime.log.offsets(stored, o.partition)
        if o.offset > info.end_offset:
            errors.append(
                {
                    "pointer": f"/offsets/{i}/offset",
                    "message": f"past the partition's end offset {info.end_offset}",
                }
            )
        offsets.append(OffsetCommit(stored, o.partition, o.offset, o.metadata))
    if errors:
        raise GatewayError(
            ProblemType.INVALID_BODY, "offsets past the end of the log", errors=errors
        )
    await service.commit(target.stored, body.member_id, body.generation, offsets)
    return Response(status_code=204)


async def read_offsets(request: Request, runtime: Runtime) -> Response:
    target = await GroupRequest.of(request, runtime)
    if await runtime.groups.get_group(target.stored) is None:
        raise GroupNotFound(target.stored)
    committed = await runtime.groups.committed_offsets(target.stored)
    return json_response(
        {
            "offsets": [
                {
                    "topic": target.client_topic(c.topic),
                    "partition": c.partition,
                    "offset": c.offset,
                    "metadata": c.metadata,
                    "committed_ms": c.committed_ms,
                }
                for c in committed
            ]
        }
    )
