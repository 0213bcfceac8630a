"""Errors in the Confluent Schema Registry API's shape: `{"error_code": 40401, "message": ...}`.

Clients of that API branch on `error_code` (40401 subject not found, 40402
version not found, 40403 schema not found, 40404..40407 the soft-delete
order, 40408 no subject-level compatibility, 409 incompatible, 42201 invalid
schema, 42202 invalid version, 42203 invalid compatibility level, 50001 the
store failed), so every exception a registry route can raise maps to one here:
the registry's own, then whatever the gateway's problem table says for the
rest (401 as 40101, 403 as 40301, other statuses as their number), keeping
its headers (`Retry-After`, `WWW-Authenticate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson
from starlette.responses import Response

from gateway.http.problems import GatewayError, ProblemType, problem_for
from gateway.schemas.formats import InvalidSchema
from gateway.schemas.registry import InvalidSubject, SchemaIncompatible
from storage import errors as se
from tenants.errors import TenantError

log = logging.getLogger("tidegate.schemas")

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_COMPATIBILITY_NOT_CONFIGURED = 40408
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
STORE_ERROR = 50001


class RegistryApiError(Exception):
    """An error the Confluent routes detect themselves, with its status and code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def invalid_version(text: str) -> RegistryApiError:
    return RegistryApiError(
        422,
        INVALID_VERSION,
        f"The specified version '{text}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def not_configured(subject: str) -> RegistryApiError:
    return RegistryApiError(
        404,
        SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
        f"Subject '{subject}' does not have subject-level compatibility configured",
    )


@dataclass(frozen=True, slots=True)
class ApiError:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        body = orjson.dumps({"error_code": self.code, "message": self.message})
        return Response(body, self.status, headers=self.headers, media_type=MEDIA_TYPE)


_STORE_ERRORS: dict[type[Exception], tuple[int, int]] = {
    se.SubjectNotFound: (404, SUBJECT_NOT_FOUND),
    se.VersionNotFound: (404, VERSION_NOT_FOUND),
    se.SchemaNotFound: (404, SCHEMA_NOT_FOUND),
    se.SubjectSoftDeleted: (404, SUBJECT_SOFT_DELETED),
    se.SubjectNotSoftDeleted: (404, SUBJECT_NOT_SOFT_DELETED),
    se.VersionSoftDeleted: (404, VERSION_SOFT_DELETED),
    se.VersionNotSoftDeleted: (404, VERSION_NOT_SOFT_DELETED),
    se.InvalidCompatibility: (422, INVALID_COMPATIBILITY_LEVEL),
}


def _message(exc: Exception) -> str:
    if isinstance(exc, se.SubjectNotFound):
        return f"Subject '{exc.subject}' not found."
    if isinstance(exc, se.VersionNotFound):
        return f"Version {'latest' if exc.version is None else exc.version} not found."
    if isinstance(exc, se.SchemaNotFound):
        return f"Schema {exc.schema_id} not found"
    return str(exc)


def api_error(exc: Exception) -> ApiError:
    """The Confluent-shaped answer to any exception a registry route raised."""
    if isinstance(exc, RegistryApiError):
        return ApiError(exc.status, exc.code, str(exc))
    for cls, (status, code) in _STORE_ERRORS.items():
        if isinstance(exc, cls):
            return ApiError(status, code, _message(exc))
    if isinstance(exc, SchemaIncompatible):
        details = [f.describe() for f in exc.found] or ["the subject changed while registering"]
        return ApiError(
            409,
            INCOMPATIBLE_SCHEMA,
            f"Schema being registered is incompatible with an earlier schema for subject "
            f'"{exc.subject}" under {exc.mode}, details: {details}',
        )
    if isinstance(exc, InvalidSchema):
        return ApiError(422, INVALID_SCHEMA, f"Invalid schema: {exc}")
    if isinstance(exc, InvalidSubject):
        return ApiError(422, INVALID_SCHEMA, f"Invalid subject: {exc}")
    if isinstance(exc, GatewayError | se.StorageError | TenantError):
        problem = problem_for(exc)
        status = problem.type.status
        headers = dict(problem.headers)
        if problem.type is ProblemType.UNAUTHENTICATED:
            headers["WWW-Authenticate"] = 'Basic realm="tidegate", Bearer realm="tidegate"'
        code = {401: 40101, 403: 40301}.get(status, STORE_ERROR if status >= 500 else status)
        return ApiError(status, code, problem.detail, headers)
    log.error("unhandled error in the schema registry API", exc_info=exc)
    return ApiError(500, STORE_ERROR, "Internal error; it has been logged")
