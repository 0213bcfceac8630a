"""The native registry API under `/v1/schemas`: subjects, versions, ids, compatibility.

Errors are problem+json like the rest of `/v1`: an unknown subject, version or
id is 404, a schema that is not one 422 `invalid-schema`, an incompatible one
409 `schema-incompatible` listing every incompatibility (the version, the
direction, a JSON pointer into the schema and what breaks). Everything acts in
the caller's tenant; another tenant's subject answers exactly like a missing one.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.bodies import read_json
from gateway.http.params import parse_int, query_of
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import runtime_of
from gateway.schemas.access import require_schema_access
from gateway.schemas.compatibility import Incompatibility
from gateway.schemas.formats import InvalidSchema, SchemaType, parse_schema
from gateway.schemas.registry import (
    InvalidSubject,
    Registry,
    SchemaIncompatible,
    checked_subject,
    schema_text,
)
from storage.schemas import SubjectVersion
from tenants.principal import Principal

SCHEMA_BODY_LIMIT = 1024 * 1024
"""Bytes of a registration body: a schema of thousands of fields fits."""


class SchemaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    schema_type: Literal["JSON", "AVRO"]
    schema_: Any = Field(alias="schema")
    version: int | Literal["latest"] | None = None  # the dry-run check's target


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    compatibility: StrictStr


async def caller(request: Request, *, write: bool) -> tuple[Registry, Principal]:
    runtime = runtime_of(request)
    principal = await runtime.principal(request, None)
    require_schema_access(principal, write=write)
    return Registry(runtime.schemas), principal


def subject_of(request: Request) -> str:
    try:
        return checked_subject(request.path_params["subject"])
    except InvalidSubject as exc:
        raise GatewayError(ProblemType.INVALID_NAME, str(exc)) from None


def version_of(text: str) -> int | None:
    """`latest` (None) or a version number >= 1; 400 otherwise."""
    if text == "latest":
        return None
    number = parse_int(text)
    if number is None or number < 1:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            f"a version is a number from 1 or 'latest', not {text!r}",
            parameter="version",
        )
    return number


def flag(request: Request, name: str) -> bool:
    return query_of(request).get(name, "false").lower() == "true"


def invalid_schema(exc: InvalidSchema) -> GatewayError:
    return GatewayError(
        ProblemType.INVALID_SCHEMA, str(exc), errors=[{"pointer": "/schema", "message": str(exc)}]
    )


def incompatibility_json(found: Incompatibility) -> dict[str, Any]:
    return {
        "version": found.version,
        "direction": found.direction,
        "pointer": found.pointer,
        "message": found.message,
    }


def incompatible(exc: SchemaIncompatible) -> GatewayError:
    listed = [incompatibility_json(f) for f in exc.found]
    detail = f"the schema breaks subject {exc.subject!r}'s compatibility {exc.mode}"
    if exc.found:
        detail += ": " + "; ".join(f.describe() for f in exc.found[:5])
    else:
        detail = f"subject {exc.subject!r} changed during the registration repeatedly; retry"
    return GatewayError(
        ProblemType.SCHEMA_INCOMPATIBLE,
        detail,
        compatibility=exc.mode,
        incompatibilities=listed,
        errors=[{"pointer": f"/schema{f.pointer}", "message": f.describe()} for f in exc.found],
    )


async def _schema_body(request: Request) -> SchemaIn:
    runtime = runtime_of(request)
    raw = await read_json(request, limit=SCHEMA_BODY_LIMIT, limits=runtime.json_limits)
    if not isinstance(raw, dict) or "schema" not in raw:
        raise GatewayError(
            ProblemType.INVALID_BODY,
            'the body is {"schema_type": "JSON" or "AVRO", "schema": ...}',
            errors=[{"pointer": "/schema", "message": "required"}],
        )
    return validated(SchemaIn, raw)


def version_json(held: SubjectVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": held.subject,
        "version": held.version,
        "id": held.schema_id,
        "schema_type": held.schema_type,
        "schema": orjson.loads(held.schema),
    }
    if held.deleted:
        body["deleted"] = True
    return body


async def register(request: Request) -> Response:
    registry, principal = await caller(request, write=True)
    subject = subject_of(request)
    body = await _schema_body(request)
    try:
        done = await registry.register(
            principal.namespace, subject, SchemaType(body.schema_type), schema_text(body.schema_)
        )
    except InvalidSchema as exc:
        raise invalid_schema(exc) from None
    except SchemaIncompatible as exc:
        raise incompatible(exc) from None
    response = json_response(
        {"id": done.schema_id, "version": done.version}, 201 if done.created else 200
    )
    response.headers["Location"] = f"/v1/schemas/{subject}/versions/{done.version}"
    return response


async def check_compatibility(request: Request) -> Response:
    """The dry run: would this schema be accepted? Against the subject's live versions
    under its mode, or against one `version` (number or `latest`) under its mode."""
    registry, principal = await caller(request, write=False)
    subject = subject_of(request)
    body = await _schema_body(request)
    try:
        parsed = parse_schema(SchemaType(body.schema_type), schema_text(body.schema_))
    except InvalidSchema as exc:
        raise invalid_schema(exc) from None
    against = None
    if body.version is not None:
        number = None if body.version == "latest" else body.version
        against = [await registry.store.version(principal.namespace, subject, number)]
    mode, found, _ = await registry.check(principal.namespace, subject, parsed, against=against)
    return json_response(
        {
            "compatible": not found,
            "compatibility": mode,
            "incompatibilities": [incompatibility_json(f) for f in found],
        }
    )


async def list_subjects(request: Request) -> Response:
    registry, principal = await caller(request, write=False)
    found = await registry.store.subjects(
        principal.namespace, include_deleted=flag(request, "deleted")
    )
    return json_response({"subjects": found})


async def list_versions(request: Request) -> Response:
    registry, principal = await caller(request, write=False)
    held = await registry.store.versions(
        principal.namespace, subject_of(request), include_deleted=flag(request, "deleted")
    )
    return json_response({"versions": [v.version for v in held]})


async def get_version(request: Request) -> Response:
    registry, principal = await caller(request, write=False)
    held = await registry.store.version(
        principal.namespace,
        subject_of(request),
        version_of(request.path_params["version"]),
        include_deleted=flag(request, "deleted"),
    )
    return json_response(version_json(held))


async def get_by_id(request: Request) -> Response:
    registry, principal = await caller(request, write=False)
    number = parse_int(request.path_params["id"])
    if number is None or number < 1:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER, "a schema id is a number from 1", parameter="id"
        )
    held = await registry.store.schema(principal.namespace, number)
    return json_response(
        {"id": held.schema_id, "schema_type": held.schema_type, "schema": orjson.loads(held.schema)}
    )


async def delete_version(request: Request) -> Response:
    registry, principal = await caller(request, write=True)
    number = version_of(request.path_params["version"])
    subject = subject_of(request)
    if number is None:
        number = (await registry.store.version(principal.namespace, subject, None)).version
    deleted = await registry.store.delete_version(
        principal.namespace, subject, number, permanent=flag(request, "permanent")
    )
    return json_response({"version": deleted})


async def delete_subject(request: Request) -> Response:
    registry, principal = await caller(request, write=True)
    deleted = await registry.store.delete_subject(
        principal.namespace, subject_of(request), permanent=flag(request, "permanent")
    )
    return json_response({"versions": deleted})


async def get_config(request: Request) -> Response:
    registry, principal = await caller(request, write=False)
    subject = subject_of(request)
    own = await registry.store.compatibility(principal.namespace, subject)
    level = own if own is not None else await registry.level(principal.namespace, None)
    return json_response({"compatibility": level, "inherited": own is None})


async def put_config(request: Request) -> Response:
    registry, principal = await caller(request, write=True)
    subject = subject_of(request)
    runtime = runtime_of(request)
    raw = await read_json(request, limit=SCHEMA_BODY_LIMIT, limits=runtime.json_limits)
    body = validated(ConfigIn, raw)
    level = body.compatibility.upper()
    await registry.store.set_compatibility(principal.namespace, subject, level)
    return json_response({"compatibility": level})


async def delete_config(request: Request) -> Response:
    registry, principal = await caller(request, write=True)
    subject = subject_of(request)
    await registry.store.delete_compatibility(principal.namespace, subject)
    level = await registry.level(principal.namespace, None)
    return json_response({"compatibility": level, "inherited": True})


routes = [
    Route("/v1/schemas", list_subjects, methods=["GET"]),
    Route("/v1/schemas/ids/{id}", get_by_id, methods=["GET"]),
    Route("/v1/schemas/{subject}", delete_subject, methods=["DELETE"]),
    Route("/v1/schemas/{subject}/versions", register, methods=["POST"]),
    Route("/v1/schemas/{subject}/versions", list_versions, methods=["GET"]),
    Route("/v1/schemas/{subject}/versions/{version}", get_version, methods=["GET"]),
    Route("/v1/schemas/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
    Route("/v1/schemas/{subject}/compatibility", check_compatibility, methods=["POST"]),
    Route("/v1/schemas/{subject}/config", get_config, methods=["GET"]),
    Route("/v1/schemas/{subject}/config", put_config, methods=["PUT"]),
    Route("/v1/schemas/{subject}/config", delete_config, methods=["DELETE"]),
]
