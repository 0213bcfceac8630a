"""Topic routes: create, list, describe, change config, delete, within the caller's tenant.

Clients name topics without their tenant; storage holds `<namespace>~<topic>`
(the namespace is the tenant's immutable id).
Listing strips the prefix and shows only the caller's topics; another
tenant's topic answers 404 exactly like a missing one.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.bodies import read_json
from gateway.http.names import checked_topic_name, storage_name, tenant_prefix
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import runtime_of
from gateway.topics.config import TopicIn, TopicPatch, description_json, fit_to_plan, topic_json
from storage.errors import SubjectNotFound, VersionNotFound
from storage.records import TopicConfig, ValueFormat
from storage.schemas import SchemaStore
from tenants.principal import Scope
from tenants.quotas import check_count

CONFIG_BODY_LIMIT = 64 * 1024


async def create_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, Scope.TOPICS_ADMIN)
    log = runtime.log
    raw = await read_json(request, limit=CONFIG_BODY_LIMIT, limits=runtime.json_limits)
    body = validated(TopicIn, raw)
    name = checked_topic_name(body.name)
    if not principal.may_use_topic(name):
        raise GatewayError(ProblemType.FORBIDDEN, f"the credential may not use topic {name!r}")
    limits = await runtime.quotas.limits(principal.tenant)
    counts = await runtime.usage.counts(log, principal.namespace)
    check_count("max_topics", counts.topics, 1, limits.max_topics)
    check_count("max_partitions", counts.partitions, body.partitions, limits.max_partitions)
    config = fit_to_plan(body.config.apply(TopicConfig()), body.config.model_fields_set, limits)
    await check_schema_binding(runtime.schemas, principal.namespace, config)
    info = await log.create_topic(storage_name(principal.namespace, name), body.partitions, config)
    response = json_response(topic_json(info, principal.namespace), 201)
    response.headers["Location"] = f"/v1/topics/{name}"
    return response


async def check_schema_binding(schemas: SchemaStore, namespace: str, config: TopicConfig) -> None:
    """A `value_schema` names a subject of the tenant with a live version, on a topic
    of JSON values (records are validated as JSON, Avro ones too); 422 otherwise."""
    subject = config.value_schema
    if subject is None:
        return
    problem = None
    if config.value_format is not ValueFormat.JSON:
        problem = "value_schema needs value_format json: values are validated as JSON"
    else:
        try:
            await schemas.version(namespace, subject, None)
        except (SubjectNotFound, VersionNotFound):
            problem = f"value_schema names subject {subject!r}, which has no live version"
    if problem is not None:
        raise GatewayError(
            ProblemType.INVALID_CONFIG,
            problem,
            errors=[{"pointer": "/config/value_schema", "message": problem}],
        )


async def list_topics(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, Scope.TOPICS_READ)
    log = runtime.log
    infos = await log.list_topics(prefix=tenant_prefix(principal.namespace))
    topics = [topic_json(info, principal.namespace) for info in infos]
    visible = [t for t in topics if principal.may_use_topic(t["name"])]
    return json_response({"topics": visible})


async def describe_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_READ)
    desc = await target.log.describe_topic(target.stored)
    return json_response(description_json(desc, target.principal.namespace))


async def update_topic(request: Request) -> Response:
    """Change config keys and/or grow the partition count. Growing is durable and
    immediate; keyed records map to the new count from then on, as in Kafka."""
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_ADMIN)
    principal, log, stored = target.principal, target.log, target.stored
    raw = await read_json(request, limit=CONFIG_BODY_LIMIT, limits=runtime.json_limits)
    patch = validated(TopicPatch, raw)
    desc = await log.describe_topic(stored)
    limits = await runtime.quotas.limits(principal.tenant)
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
    if config.value_schema != desc.topic.config.value_schema:
        await check_schema_binding(runtime.schemas, principal.namespace, config)
    info = desc.topic
    if patch.partitions is not None and patch.partitions > info.partitions:
        counts = await runtime.usage.counts(log, principal.namespace)
        added = patch.partitions - info.partitions
        check_count("max_partitions", counts.partitions, added, limits.max_partitions)
    if patch.partitions is not None:
        # The store refuses a smaller count (422 naming the current one).
        info = await log.add_partitions(stored, patch.partitions)
    if dataclasses.astuple(config) != dataclasses.astuple(info.config):
        info = await log.update_topic_config(stored, config)
    return json_response(topic_json(info, principal.namespace))


async def delete_topic(request: Request) -> Response:
    runtime = runtime_of(request)
    target = await runtime.topic_request(request, Scope.TOPICS_ADMIN)
    await target.log.delete_topic(target.stored)
    return Response(status_code=204)


routes = [
    Route("/v1/topics", create_topic, methods=["POST"]),
    Route("/v1/topics", list_topics, methods=["GET"]),
    Route("/v1/topics/{topic}", describe_topic, methods=["GET"]),
    Route("/v1/topics/{topic}", update_topic, methods=["PATCH"]),
    Route("/v1/topics/{topic}", delete_topic, methods=["DELETE"]),
]
