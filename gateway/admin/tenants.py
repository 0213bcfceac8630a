"""Operator routes under `/v1/admin`: tenants, their API keys and their quota overrides.

Every route needs the operator scope `admin`, which only the operator tenant
(`default`) can hold: a tenant's own key can never be minted with it, so no
tenant administers another. Tenant records are answered with their effective
limits (plan values with the overrides applied). Deleting a tenant also
deletes its keys and topics (see `delete_tenant`); the operator tenant itself
can be neither suspended nor deleted, so the operator cannot lock themselves out.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.bodies import read_json
from gateway.http.names import SEPARATOR
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import Runtime, runtime_of
from storage.backend import LogStore
from storage.errors import GroupNotFound, TopicNotFound, VersionConflict
from storage.groups import GroupStore
from storage.schemas import SchemaStore
from tenants.directory import DEFAULT_TENANT, TenantDirectory
from tenants.principal import Principal, Scope
from tenants.quotas import limits_json
from tenants.store import KeyRecord, TenantRecord

log = logging.getLogger(__name__)

ADMIN_BODY_LIMIT = 64 * 1024
MAX_KEY_TTL_S = 10 * 365 * 24 * 3600


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: StrictStr = Field(max_length=100)
    plan: StrictStr | None = Field(default=None, max_length=100)


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    status: StrictStr | None = Field(default=None, pattern="^(active|suspended)$")
    plan: StrictStr | None = Field(default=None, max_length=100)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    scopes: list[StrictStr] = Field(min_length=1, max_length=16)
    topics: list[StrictStr] = Field(default_factory=list, max_length=100)
    expires_in_s: StrictInt | None = Field(default=None, ge=1, le=MAX_KEY_TTL_S)


async def _operator(request: Request) -> tuple[Runtime, TenantDirectory, Principal]:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, Scope.ADMIN)
    return runtime, runtime.directory, principal


async def _body(request: Request, runtime: Runtime) -> Any:
    return await read_json(request, limit=ADMIN_BODY_LIMIT, limits=runtime.json_limits)


def tenant_json(record: TenantRecord, directory: TenantDirectory) -> dict[str, Any]:
    return {
        "name": record.name,
        "id": record.uid,
        "plan": record.plan,
        "status": record.status,
        "created_ms": record.created_ms,
        "overrides": record.overrides,
        "limits": limits_json(directory.limits_of(record)),
    }


def key_json(record: KeyRecord) -> dict[str, Any]:
    """A key's public facts; the secret is never kept, so never shown again."""
    return {
        "key_id": record.key_id,
        "tenant": record.tenant,
        "scopes": list(record.scopes),
        "topics": list(record.topics),
        "created_ms": record.created_ms,
        "expires_ms": record.expires_ms,
        "revoked": record.revoked,
        "last_used_ms": record.last_used_ms,
    }


def _not_operator_tenant(name: str, action: str) -> None:
    if name == DEFAULT_TENANT:
        raise GatewayError(
            ProblemType.CONFLICT,
            f"the operator tenant {DEFAULT_TENANT!r} cannot be {action}",
            tenant=name,
        )


async def create_tenant(request: Request) -> Response:
    runtime, directory, _ = await _operator(request)
    body = validated(TenantIn, await _body(request, runtime))
    record = await directory.create_tenant(body.name, body.plan or runtime.settings.default_plan)
    response = json_response(tenant_json(record, directory), 201)
    response.headers["Location"] = f"/v1/admin/tenants/{record.name}"
    return response


async def list_tenants(request: Request) -> Response:
    _, directory, _ = await _operator(request)
    records = await directory.list_tenants()
    return json_response({"tenants": [tenant_json(r, directory) for r in records]})


async def get_tenant(request: Request) -> Response:
    _, directory, _ = await _operator(request)
    record = await directory.get_tenant(request.path_params["tenant"])
    return json_response(tenant_json(record, directory))


async def update_tenant(request: Request) -> Response:
    """Suspend or resume (`status`), or move to another `plan`; effective at once."""
    runtime, directory, _ = await _operator(request)
    name = request.path_params["tenant"]
    patch = validated(TenantPatch, await _body(request, runtime))
    if patch.status == "suspended":
        _not_operator_tenant(name, "suspended")
    record = await directory.get_tenant(name)
    if patch.plan is not None:
        record = await directory.set_plan(name, patch.plan)
    if patch.status is not None:
        record = await directory.set_status(name, patch.status)
    runtime.quotas.forget(name)
    return json_response(tenant_json(record, directory))


async def delete_tenant(request: Request) -> Response:
    """The tenant, its keys and all its data; 204 once every part is gone.

    The tenant and its keys are deleted in one transaction, which leaves a
    tombstone of the tenant's id: from then on no credential of it works and its
    name is free (a tenant created again under it has another id, so it sees
    nothing of the old data even before the purge ends). Then the data stored
    under the id is purged and the tombstone marked purged. If the purge is
    interrupted (a crash, a full disk), the next start, or the next tenant
    deletion, finishes it.
    """
    runtime, directory, _ = await _operator(request)
    name = request.path_params["tenant"]
    _not_operator_tenant(name, "deleted")
    await directory.get_tenant(name)
    await directory.delete_tenant(name)
    runtime.quotas.forget(name)
    await purge_deleted_tenants(directory, runtime.log, runtime.schemas, runtime.groups)
    return Response(status_code=204)


async def purge_deleted_tenants(
    directory: TenantDirectory,
    log_store: LogStore,
    schema_store: SchemaStore,
    group_store: GroupStore,
) -> int:
    """Delete every topic, schema registry entry and consumer group stored under a
    deleted tenant's id; returns how many topics went.

    Runs at every start and after each tenant deletion, over every tombstone (not
    only those not yet marked purged), so a topic, subject or group a request of
    the tenant created while it was being deleted goes too.
    """
    deleted = set(await directory.deleted_ids())
    if not deleted:
        return 0
    for namespace in await schema_store.namespaces():
        if namespace in deleted:
            await schema_store.purge(namespace)
    removed = 0
    for info in await log_store.list_topics():
        namespace, _, _ = info.name.partition(SEPARATOR)
        if namespace in deleted:
            try:
                await log_store.delete_topic(info.name)
                removed += 1
            except TopicNotFound:
                pass  # deleted meanwhile
    for uid in deleted:
        for group in await group_store.list_groups(prefix=uid + SEPARATOR):
            await _purge_group(group_store, group)
    for uid in await directory.unpurged():
        await directory.purged(uid)
        log.info("data of deleted tenant %s purged", uid)
    return removed


async def _purge_group(group_store: GroupStore, group: str) -> None:
    """Delete `group` whatever its version (a member's write may race the purge)."""
    for _ in range(10):
        stored = await group_store.get_group(group)
        if stored is None:
            return
        try:
            await group_store.delete_group(group, expected_version=stored.version)
            return
        except (VersionConflict, GroupNotFound):
            continue


async def create_key(request: Request) -> Response:
    runtime, directory, _ = await _operator(request)
    tenant = request.path_params["tenant"]
    body = validated(KeyIn, await _body(request, runtime))
    expires_ms = None
    if body.expires_in_s is not None:
        expires_ms = runtime.now_ms() + body.expires_in_s * 1000
    key_id, key = await directory.create_key(
        tenant, body.scopes, body.topics, expires_ms=expires_ms
    )
    record = await directory.get_key(tenant, key_id)
    reply = key_json(record) | {"key": key}
    response = json_response(reply, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def list_keys(request: Request) -> Response:
    _, directory, _ = await _operator(request)
    records = await directory.list_keys(request.path_params["tenant"])
    return json_response({"keys": [key_json(r) for r in records]})


async def revoke_key(request: Request) -> Response:
    _, directory, _ = await _operator(request)
    await directory.revoke_key(request.path_params["tenant"], request.path_params["key_id"])
    return Response(status_code=204)


async def put_quotas(request: Request) -> Response:
    """Replace the tenant's overrides: `{"max_topics": 5, "requests_per_second": null}`."""
    runtime, directory, _ = await _operator(request)
    name = request.path_params["tenant"]
    raw = await _body(request, runtime)
    if not isinstance(raw, dict):
        raise GatewayError(
            ProblemType.INVALID_BODY,
            "the body is an object of limit names to numbers (or null for unlimited)",
        )
    record = await directory.set_overrides(name, raw)
    runtime.quotas.forget(name)
    return json_response(tenant_json(record, directory))


async def get_quotas(request: Request) -> Response:
    _, directory, _ = await _operator(request)
    record = await directory.get_tenant(request.path_params["tenant"])
    return json_response(tenant_json(record, directory))


routes = [
    Route("/v1/admin/tenants", create_tenant, methods=["POST"]),
    Route("/v1/admin/tenants", list_tenants, methods=["GET"]),
    Route("/v1/admin/tenants/{tenant}", get_tenant, methods=["GET"]),
    Route("/v1/admin/tenants/{tenant}", update_tenant, methods=["PATCH"]),
    Route("/v1/admin/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
    Route("/v1/admin/tenants/{tenant}/keys", create_key, methods=["POST"]),
    Route("/v1/admin/tenants/{tenant}/keys", list_keys, methods=["GET"]),
    Route("/v1/admin/tenants/{tenant}/keys/{key_id}", revoke_key, methods=["DELETE"]),
    Route("/v1/admin/tenants/{tenant}/quotas", put_quotas, methods=["PUT"]),
    Route("/v1/admin/tenants/{tenant}/quotas", get_quotas, methods=["GET"]),
]
