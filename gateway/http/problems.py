"""Every error the gateway answers, as RFC 9457 problem+json, from one table.

`ProblemType` lists the stable problem types (their `type` URI never changes
once published; docs/api.md lists them). `EXCEPTION_TABLE` maps each
storage and tenant exception class to its problem type: the only place
where a lower layer's error becomes an HTTP status. Route code raises
`GatewayError` for what it detects itself (bad parameters, limits). Responses
never carry stack traces or internal paths.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from starlette.responses import Response

from gateway.coordinator import membership as ce
from gateway.coordinator.service import NotAssigned
from storage import errors as se
from tenants import errors as te

log = logging.getLogger("tidegate.errors")

PROBLEM_BASE = "https://tidegate.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemType(Enum):
    """(slug, status, title). The slug is the stable part of the `type` URI."""

    BAD_REQUEST = ("bad-request", 400, "Bad request")
    INVALID_PARAMETER = ("invalid-parameter", 400, "Invalid parameter")
    INVALID_NAME = ("invalid-name", 400, "Invalid name")
    MALFORMED_JSON = ("malformed-json", 400, "Malformed JSON")
    UNAUTHENTICATED = ("unauthenticated", 401, "Authentication required")
    FORBIDDEN = ("forbidden", 403, "Not allowed")
    TENANT_SUSPENDED = ("tenant-suspended", 403, "Tenant suspended")
    LIMIT_REACHED = ("limit-reached", 403, "A limit of the tenant's plan is reached")
    NOT_FOUND = ("not-found", 404, "Not found")
    TOPIC_NOT_FOUND = ("topic-not-found", 404, "Topic not found")
    PARTITION_NOT_FOUND = ("partition-not-found", 404, "Partition not found")
    TENANT_NOT_FOUND = ("tenant-not-found", 404, "Tenant not found")
    KEY_NOT_FOUND = ("key-not-found", 404, "API key not found")
    GROUP_NOT_FOUND = ("group-not-found", 404, "Consumer group not found")
    SUBJECT_NOT_FOUND = ("subject-not-found", 404, "Schema subject not found")
    SCHEMA_VERSION_NOT_FOUND = ("schema-version-not-found", 404, "Schema version not found")
    SCHEMA_NOT_FOUND = ("schema-not-found", 404, "Schema not found")
    METHOD_NOT_ALLOWED = ("method-not-allowed", 405, "Method not allowed")
    TOPIC_EXISTS = ("topic-exists", 409, "Topic already exists")
    TENANT_EXISTS = ("tenant-exists", 409, "Tenant already exists")
    CONFLICT = ("conflict", 409, "Conflict with the resource's state")
    SCHEMA_INCOMPATIBLE = ("schema-incompatible", 409, "Schema incompatible with its subject")
    IDEMPOTENCY_IN_PROGRESS = (
        "idempotency-in-progress",
        409,
        "A request with this Idempotency-Key is still in progress",
    )
    REBALANCE_IN_PROGRESS = (
        "rebalance-in-progress",
        409,
        "The consumer group is rebalancing: rejoin for the new assignment",
    )
    STALE_GENERATION = (
        "stale-generation",
        409,
        "Not a member of the consumer group's current generation: rejoin",
    )
    PARTITION_NOT_ASSIGNED = (
        "partition-not-assigned",
        409,
        "Partition not assigned to this member",
    )
    GROUP_NOT_EMPTY = ("group-not-empty", 409, "Consumer group has active members")
    GROUP_PROTOCOL_MISMATCH = (
        "group-protocol-mismatch",
        409,
        "Join differs from the consumer group's assignor or reset policy",
    )
    UNKNOWN_CURSOR = ("unknown-cursor", 409, "Cursor is not the member's latest")
    REQUEST_TIMEOUT = ("request-timeout", 408, "Request timeout")
    BODY_TOO_LARGE = ("body-too-large", 413, "Request body too large")
    JSON_TOO_COMPLEX = ("json-too-complex", 413, "JSON document exceeds a limit")
    RECORD_TOO_LARGE = ("record-too-large", 413, "Record too large")
    TOO_MANY_RECORDS = ("too-many-records", 413, "Too many records in one request")
    UNSUPPORTED_MEDIA_TYPE = ("unsupported-media-type", 415, "Unsupported media type")
    OFFSET_OUT_OF_RANGE = ("offset-out-of-range", 416, "Offset out of range")
    UPGRADE_REQUIRED = ("upgrade-required", 426, "Upgrade to WebSocket required")
    INVALID_RECORDS = ("invalid-records", 422, "Invalid records")
    INVALID_BODY = ("invalid-body", 422, "Invalid request body")
    INVALID_CONFIG = ("invalid-config", 422, "Invalid topic configuration")
    INVALID_SCOPES = ("invalid-scopes", 422, "Unknown scopes")
    INVALID_SCHEMA = ("invalid-schema", 422, "Invalid schema")
    INVALID_COMPATIBILITY = ("invalid-compatibility", 422, "Invalid compatibility level")
    UNKNOWN_PLAN = ("unknown-plan", 422, "Unknown plan")
    INVALID_QUOTA = ("invalid-quota", 422, "Invalid quota override")
    INVALID_TENANT_NAME = ("invalid-tenant-name", 400, "Invalid tenant name")
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency-key-reused",
        422,
        "Idempotency-Key was already used with another request",
    )
    TOO_MANY_REQUESTS = ("too-many-requests", 429, "Too many requests")
    HEADERS_TOO_LARGE = (
        "request-header-fields-too-large",
        431,
        "Request header fields too large",
    )
    INTERNAL_ERROR = ("internal-error", 500, "Internal error")
    BACKEND_UNAVAILABLE = ("backend-unavailable", 503, "Storage backend unavailable")
    PARTITION_READ_ONLY = ("partition-read-only", 503, "Partition is read-only")
    DATA_UNAVAILABLE = ("data-unavailable", 503, "Stored data failed its integrity check")
    TOO_MANY_WAITERS = ("too-many-waiters", 503, "Too many waiting fetches")
    TOO_MANY_CONNECTIONS = ("too-many-connections", 503, "Too many open connections")
    SHUTTING_DOWN = ("shutting-down", 503, "Server is shutting down")
    DISK_FULL = ("disk-full", 507, "Storage is full")

    @property
    def slug(self) -> str:
        return self.value[0]

    @property
    def status(self) -> int:
        return int(self.value[1])

    @property
    def title(self) -> str:
        return self.value[2]

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


@dataclass
class Problem:
    """One problem+json document, plus the response headers it needs."""

    type: ProblemType
    detail: str
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type.uri,
            "title": self.type.title,
            "status": self.type.status,
            "detail": self.detail,
        }
        body.update(self.extensions)
        return body

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.to_dict()),
            status_code=self.type.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=self.headers,
        )


class GatewayError(Exception):
    """An error the gateway detects itself (parameters, limits, media types)."""

    def __init__(
        self,
        type_: ProblemType,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(type_, detail, dict(extensions), dict(headers or {}))


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


# Storage names are "<tenant>~<topic>"; clients only ever see the topic part.
def _client_topic(stored: str) -> str:
    return stored.split("~", 1)[-1]


def _topic_not_found(exc: se.TopicNotFound) -> Problem:
    topic = _client_topic(exc.topic)
    return Problem(ProblemType.TOPIC_NOT_FOUND, f"topic {topic!r} does not exist", {"topic": topic})


def _topic_exists(exc: se.TopicExists) -> Problem:
    topic = _client_topic(exc.topic)
    return Problem(ProblemType.TOPIC_EXISTS, f"topic {topic!r} already exists", {"topic": topic})


def _invalid_topic_name(exc: se.InvalidTopicName) -> Problem:
    return Problem(ProblemType.INVALID_NAME, f"invalid topic name {_client_topic(exc.topic)!r}")


def _invalid_config(exc: se.InvalidConfig) -> Problem:
    return Problem(ProblemType.INVALID_CONFIG, str(exc))


def _cannot_shrink(exc: se.PartitionsCannotShrink) -> Problem:
    return Problem(
        ProblemType.INVALID_CONFIG,
        f"the topic has {exc.current} partitions; the count can grow, never shrink",
        {
            "partitions": exc.current,
            "errors": [{"pointer": "/partitions", "message": f"at least {exc.current}"}],
        },
    )


def _partition_not_found(exc: se.PartitionNotFound) -> Problem:
    return Problem(
        ProblemType.PARTITION_NOT_FOUND,
        f"the topic has partitions 0..{exc.partitions - 1}, not {exc.partition}",
        {"partition": exc.partition, "partitions": exc.partitions},
    )


def _offset_out_of_range(exc: se.OffsetOutOfRange) -> Problem:
    return Problem(
        ProblemType.OFFSET_OUT_OF_RANGE,
        f"offset {exc.requested} is outside {exc.earliest}..{exc.latest} "
        f"of partition {exc.partition}",
        {
            "partition": exc.partition,
            "requested": exc.requested,
            "start_offset": exc.earliest,
            "end_offset": exc.latest,
        },
        {"Content-Range": f"offsets {exc.earliest}-{exc.latest}"},
    )


def _record_too_large(exc: se.RecordTooLarge) -> Problem:
    return Problem(
        ProblemType.RECORD_TOO_LARGE,
        str(exc),
        {
            "limit": exc.limit,
            "errors": [
                {
                    "record": exc.index,
                    "pointer": f"/records/{exc.index}",
                    "message": f"record is {exc.size} bytes; the topic allows {exc.limit}",
                }
            ],
        },
    )


def _corrupt(exc: se.CorruptData) -> Problem:
    # The range is never served. 503 rather than 500: the request was fine and
    # the server knows exactly what is wrong; the client can skip past the range.
    return Problem(
        ProblemType.DATA_UNAVAILABLE,
        f"offsets {exc.start_offset}..{exc.end_offset - 1} of partition {exc.partition} "
        "failed their integrity check and are not served; read from next_readable_offset",
        {
            "partition": exc.partition,
            "start_offset": exc.start_offset,
            "end_offset": exc.end_offset,
            "next_readable_offset": exc.end_offset,
        },
    )


def _fenced(exc: se.PartitionFenced) -> Problem:
    return Problem(
        ProblemType.PARTITION_READ_ONLY,
        f"partition {exc.partition} accepts no writes after a storage failure; reads work",
        {"partition": exc.partition},
        _retry_after(30),
    )


def _disk_full(exc: se.DiskFull | te.DirectoryFull) -> Problem:
    # One answer for every write path (log, idempotency state, tenants, catalog):
    # reads keep working, and the same request succeeds once space returns.
    return Problem(
        ProblemType.DISK_FULL,
        "no space left on the server's disk for this write; reads keep working, "
        "writes resume when space returns",
        headers=_retry_after(exc.retry_after_s),
    )


def _unavailable(exc: se.BackendUnavailable) -> Problem:
    if isinstance(exc, se.StoreClosed):
        return Problem(
            ProblemType.SHUTTING_DOWN, "the server is shutting down", headers=_retry_after(1)
        )
    return Problem(
        ProblemType.BACKEND_UNAVAILABLE,
        "the storage backend is unavailable; retry later",
        headers=_retry_after(exc.retry_after_s),
    )


_CHALLENGE = 'Bearer realm="tidegate"'


def _unauthenticated(exc: te.Unauthenticated) -> Problem:
    # One answer for every bad credential: which check failed is not revealed.
    return Problem(
        ProblemType.UNAUTHENTICATED,
        "the credential is missing, unknown, revoked or expired",
        headers={"WWW-Authenticate": _CHALLENGE},
    )


def _invalid_token(exc: te.InvalidToken) -> Problem:
    return Problem(
        ProblemType.UNAUTHENTICATED,
        "the token is invalid or expired",
        headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
    )


def _suspended(exc: te.TenantSuspended) -> Problem:
    return Problem(ProblemType.TENANT_SUSPENDED, "the credential's tenant is suspended")


def _quota_exceeded(exc: te.QuotaExceeded) -> Problem:
    """429 with Retry-After and the IETF draft's RateLimit-Policy / RateLimit fields."""
    retry = max(1, math.ceil(exc.retry_after_s))
    policy = f'"{exc.limit}";q={_number(exc.limit_value)};w=1'
    current = f'"{exc.limit}";r={max(0, math.floor(exc.remaining))};t={math.ceil(exc.reset_s)}'
    return Problem(
        ProblemType.TOO_MANY_REQUESTS,
        f"the tenant's {exc.limit} quota is used up; nothing was done. "
        f"Retry in {exc.retry_after_s:.3f} s",
        {
            "limit": exc.limit,
            "limit_value": exc.limit_value,
            "retry_after_ms": math.ceil(exc.retry_after_s * 1000),
        },
        {"Retry-After": str(retry), "RateLimit-Policy": policy, "RateLimit": current},
    )


def _client_auth_throttled(exc: te.ClientAuthThrottled) -> Problem:
    return Problem(
        ProblemType.TOO_MANY_REQUESTS,
        str(exc),
        {
            "limit": "client_auth_failures",
            "retry_after_ms": math.ceil(exc.retry_after_s * 1000),
        },
        {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
    )


def _scopes_not_held(exc: te.ScopesNotHeld) -> Problem:
    return Problem(
        ProblemType.FORBIDDEN,
        str(exc),
        {"errors": [{"pointer": "/scopes", "message": f"not held: {s}"} for s in exc.scopes]},
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _limit_reached(exc: te.LimitReached) -> Problem:
    return Problem(
        ProblemType.LIMIT_REACHED,
        str(exc),
        {"limit": exc.limit, "current": exc.current, "allowed": exc.allowed},
    )


def _limiter_unavailable(exc: te.LimiterUnavailable) -> Problem:
    return Problem(
        ProblemType.BACKEND_UNAVAILABLE,
        "the shared rate limiter does not answer; nothing was done, retry later",
        headers=_retry_after(exc.retry_after_s),
    )


def _tenant_not_found(exc: te.TenantNotFound) -> Problem:
    return Problem(ProblemType.TENANT_NOT_FOUND, str(exc), {"tenant": exc.name})


def _tenant_exists(exc: te.TenantExists) -> Problem:
    return Problem(ProblemType.TENANT_EXISTS, str(exc), {"tenant": exc.name})


def _invalid_tenant_name(exc: te.InvalidTenantName) -> Problem:
    return Problem(ProblemType.INVALID_TENANT_NAME, str(exc))


def _key_not_found(exc: te.KeyNotFound) -> Problem:
    return Problem(ProblemType.KEY_NOT_FOUND, str(exc), {"key_id": exc.key_id})


def _invalid_scopes(exc: te.InvalidScopes) -> Problem:
    reason = "not for this tenant" if isinstance(exc, te.OperatorScopeOnly) else "unknown scope"
    return Problem(
        ProblemType.INVALID_SCOPES,
        str(exc),
        {"errors": [{"pointer": "/scopes", "message": f"{reason}: {s}"} for s in exc.scopes]},
    )


def _unknown_plan(exc: te.UnknownPlan) -> Problem:
    return Problem(ProblemType.UNKNOWN_PLAN, str(exc), {"plans": list(exc.plans)})


def _invalid_quota(exc: te.InvalidQuota) -> Problem:
    return Problem(ProblemType.INVALID_QUOTA, str(exc))


def _tenant_error(exc: te.TenantError) -> Problem:
    return Problem(ProblemType.FORBIDDEN, "the request is not allowed for this credential")


def _subject_not_found(exc: se.SubjectNotFound) -> Problem:
    return Problem(ProblemType.SUBJECT_NOT_FOUND, str(exc), {"subject": exc.subject})


def _version_not_found(exc: se.VersionNotFound) -> Problem:
    version = "latest" if exc.version is None else exc.version
    return Problem(
        ProblemType.SCHEMA_VERSION_NOT_FOUND, str(exc), {"subject": exc.subject, "version": version}
    )


def _schema_not_found(exc: se.SchemaNotFound) -> Problem:
    return Problem(ProblemType.SCHEMA_NOT_FOUND, str(exc), {"id": exc.schema_id})


def _schema_state(exc: se.SchemaRegistryError) -> Problem:
    # Soft-delete order (a soft delete twice, a permanent delete first) and a lost race.
    return Problem(ProblemType.CONFLICT, str(exc))


def _invalid_compatibility(exc: se.InvalidCompatibility) -> Problem:
    return Problem(
        ProblemType.INVALID_COMPATIBILITY,
        str(exc),
        {
            "accepted": list(exc.accepted),
            "errors": [
                {"pointer": "/compatibility", "message": f"one of {', '.join(exc.accepted)}"}
            ],
        },
    )


def _gateway_error(exc: GatewayError) -> Problem:
    return exc.problem


def _group_not_found(exc: se.GroupNotFound) -> Problem:
    group = _client_topic(exc.group)
    return Problem(
        ProblemType.GROUP_NOT_FOUND, f"consumer group {group!r} does not exist", {"group": group}
    )


def _must_rejoin(exc: ce.MustRejoin) -> Problem:
    group = _client_topic(exc.group) if exc.group else "{group}"
    kind = (
        ProblemType.REBALANCE_IN_PROGRESS
        if exc.reason is ce.RejoinReason.REBALANCE_IN_PROGRESS
        else ProblemType.STALE_GENERATION
    )
    if kind is ProblemType.REBALANCE_IN_PROGRESS:
        why = f"consumer group {group!r} moved to generation {exc.current}"
    elif exc.generation in (0, exc.current):
        why = (
            f"member {exc.member_id!r} is not in consumer group {group!r} "
            "(it left, or its session expired)"
        )
    else:
        why = (
            f"generation {exc.generation} of consumer group {group!r} is over "
            f"(the group is at generation {exc.current})"
        )
    return Problem(
        kind,
        f"{why}; rejoin with POST /v1/groups/{group}/members and "
        f'{{"member_id": "{exc.member_id}"}} to get the current assignment, then fetch '
        "without a cursor (it reads from the committed offsets)",
        {
            "member_id": exc.member_id,
            "generation": exc.generation,
            "current_generation": exc.current,
            "rejoin": f"/v1/groups/{group}/members",
        },
    )


def _member_fenced(exc: se.MemberFenced) -> Problem:
    rejoin = ce.MustRejoin(
        ce.RejoinReason.STALE_GENERATION, exc.member_id, exc.generation, exc.current
    )
    rejoin.group = exc.group
    return _must_rejoin(rejoin)


def _not_assigned(exc: NotAssigned) -> Problem:
    topic = _client_topic(exc.tp.topic)
    return Problem(
        ProblemType.PARTITION_NOT_ASSIGNED,
        f"partition {exc.tp.partition} of {topic!r} is not assigned to member "
        f"{exc.member_id!r} in generation {exc.generation}; commit only your assignment",
        {
            "topic": _client_topic(exc.tp.topic),
            "partition": exc.tp.partition,
            "member_id": exc.member_id,
            "generation": exc.generation,
        },
    )


def _protocol_mismatch(exc: ce.ProtocolMismatch) -> Problem:
    return Problem(ProblemType.GROUP_PROTOCOL_MISMATCH, str(exc))


def _version_conflict(exc: se.VersionConflict) -> Problem:
    return Problem(
        ProblemType.CONFLICT,
        f"consumer group {_client_topic(exc.group)!r} changed while this request ran; retry",
        headers=_retry_after(1),
    )


# The one table: exception class -> problem. Looked up along the class's MRO,
# so a subclass without its own entry gets its base's mapping.
EXCEPTION_TABLE: dict[type[BaseException], Callable[[Any], Problem]] = {
    GatewayError: _gateway_error,
    se.TopicNotFound: _topic_not_found,
    se.TopicExists: _topic_exists,
    se.InvalidTopicName: _invalid_topic_name,
    se.InvalidConfig: _invalid_config,
    se.PartitionsCannotShrink: _cannot_shrink,
    se.PartitionNotFound: _partition_not_found,
    se.OffsetOutOfRange: _offset_out_of_range,
    se.RecordTooLarge: _record_too_large,
    se.CorruptData: _corrupt,
    se.PartitionFenced: _fenced,
    se.DiskFull: _disk_full,
    se.BackendUnavailable: _unavailable,
    se.GroupNotFound: _group_not_found,
    se.MemberFenced: _member_fenced,
    se.VersionConflict: _version_conflict,
    ce.MustRejoin: _must_rejoin,
    ce.ProtocolMismatch: _protocol_mismatch,
    NotAssigned: _not_assigned,
    se.SubjectNotFound: _subject_not_found,
    se.VersionNotFound: _version_not_found,
    se.SchemaNotFound: _schema_not_found,
    se.InvalidCompatibility: _invalid_compatibility,
    se.SchemaRegistryError: _schema_state,
    te.Unauthenticated: _unauthenticated,
    te.InvalidToken: _invalid_token,
    te.TenantSuspended: _suspended,
    te.QuotaExceeded: _quota_exceeded,
    te.ClientAuthThrottled: _client_auth_throttled,
    te.ScopesNotHeld: _scopes_not_held,
    te.LimitReached: _limit_reached,
    te.LimiterUnavailable: _limiter_unavailable,
    te.TenantNotFound: _tenant_not_found,
    te.TenantExists: _tenant_exists,
    te.InvalidTenantName: _invalid_tenant_name,
    te.KeyNotFound: _key_not_found,
    te.InvalidScopes: _invalid_scopes,
    te.UnknownPlan: _unknown_plan,
    te.InvalidQuota: _invalid_quota,
    te.DirectoryFull: _disk_full,
    te.TenantError: _tenant_error,
}


def problem_for(exc: BaseException) -> Problem:
    """The problem document for any exception; unknown ones become a bare 500."""
    for cls in type(exc).__mro__:
        build = EXCEPTION_TABLE.get(cls)
        if build is not None:
            return build(exc)
    log.error("unhandled error", exc_info=exc)
    return Problem(ProblemType.INTERNAL_ERROR, "an internal error occurred; it has been logged")
