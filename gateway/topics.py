"""Topic routes: create, list, describe, change config, delete, within the caller's tenant.

Clients name topics without their tenant; storage holds `<tenant>~<topic>`.
Listing strips the prefix and shows only the caller's topics; another
tenant's topic answers 404 exactly like a missing one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.bodies import read_json
from gateway.errors import GatewayError, ProblemType
from gateway.names import checked_topic_name, client_name, storage_name, tenant_prefix
from gateway.runtime import runtime_of
from storage.records import TopicConfig, TopicDescription, TopicInfo
from tenants.plans import Limits
from tenants.principal import Scope
from tenants.quotas import check_count

CONFIG_BODY_LIMIT = 64 * 1024
M = TypeVar("M", bound=BaseModel)


class ConfigIn(BaseModel):
    """Settable topic config keys; each optional, so PATCH changes only what it names."""

    model_config = ConfigDict(extra="forbid", strict=True)

    retention_ms: StrictInt | None = Field(default=None, ge=1)
    retention_bytes: StrictInt | None = Field(default=None, ge=1)
    max_record_bytes: StrictInt | None = Field(default=None, ge=1, le=64 * 1024 * 1024)
    segment_bytes: StrictInt | None = Field(default=None, ge=1024, le=2**31 - 1)
    segment_ms: StrictInt | None = Field(default=None, ge=1000)
    durability: Literal["fsync", "interval", "none"] | None = None
    flush_interval_ms: StrictInt | None = Field(default=None, ge=1)
    value_format: Literal["json", "string", "binary"] | None = None
    value_schema: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    cleanup_policy: Literal["delete"] | None = None

    def apply(self, base: TopicConfig) -> TopicConfig:
        """`base` with every key this body set (an explicit null clears retention)."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        nullable = {"retention_ms", "retention_bytes", "value_schema"}
        for name, value in list(changes.items()):
            if value is None and name not in nullable:
                del changes[name]  # null for a non-nullable key means "leave as is"
        merged = base.to_dict() | changes
        return TopicConfig.from_dict(merged)


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: StrictStr = Field(max_length=300)
    partitions: StrictInt = Field(default=1, ge=1, le=10_000)
    config: ConfigIn = Field(default_factory=lambda: ConfigIn())


class TopicPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    config: ConfigIn


def fit_to_plan(config: TopicConfig, explicit: set[str], limits: Limits) -> TopicConfig:
    """`config` within the plan's `max_retention_ms` and `max_record_bytes`.

    A value the client set above the plan is refused (422 naming the limit);
    a default above it, or no retention at all, is lowered to the plan's value.
    """
    changes: dict[str, Any] = {}
    bounds = (
        ("retention_ms", config.retention_ms, limits.max_retention_ms),
        ("max_record_bytes", config.max_record_bytes, limits.max_record_bytes),
    )
    for key, value, allowed in bounds:
        if allowed is None or (value is not None and value <= allowed):
            continue
        if key in explicit:
            plan_key = "max_retention_ms" if key == "retention_ms" else key
            shown = "unlimited" if value is None else str(value)
            raise GatewayError(
                ProblemType.INVALID_CONFIG,
                f"{key} {shown} is above the plan's {plan_key} of {allowed}",
                limit=plan_key,
                allowed=allowed,
                errors=[{"pointer": f"/config/{key}", "message": f"at most {allowed}"}],
            )
        changes[key] = allowed
    return dataclasses.replace(config, **changes) if changes else config


def invalid_body(exc: ValidationError) -> GatewayError:
    """Pydantic's errors as the API's `errors` list with JSON pointers."""
    errors = []
    for err in exc.errors(include_url=False):
        pointer = "".join(f"/{part}" for part in err["loc"])
        errors.append({"pointer": pointer, "message": err["msg"]})
    return GatewayError(ProblemType.INVALID_BODY, "the request body is not valid", errors=errors)


def validated(model: type[M], raw: Any) -> M:
    """`raw` as `model`, or 422 `invalid-body` listing every field's problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_body(exc) from None


def topic_json(info: TopicInfo, tenant: str) -> dict[str, Any]:
    return {
        "name": client_name(tenant, info.name),
        "partitions": info.partitions,
        "config": info.config.to_dict(),
        "created_ms": info.created_ms,
    }


def description_json(desc: TopicDescription, tenant: str) -> dict[str, Any]:
    body = topic_json(desc.topic, tenant)
    body["partitions"] = [
        {
            "partition": p.partition,
            "start_offset": p.start_offset,
            "end_offset": p.end_offset,
            "bytes": p.bytes,
        }
        for p in desc.partitions
    ]
    return body


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def create_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, Scope.TOPICS_ADMIN)
    log, _ = runtime.storage()
    raw = await read_json(request, limit=CONFIG_BODY_LIMIT, limits=runtime.json_limits)
    body = validated(TopicIn, raw)
    name = checked_topic_name(body.name)
    if not principal.may_use_topic(name):
        raise GatewayError(ProblemType.FORBIDDEN, f"the credential may not use topic {name!r}")
    limits = await runtime.quota_service().limits(principal.tenant)
    counts = await runtime.usage.counts(log, principal.tenant)
    check_count("max_topics", counts.topics, 1, limits.max_topics)
    check_count("max_partitions", counts.partitions, body.partitions, limits.max_partitions)
    config = fit_to_plan(body.config.apply(TopicConfig()), body.config.model_fields_set, limits)
    info = await log.create_topic(storage_name(principal.tenant, name), body.partitions, config)
    response = json_response(topic_json(info, principal.tenant), 201)
    response.headers["Location"] = f"/v1/topics/{name}"
    return response


async def list_topics(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, Scope.TOPICS_READ)
    log, _ = runtime.storage()
    infos = await log.list_topics(prefix=tenant_prefix(principal.tenant))
    topics = [topic_json(info, principal.tenant) for info in infos]
    visible = [t for t in topics if principal.may_use_topic(t["name"])]
    return json_response({"topics": visible})


async def describe_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_READ)
    desc = await target.log.describe_topic(target.stored)
    return json_response(description_json(desc, target.principal.tenant))


async def update_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_ADMIN)
    principal, log, stored = target.principal, target.log, target.stored
    raw = await read_json(request, limit=CONFIG_BODY_LIMIT, limits=runtime.json_limits)
    patch = validated(TopicPatch, raw)
    desc = await log.describe_topic(stored)
    limits = await runtime.quota_service().limits(principal.tenant)
    config = fit_to_plan(
        patch.config.apply(desc.topic.config), patch.config.model_fields_set, limits
    )
    if config.value_format != desc.topic.config.value_format and any(
        p.end_offset > 0 for p in desc.partitions
    ):
        # Stored values are only meaningful in the format they were checked against.
        raise GatewayError(
            ProblemType.INVALID_CONFIG,
            "value_format cannot change once the topic holds records",
            errors=[{"pointer": "/config/value_format", "message": "cannot change"}],
        )
    if dataclasses.astuple(config) == dataclasses.astuple(desc.topic.config):
        return json_response(topic_json(desc.topic, principal.tenant))
    info = await log.update_topic_config(stored, config)
    return json_response(topic_json(info, principal.tenant))


async def delete_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_ADMIN)
    await target.log.delete_topic(target.stored)
    runtime.round_robin.forget(target.stored)
    return Response(status_code=204)


routes = [
    Route("/v1/topics", create_topic, methods=["POST"]),
    Route("/v1/topics", list_topics, methods=["GET"]),
    Route("/v1/topics/{topic}", describe_topic, methods=["GET"]),
    Route("/v1/topics/{topic}", update_topic, methods=["PATCH"]),
    Route("/v1/topics/{topic}", delete_topic, methods=["DELETE"]),
]
