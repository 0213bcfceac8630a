"""The Confluent Schema Registry REST API under `/schema-registry`, over the same registry.

Existing clients (confluent-kafka's `SchemaRegistryClient` and its serializers,
and the tools built on that API) point at `<gateway>/schema-registry` and work
unchanged: the paths, bodies, replies, media type
(`application/vnd.schemaregistry.v1+json`) and `error_code` errors are that
API's. They authenticate as Confluent Cloud clients do, with HTTP Basic and the
API key as the password (the username is not checked: the key id, or anything),
or with `Authorization: Bearer <key or token>`. Subjects, ids and config are the
caller's tenant's, exactly as on `/v1/schemas`.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.bodies import parse_json, read_body
from gateway.http.params import parse_int, query_of
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.runtime import runtime_of
from gateway.schemas.access import require_schema_access
from gateway.schemas.confluent_errors import (
    INVALID_COMPATIBILITY_LEVEL,
    INVALID_SCHEMA,
    MEDIA_TYPE,
    RegistryApiError,
    api_error,
    invalid_version,
    not_configured,
)
from gateway.schemas.formats import (
    SCHEMA_TYPES,
    SchemaType,
    canonical_text,
    parse_schema,
    schema_type_of,
)
from gateway.schemas.registry import Registry, checked_subject
from gateway.schemas.routes import SCHEMA_BODY_LIMIT
from storage.errors import VersionNotFound
from storage.schemas import SubjectVersion
from tenants.principal import Principal

PREFIX = "/schema-registry"
MAX_VERSION = 2**31 - 1
CHALLENGE = {"WWW-Authenticate": 'Basic realm="tidegate", Bearer realm="tidegate"'}

Handler = Callable[[Request, Registry, Principal], Awaitable[Response]]


def reply(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE)


def credential_of(request: Request) -> str:
    """The API key or token: HTTP Basic's password (the username is ignored, though a
    key given as the username with an empty password is taken too) or a bearer."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if password or user:
            return password or user
    raise GatewayError(
        ProblemType.UNAUTHENTICATED,
        "send the API key as the password of HTTP Basic, or Authorization: Bearer <key>",
        headers=CHALLENGE,
    )


def endpoint(handler: Handler, *, write: bool) -> Callable[[Request], Awaitable[Response]]:
    """A route that authenticates the Confluent way and answers every error in that
    API's shape."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            runtime = runtime_of(request)
            principal = await runtime.principal(request, None, credential=credential_of(request))
            require_schema_access(principal, write=write)
            return await handler(request, Registry(runtime.schemas), principal)
        except Exception as exc:  # every error leaves in the API's own shape
            return api_error(exc).response()

    return run


def subject_of(request: Request) -> str:
    return checked_subject(request.path_params["subject"])


def flag(request: Request, name: str) -> bool:
    return query_of(request).get(name, "false").lower() == "true"


def version_of(text: str) -> int | None:
    """A version number, or None for `latest` (and -1, which that API takes for it)."""
    if text in ("latest", "-1"):
        return None
    number = parse_int(text)
    if number is None or not 1 <= number <= MAX_VERSION:
        raise invalid_version(text)
    return number


async def schema_body(request: Request) -> tuple[SchemaType, str]:
    """`{"schema": "<text>", "schemaType": "AVRO"|"JSON", "references": []}`."""
    runtime = runtime_of(request)
    raw = parse_json(await read_body(request, SCHEMA_BODY_LIMIT), runtime.json_limits)
    if not isinstance(raw, dict) or not isinstance(raw.get("schema"), str):
        raise RegistryApiError(422, INVALID_SCHEMA, 'Invalid schema: the body is {"schema": "..."}')
    if raw.get("references"):
        raise RegistryApiError(422, INVALID_SCHEMA, "Invalid schema: references are not supported")
    kind = raw.get("schemaType")
    if kind is not None and not isinstance(kind, str):
        raise RegistryApiError(422, INVALID_SCHEMA, "Invalid schema: schemaType is a string")
    return schema_type_of(kind), raw["schema"]


def with_type(body: dict[str, Any], schema_type: str) -> dict[str, Any]:
    """That API names the type only when it is not AVRO (its default)."""
    if schema_type != SchemaType.AVRO:
        body["schemaType"] = schema_type
    return body


def version_json(held: SubjectVersion) -> dict[str, Any]:
    body = {
        "subject": held.subject,
        "version": held.version,
        "id": held.schema_id,
        "schema": held.schema,
    }
    return with_type(body, held.schema_type)


async def register(request: Request, registry: Registry, principal: Principal) -> Response:
    kind, text = await schema_body(request)
    done = await registry.register(principal.namespace, subject_of(request), kind, text)
    return reply({"id": done.schema_id})


async def lookup(request: Request, registry: Registry, principal: Principal) -> Response:
    kind, text = await schema_body(request)
    subject = subject_of(request)
    if not flag(request, "deleted"):
        return reply(version_json(await registry.lookup(principal.namespace, subject, kind, text)))
    held = await registry.store.versions(principal.namespace, subject, include_deleted=True)
    wanted = canonical_text(orjson.loads(text))
    for version in held:
        if version.schema_type == kind and canonical_text(orjson.loads(version.schema)) == wanted:
            return reply(version_json(version))
    raise VersionNotFound(subject, None)


async def list_subjects(request: Request, registry: Registry, principal: Principal) -> Response:
    found = await registry.store.subjects(
        principal.namespace, include_deleted=flag(request, "deleted")
    )
    prefix = query_of(request).get("subjectPrefix", "")
    return reply([s for s in found if s.startswith(prefix)])


async def list_versions(request: Request, registry: Registry, principal: Principal) -> Response:
    held = await registry.store.versions(
        principal.namespace, subject_of(request), include_deleted=flag(request, "deleted")
    )
    return reply([v.version for v in held])


async def _version(request: Request, registry: Registry, principal: Principal) -> SubjectVersion:
    return await registry.store.version(
        principal.namespace,
        subject_of(request),
        version_of(request.path_params["version"]),
        include_deleted=flag(request, "deleted"),
    )


async def get_version(request: Request, registry: Registry, principal: Principal) -> Response:
    return reply(version_json(await _version(request, registry, principal)))


async def get_version_schema(
    request: Request, registry: Registry, principal: Principal
) -> Response:
    held = await _version(request, registry, principal)
    return Response(held.schema.encode(), media_type=MEDIA_TYPE)


async def get_by_id(request: Request, registry: Registry, principal: Principal) -> Response:
    number = parse_int(request.path_params["id"])
    if number is None or number < 1:
        raise RegistryApiError(404, 40403, f"Schema {request.path_params['id']} not found")
    held = await registry.store.schema(principal.namespace, number)
    return reply(with_type({"schema": held.schema}, held.schema_type))


async def schema_types(request: Request, registry: Registry, principal: Principal) -> Response:
    return reply(list(SCHEMA_TYPES))


async def delete_subject(request: Request, registry: Registry, principal: Principal) -> Response:
    deleted = await registry.store.delete_subject(
        principal.namespace, subject_of(request), permanent=flag(request, "permanent")
    )
    return reply(deleted)


async def delete_version(request: Request, registry: Registry, principal: Principal) -> Response:
    subject = subject_of(request)
    number = version_of(request.path_params["version"])
    if number is None:
        number = (await registry.store.version(principal.namespace, subject, None)).version
    deleted = await registry.store.delete_version(
        principal.namespace, subject, number, permanent=flag(request, "permanent")
    )
    return reply(deleted)


def _subject_or_default(request: Request) -> str | None:
    return subject_of(request) if "subject" in request.path_params else None


async def get_config(request: Request, registry: Registry, principal: Principal) -> Response:
    subject = _subject_or_default(request)
    if subject is None:
        return reply({"compatibilityLevel": await registry.level(principal.namespace, None)})
    own = await registry.store.compatibility(principal.namespace, subject)
    if own is None:
        if not flag(request, "defaultToGlobal"):
            raise not_configured(subject)
        own = await registry.level(principal.namespace, None)
    return reply({"compatibilityLevel": own})


async def put_config(request: Request, registry: Registry, principal: Principal) -> Response:
    runtime = runtime_of(request)
    raw = parse_json(await read_body(request, SCHEMA_BODY_LIMIT), runtime.json_limits)
    level = (
        raw.get("compatibility", raw.get("compatibilityLevel")) if isinstance(raw, dict) else None
    )
    if not isinstance(level, str):
        raise RegistryApiError(
            422,
            INVALID_COMPATIBILITY_LEVEL,
            'Invalid compatibility level: send {"compatibility": ...}',
        )
    await registry.store.set_compatibility(
        principal.namespace, _subject_or_default(request), level.upper()
    )
    return reply({"compatibility": level.upper()})


async def delete_config(request: Request, registry: Registry, principal: Principal) -> Response:
    subject = _subject_or_default(request)
    old = await registry.store.delete_compatibility(principal.namespace, subject)
    if old is None:
        if subject is not None:
            raise not_configured(subject)
        old = await registry.level(principal.namespace, None)
    return reply({"compatibilityLevel": old})


async def test_compatibility(
    request: Request, registry: Registry, principal: Principal
) -> Response:
    """Against one version (under the subject's mode, in its directions) or, without a
    version in the path, against every version the mode names."""
    kind, text = await schema_body(request)
    subject = subject_of(request)
    parsed = parse_schema(kind, text)
    against = None
    if "version" in request.path_params:
        number = version_of(request.path_params["version"])
        against = [await registry.store.version(principal.namespace, subject, number)]
        mode = await registry.level(principal.namespace, subject)
        _, found, _ = await registry.check(
            principal.namespace, subject, parsed, against=against, mode=mode
        )
    else:
        _, found, _ = await registry.check(principal.namespace, subject, parsed)
    body: dict[str, Any] = {"is_compatible": not found}
    if flag(request, "verbose"):
        body["messages"] = [f.describe() for f in found]
    return reply(body)


def _routes() -> list[Route]:
    def route(path: str, handler: Handler, method: str, *, write: bool = False) -> Route:
        return Route(PREFIX + path, endpoint(handler, write=write), methods=[method])

    return [
        route("/subjects", list_subjects, "GET"),
        route("/subjects/{subject}", lookup, "POST"),
        route("/subjects/{subject}", delete_subject, "DELETE", write=True),
        route("/subjects/{subject}/versions", register, "POST", write=True),
        route("/subjects/{subject}/versions", list_versions, "GET"),
        route("/subjects/{subject}/versions/{version}", get_version, "GET"),
        route("/subjects/{subject}/versions/{version}", delete_version, "DELETE", write=True),
        route("/subjects/{subject}/versions/{version}/schema", get_version_schema, "GET"),
        route("/schemas/ids/{id}", get_by_id, "GET"),
        route("/schemas/types", schema_types, "GET"),
        route("/config", get_config, "GET"),
        route("/config", put_config, "PUT", write=True),
        route("/config", delete_config, "DELETE", write=True),
        route("/config/{subject}", get_config, "GET"),
        route("/config/{subject}", put_config, "PUT", write=True),
        route("/config/{subject}", delete_config, "DELETE", write=True),
        route("/compatibility/subjects/{subject}/versions/{version}", test_compatibility, "POST"),
        route("/compatibility/subjects/{subject}/versions", test_compatibility, "POST"),
    ]


routes = _routes()
