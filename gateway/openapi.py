"""The OpenAPI 3.1 document served at `/openapi.json`, maintained by hand.

Written out rather than generated so that it says what the API promises, not
what a framework infers. A test diffs it against the app's route table (no
undocumented route, no documented route missing) and schemathesis fuzzes the
server from it.

Each operation lists its own problem answers. Two that every operation of a
kind shares are added once, by `with_shared_problems`, so no list can forget
them: every operation that takes a credential (it lists 401) can answer 503
(the tenant directory or the log is not open, or the server is draining),
and every operation with a JSON body can answer 413 (its body is bounded in
bytes and in JSON depth, values and string length). Every operation can
answer 431 (its request head is bounded) and 408 (its head and body have
deadlines). 429 comes with 401 (`problems`).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin import openapi as admin_openapi
from gateway.console import openapi as console_openapi
from gateway.groups import openapi as groups_openapi
from gateway.http.openapi_parts import PROBLEM, json_body, ref
from gateway.http.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, ProblemType
from gateway.oauth import openapi as oauth_openapi
from gateway.ops import openapi as ops_openapi
from gateway.records import openapi as records_openapi
from gateway.schemas import openapi as schemas_openapi
from gateway.streams import openapi as streams_openapi
from gateway.topics import openapi as topics_openapi

SECTIONS = (
    ops_openapi,
    topics_openapi,
    records_openapi,
    streams_openapi,
    admin_openapi,
    console_openapi,
    oauth_openapi,
    groups_openapi,
    schemas_openapi,
)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "enum": [p.uri for p in ProblemType]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "limit": {
            "type": ["string", "integer"],
            "description": "the limit that refused the request: its name (429, "
            "limit-reached, invalid-config, json-too-complex) or its size in bytes or "
            "records (body-too-large, record-too-large, too-many-records)",
        },
        "limit_value": {"type": "number", "description": "429: the rate per second"},
        "retry_after_ms": {"type": "integer", "description": "429: when it would fit"},
        "current": {"type": "integer", "description": "limit-reached: in use now"},
        "allowed": {"type": "integer", "description": "limit-reached: the plan's value"},
        "plans": {
            "type": "array",
            "items": {"type": "string"},
            "description": "unknown-plan: the plans that exist",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "record": {"type": "integer"},
                    "pointer": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

OWN_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": json_body({"type": "object"}) | {"description": "OpenAPI 3.1"}},
        }
    },
}


def with_shared_problems(paths: dict[str, Any]) -> dict[str, Any]:
    """`paths` with 503 on every operation that takes a credential, 413 on every
    operation with a JSON body, and 408 and 431 on every operation (see the module
    docstring); lists that name them keep their own entry."""
    out: dict[str, Any] = {}
    for path, item in paths.items():
        out[path] = dict(item)
        for method, op in item.items():
            if method == "parameters":
                continue
            responses = dict(op["responses"])
            if op.get("security") != [] and "401" in responses:
                responses.setdefault("503", PROBLEM)
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                responses.setdefault("413", PROBLEM)
            responses.setdefault("408", PROBLEM)
            responses.setdefault("431", PROBLEM)
            out[path][method] = op | {"responses": dict(sorted(responses.items()))}
    return out


@functools.cache
def document() -> bytes:
    """The whole document, serialized once: every feature's section and this one's."""
    paths: dict[str, Any] = dict(OWN_PATHS)
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    security_schemes: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for section in SECTIONS:
        paths |= section.PATHS
        schemas |= section.SCHEMAS
        security_schemes |= getattr(section, "SECURITY_SCHEMES", {})
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Tidegate",
            "version": "1",
            "description": "Multi-tenant HTTP gateway in front of a Kafka-style log. Errors are "
            f"application/problem+json; problem types are {PROBLEM_BASE}<slug>.",
        },
        "security": [{"bearer": []}],
        "paths": with_shared_problems(paths),
        "components": {
            "securitySchemes": security_schemes,
            "schemas": schemas,
            "responses": {
                "Problem": {
                    "description": "an RFC 9457 problem",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}},
                }
            },
        },
    }
    return orjson.dumps(doc)


async def openapi(request: Request) -> Response:
    return Response(document(), media_type="application/json")


routes = [Route("/openapi.json", openapi, methods=["GET"])]
