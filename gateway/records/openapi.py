"""The OpenAPI paths and schemas of produce and fetch (merged into `gateway.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import TOPIC_PARAM, json_body, problems, ref

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
    "description": "A retry with the same key and request appends nothing already stored "
    "and gets the first success's reply, also after a crash or a partial failure; never "
    "told to wait. Within each partition's idempotency window (24 h, "
    "TIDEGATE_IDEMPOTENCY_TTL_S; newest TIDEGATE_IDEMPOTENCY_WINDOW_BATCHES batches).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
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
}

PATHS: dict[str, Any] = {
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
                    "description": "Where to start: an offset, `earliest` (default) or "
                    "`latest` (the end: wait for new records). `-2` and `-1` are accepted as "
                    "Kafka's spellings of `earliest` and `latest`; any other negative is 400.",
                    "schema": {
                        "oneOf": [
                            {"type": "integer", "minimum": 0},
                            {"enum": ["earliest", "latest", -1, -2]},
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
