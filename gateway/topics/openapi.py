"""The OpenAPI paths and schemas of topics (merged into `gateway.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.http.names import TOPIC_NAME_PATTERN
from gateway.http.openapi_parts import TOPIC_PARAM, json_body, problems, ref

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

TOPIC_ID: dict[str, Any] = {
    "type": "string",
    "description": "the topic's immutable id; a topic created again under the same name "
    "gets another, and none of the old records",
}

SCHEMAS: dict[str, Any] = {
    "TopicConfig": CONFIG_SCHEMA,
    "Topic": {
        "type": "object",
        "required": ["name", "partitions", "config", "created_ms"],
        "properties": {
            "name": {"type": "string"},
            "id": TOPIC_ID,
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
            "id": TOPIC_ID,
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
            "name": {"type": "string", "pattern": TOPIC_NAME_PATTERN},
            "partitions": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1},
            "config": ref("TopicConfig"),
        },
    },
    "TopicPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "partitions": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "description": "a larger partition count (never smaller); keyed records "
                "map to the new count from then on",
            },
            "config": ref("TopicConfig"),
        },
    },
}

PATHS: dict[str, Any] = {
    "/v1/topics": {
        "post": {
            "summary": "Create a topic",
            "requestBody": {"required": True, **json_body(ref("TopicCreate"))},
            "responses": {
                "201": {"description": "the topic", **json_body(ref("Topic"))},
                **problems(400, 401, 403, 409, 413, 415, 422, 503, 507),
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
            "summary": "Change a topic's config (keys not named stay as they are) "
            "or grow its partition count",
            "requestBody": {"required": True, **json_body(ref("TopicPatch"))},
            "responses": {
                "200": {"description": "the topic", **json_body(ref("Topic"))},
                **problems(400, 401, 403, 404, 413, 415, 422, 503, 507),
            },
        },
        "delete": {
            "summary": "Delete a topic and its records",
            "responses": {
                "204": {"description": "deleted"},
                **problems(400, 401, 403, 404, 503, 507),
            },
        },
    },
}
