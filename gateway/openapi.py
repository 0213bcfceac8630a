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
bytes and in JSON depth, values and string length). 429 comes with 401
(`problems`).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from gateway import openapi_tenants
from gateway.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, ProblemType
from gateway.openapi_parts import PROBLEM, json_body, problems, ref

TOPIC_PARAM = {
    "name": "topic",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"},
}
PARTITION_PARAM = {
    "name": "partition",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and request appends nothing and gets the "
    "first reply (kept 24 h, TIDEGATE_IDEMPOTENCY_TTL_S).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "retention_ms": {"type": ["integer", "null"], "minimum": 1},
        "retention_bytes": {"type": ["integer", "null"], "minimum": 1},
        "max_record_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864},
        "segment_bytes": {"type": "integer", "minimum": 1024, "maximum": 2147483647},
        "segment_ms": {"type": "integer", "minimum": 1000},
        "durability": {"enum": ["fsync", "interval", "none"]},
        "flush_interval_ms": {"type": "integer", "minimum": 1},
        "value_format": {"enum": ["json", "string", "binary"]},
        "value_schema": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "cleanup_policy": {"enum": ["delete"]},
    },
}

HEADERS_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [{"type": "string", "minLength": 1}, {"type": ["string", "null"]}],
                "minItems": 2,
                "maxItems": 2,
            },
        },
        {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    ]
}

SCHEMAS: dict[str, Any] = {
    "TopicConfig": CONFIG_SCHEMA,
    "Topic": {
        "type": "object",
        "required": ["name", "partitions", "config", "created_ms"],
        "properties": {
            "name": {"type": "string"},
            "partitions": {"type": "integer"},
            "config": ref("TopicConfig"),
            "created_ms": {"type": "integer"},
        },
    },
    "TopicDescription": {
        "type": "object",
        "required": ["name", "partitions", "config", "created_ms"],
        "properties": {
            "name": {"type": "string"},
            "partitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["partition", "start_offset", "end_offset", "bytes"],
                    "properties": {
                        "partition": {"type": "integer"},
                        "start_offset": {"type": "integer"},
                        "end_offset": {"type": "integer"},
                        "bytes": {"type": "integer"},
                    },
                },
            },
            "config": ref("TopicConfig"),
            "created_ms": {"type": "integer"},
        },
    },
    "TopicCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"},
            "partitions": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1},
            "config": ref("TopicConfig"),
        },
    },
    "TopicPatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["config"],
        "properties": {"config": ref("TopicConfig")},
    },
    "NewRecord": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "key": {"type": ["string", "null"]},
            "value": {
                "description": "json topics: any JSON value; string topics: a string; "
                "binary topics: base64 text"
            },
            "headers": HEADERS_SCHEMA,
            "partition": {"type": "integer", "minimum": 0},
            "timestamp": {"type": "integer", "minimum": 0},
        },
    },
    "ProduceRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["records"],
        "properties": {"records": {"type": "array", "items": ref("NewRecord")}},
    },
    "ProduceReply": {
        "type": "object",
        "required": ["offsets"],
        "properties": {
            "offsets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["partition", "offset"],
                    "properties": {
                        "partition": {"type": "integer"},
                        "offset": {"type": "integer"},
                    },
                },
            }
        },
    },
    "Record": {
        "type": "object",
        "required": ["partition", "offset", "timestamp", "key", "value", "headers"],
        "properties": {
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "timestamp": {"type": "integer"},
            "key": {"type": ["string", "null"]},
            "value": {},
            "headers": {"type": "array", "items": {"type": "array"}},
        },
    },
    "FetchReply": {
        "type": "object",
        "required": ["records", "next_offset", "end_offset"],
        "properties": {
            "records": {"type": "array", "items": ref("Record")},
            "next_offset": {"type": "integer"},
            "end_offset": {"type": "integer"},
        },
    },
    "Problem": {
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
    },
}

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {"200": {"description": "the process answers"}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: backend open and not draining",
            "security": [],
            "responses": {"200": {"description": "ready"}, "503": PROBLEM},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "description": "Process figures for anyone. With an operator credential (scope "
            "`admin`) the reply adds the per-tenant `tidegate_tenant_*` series; any other "
            "credential sent is refused (401/403), never silently downgraded.",
            "security": [{}, {"bearer": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **problems(401, 403),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": json_body({"type": "object"}) | {"description": "OpenAPI 3.1"}},
        }
    },
    "/v1/topics": {
        "post": {
            "summary": "Create a topic",
            "requestBody": {"required": True, **json_body(ref("TopicCreate"))},
            "responses": {
                "201": {"description": "the topic", **json_body(ref("Topic"))},
                **problems(400, 401, 403, 409, 413, 415, 422, 503),
            },
        },
        "get": {
            "summary": "List the tenant's topics",
            "responses": {
                "200": {
                    "description": "the topics",
                    **json_body(
                        {
                            "type": "object",
                            "required": ["topics"],
                            "properties": {"topics": {"type": "array", "items": ref("Topic")}},
                        }
                    ),
                },
                **problems(401, 403, 503),
            },
        },
    },
    "/v1/topics/{topic}": {
        "parameters": [TOPIC_PARAM],
        "get": {
            "summary": "Describe a topic with per-partition offsets and sizes",
            "responses": {
                "200": {"description": "the topic", **json_body(ref("TopicDescription"))},
                **problems(400, 401, 403, 404, 503),
            },
        },
        "patch": {
            "summary": "Change a topic's config (keys not named stay as they are)",
            "requestBody": {"required": True, **json_body(ref("TopicPatch"))},
            "responses": {
                "200": {"description": "the topic", **json_body(ref("Topic"))},
                **problems(400, 401, 403, 404, 413, 415, 422, 503),
            },
        },
        "delete": {
            "summary": "Delete a topic and its records",
            "responses": {
                "204": {"description": "deleted"},
                **problems(400, 401, 403, 404, 503),
            },
        },
    },
    "/v1/topics/{topic}/records": {
        "parameters": [TOPIC_PARAM],
        "post": {
            "summary": "Produce records (validated whole; offsets in request order)",
            "parameters": [
                IDEMPOTENCY_HEADER,
                {
                    "name": "key",
                    "in": "query",
                    "required": False,
                    "description": "raw bodies only: the record's key",
                    "schema": {"type": "string"},
                },
                {
                    "name": "partition",
                    "in": "query",
                    "required": False,
                    "description": "raw bodies only: the record's partition",
                    "schema": {"type": "integer", "minimum": 0},
                },
                {
                    "name": "timestamp",
                    "in": "query",
                    "required": False,
                    "description": "raw bodies only: the record's timestamp (ms)",
                    "schema": {"type": "integer", "minimum": 0},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ref("ProduceRequest")},
                    "application/x-ndjson": {
                        "schema": {
                            "description": "one record object a line",
                            "type": "array",
                            "items": ref("NewRecord"),
                        }
                    },
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": {"description": "offsets", **json_body(ref("ProduceReply"))},
                **problems(400, 401, 403, 404, 409, 413, 415, 422, 503, 507),
            },
        },
    },
    "/v1/topics/{topic}/partitions/{partition}/records": {
        "parameters": [TOPIC_PARAM, PARTITION_PARAM],
        "get": {
            "summary": "Fetch records by offset or time; long-poll with max_wait_ms",
            "parameters": [
                {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "oneOf": [
                            {"type": "integer", "minimum": 0},
                            {"enum": ["earliest", "latest"]},
                        ]
                    },
                },
                {
                    "name": "timestamp",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                },
                {
                    "name": "max_records",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 500},
                },
                {
                    "name": "max_bytes",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 1048576},
                },
                {
                    "name": "max_wait_ms",
                    "in": "query",
                    "required": False,
                    "description": "wait up to this long for data (clamped to "
                    "TIDEGATE_MAX_WAIT_MS, 30 s by default)",
                    "schema": {"type": "integer", "minimum": 0, "default": 0},
                },
            ],
            "responses": {
                "200": {"description": "records", **json_body(ref("FetchReply"))},
                **problems(400, 401, 403, 404, 416, 503),
            },
        },
    },
}


def with_shared_problems(paths: dict[str, Any]) -> dict[str, Any]:
    """`paths` with 503 on every operation that takes a credential and 413 on every
    operation with a JSON body (see the module docstring); lists that name them keep
    their own entry."""
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
            out[path][method] = op | {"responses": dict(sorted(responses.items()))}
    return out


@functools.cache
def document() -> bytes:
    """The whole document, serialized once."""
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Tidegate",
            "version": "1",
            "description": "Multi-tenant HTTP gateway in front of a Kafka-style log. Errors are "
            f"application/problem+json; problem types are {PROBLEM_BASE}<slug>.",
        },
        "security": [{"bearer": []}],
        "paths": with_shared_problems(PATHS | openapi_tenants.PATHS),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS | openapi_tenants.SCHEMAS,
            "responses": {
                "Problem": {
                    "description": "an RFC 9457 problem",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": ref("Problem")}},
                }
            },
        },
    }
    return orjson.dumps(doc)
