"""Building blocks shared by the features' hand-written OpenAPI sections (`*/openapi.py`)."""

from __future__ import annotations

from typing import Any

from gateway.http.names import TOPIC_NAME_PATTERN
from gateway.http.problems import PROBLEM_MEDIA_TYPE

TOPIC_PARAM = {
    "name": "topic",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": TOPIC_NAME_PATTERN},
}
PROBLEM = {"$ref": "#/components/responses/Problem"}
RATE_LIMITED = {
    "description": "a rate quota is used up; nothing was done",
    "headers": {
        "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"},
        "RateLimit-Policy": {
            "schema": {"type": "string"},
            "description": 'e.g. "requests_per_second";q=20;w=1',
        },
        "RateLimit": {
            "schema": {"type": "string"},
            "description": 'e.g. "requests_per_second";r=0;t=1',
        },
    },
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def problems(*statuses: int) -> dict[str, Any]:
    """Problem replies; every operation that takes a credential can also be rate limited."""
    out: dict[str, Any] = {str(s): PROBLEM for s in statuses}
    if 401 in statuses:
        out["429"] = RATE_LIMITED
    return out
