"""The OpenAPI paths and schemas of consumer groups (merged into `gateway.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.groups.members import MAX_METADATA, MEMBER_ID
from gateway.http.names import TOPIC_NAME_PATTERN
from gateway.http.openapi_parts import json_body, problems, ref

GROUP_PARAM = {
    "name": "group",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": TOPIC_NAME_PATTERN},
}
MEMBER_PARAM = {
    "name": "member_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": MEMBER_ID},
}
TOPIC_NAME = {"type": "string", "pattern": TOPIC_NAME_PATTERN}
TOPIC_PARTITION: dict[str, Any] = {
    "type": "object",
    "required": ["topic", "partition"],
    "properties": {"topic": {"type": "string"}, "partition": {"type": "integer"}},
}
NULLABLE_INT = {"type": ["integer", "null"]}


def _query(
    name: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


SCHEMAS: dict[str, Any] = {
    "GroupJoin": {
        "type": "object",
        "additionalProperties": False,
        "required": ["topics"],
        "properties": {
            "topics": {"type": "array", "items": TOPIC_NAME, "minItems": 1, "maxItems": 100},
            "session_timeout_ms": {
                "type": "integer",
                "description": "silent longer than this, the member is removed "
                "(TIDEGATE_GROUP_MIN/MAX_SESSION_TIMEOUT_MS bound it)",
            },
            "member_id": {
                "type": "string",
                "pattern": MEMBER_ID,
                "description": "rejoin under this id (the one a 409 named)",
            },
            "assignor": {"enum": ["sticky", "range", "round-robin"]},
            "auto_offset_reset": {"enum": ["earliest", "latest"]},
        },
    },
    "GroupMembership": {
        "type": "object",
        "required": ["member_id", "generation", "assignment", "state"],
        "properties": {
            "member_id": {"type": "string"},
            "generation": {"type": "integer"},
            "assignment": {"type": "array", "items": TOPIC_PARTITION},
            "state": {"enum": ["stable", "rebalancing", "empty", "dead"]},
            "assignor": {"type": "string"},
            "auto_offset_reset": {"type": "string"},
            "session_timeout_ms": {"type": "integer"},
            "members": {"type": "integer"},
        },
    },
    "GroupRecords": {
        "type": "object",
        "required": ["records", "cursor", "generation", "assignment"],
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["topic", "partition", "offset", "timestamp", "value"],
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "timestamp": {"type": "integer"},
                        "key": {"type": ["string", "null"]},
                        "value": {},
                        "headers": {"type": "array"},
                    },
                },
            },
            "cursor": {
                "type": "string",
                "description": "pass it on the next fetch to acknowledge these records; "
                "the same cursor again returns the same records",
            },
            "generation": {"type": "integer"},
            "assignment": {"type": "array", "items": TOPIC_PARTITION},
        },
    },
    "GroupCommit": {
        "type": "object",
        "additionalProperties": False,
        "required": ["member_id", "generation", "offsets"],
        "properties": {
            "member_id": {"type": "string", "pattern": MEMBER_ID},
            "generation": {"type": "integer", "minimum": 0},
            "offsets": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10000,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["topic", "partition", "offset"],
                    "properties": {
                        "topic": TOPIC_NAME,
                        "partition": {"type": "integer", "minimum": 0},
                        "offset": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "the next offset to read",
                        },
                        "metadata": {"type": "string", "maxLength": MAX_METADATA},
                    },
                },
            },
        },
    },
    "GroupOffsets": {
        "type": "object",
        "required": ["offsets"],
        "properties": {
            "offsets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "metadata": {"type": "string"},
                        "committed_ms": {"type": "integer"},
                    },
                },
            }
        },
    },
    "GroupReset": {
        "type": "object",
        "additionalProperties": False,
        "required": ["to"],
        "properties": {
            "to": {"enum": ["earliest", "latest", "timestamp", "offset"]},
            "timestamp": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "topics": {"type": "array", "items": TOPIC_NAME, "minItems": 1, "maxItems": 100},
            "dry_run": {"type": "boolean", "default": False},
        },
    },
    "GroupResetResult": {
        "type": "object",
        "required": ["dry_run", "offsets"],
        "properties": {
            "dry_run": {"type": "boolean"},
            "offsets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "previous": NULLABLE_INT,
                        "offset": {"type": "integer"},
                    },
                },
            },
        },
    },
    "GroupDescription": {
        "type": "object",
        "required": ["group", "state", "generation", "status", "members", "partitions", "lag"],
        "properties": {
            "group": {"type": "string"},
            "state": {"enum": ["stable", "rebalancing", "empty", "dead"]},
            "generation": {"type": "integer"},
            "assignor": {"type": "string"},
            "auto_offset_reset": {"type": "string"},
            "status": {"enum": ["OK", "WARN", "ERR", "STOP"]},
            "lag": {"type": "integer"},
            "members": {"type": "array", "items": {"type": "object"}},
            "partitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "committed": NULLABLE_INT,
                        "end_offset": {"type": "integer"},
                        "lag": {"type": "integer"},
                        "time_behind_ms": {"type": "integer"},
                        "committed_ms": NULLABLE_INT,
                        "metadata": {"type": ["string", "null"]},
                        "member_id": {"type": ["string", "null"]},
                        "status": {"enum": ["OK", "WARN", "ERR", "STOP"]},
                    },
                },
            },
        },
    },
}

REJOIN = "409: rebalance-in-progress or stale-generation (rejoin with the member_id)"

PATHS: dict[str, Any] = {
    "/v1/groups": {
        "get": {
            "summary": "List the tenant's consumer groups with state, lag and status",
            "responses": {
                "200": {
                    "description": "the groups",
                    **json_body(
                        {
                            "type": "object",
                            "required": ["groups"],
                            "properties": {
                                "groups": {"type": "array", "items": {"type": "object"}}
                            },
                        }
                    ),
                },
                **problems(401, 403, 503),
            },
        }
    },
    "/v1/groups/{group}": {
        "parameters": [GROUP_PARAM],
        "get": {
            "summary": "Describe a group: state, members, assignment, lag per partition",
            "responses": {
                "200": {"description": "the group", **json_body(ref("GroupDescription"))},
                **problems(400, 401, 403, 404, 503),
            },
        },
        "delete": {
            "summary": "Delete a group with no active members, and its offsets",
            "responses": {
                "204": {"description": "deleted"},
                **problems(400, 401, 403, 404, 409, 503, 507),
            },
        },
    },
    "/v1/groups/{group}/members": {
        "parameters": [GROUP_PARAM],
        "post": {
            "summary": "Join (or rejoin with member_id): the member's assignment",
            "requestBody": {"required": True, **json_body(ref("GroupJoin"))},
            "responses": {
                "200": {"description": "the membership", **json_body(ref("GroupMembership"))},
                **problems(400, 401, 403, 404, 409, 415, 422, 503, 507),
            },
        },
    },
    "/v1/groups/{group}/members/{member_id}": {
        "parameters": [GROUP_PARAM, MEMBER_PARAM],
        "delete": {
            "summary": "Leave the group (its partitions go to the others)",
            "responses": {
                "204": {"description": "left (also when it was not a member)"},
                **problems(400, 401, 403, 404, 503, 507),
            },
        },
    },
    "/v1/groups/{group}/members/{member_id}/heartbeat": {
        "parameters": [GROUP_PARAM, MEMBER_PARAM],
        "post": {
            "summary": "Keep the member's session (any group request does too)",
            "requestBody": {
                "required": False,
                **json_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"generation": {"type": "integer"}},
                    }
                ),
            },
            "responses": {
                "200": {
                    "description": "alive in this generation",
                    **json_body(
                        {
                            "type": "object",
                            "properties": {
                                "generation": {"type": "integer"},
                                "state": {"type": "string"},
                            },
                        }
                    ),
                },
                **problems(400, 401, 403, 404, 409, 415, 422, 503, 507),
            },
        },
    },
    "/v1/groups/{group}/records": {
        "parameters": [GROUP_PARAM],
        "get": {
            "summary": "Fetch for a member from its partitions; retry-safe with cursor",
            "parameters": [
                _query("member_id", {"type": "string"}, "the member's id", required=True),
                _query(
                    "cursor", {"type": "string"}, "the previous reply's cursor (acknowledges it)"
                ),
                _query("max_records", {"type": "integer", "minimum": 1}, "at most this many"),
                _query("max_bytes", {"type": "integer", "minimum": 1}, "about this many bytes"),
                _query("max_wait_ms", {"type": "integer", "minimum": 0}, "long-poll up to this"),
            ],
            "responses": {
                "200": {"description": "records", **json_body(ref("GroupRecords"))},
                "204": {"description": "the client went away while waiting"},
                **problems(400, 401, 403, 404, 409, 503),
            },
        },
    },
    "/v1/groups/{group}/offsets": {
        "parameters": [GROUP_PARAM],
        "post": {
            "summary": "Commit offsets, fenced by generation and member",
            "requestBody": {"required": True, **json_body(ref("GroupCommit"))},
            "responses": {
                "204": {"description": "committed (durably)"},
                **problems(400, 401, 403, 404, 409, 415, 422, 503, 507),
            },
        },
        "get": {
            "summary": "The group's committed offsets",
            "responses": {
                "200": {"description": "the offsets", **json_body(ref("GroupOffsets"))},
                **problems(400, 401, 403, 404, 503),
            },
        },
    },
    "/v1/groups/{group}/offsets/reset": {
        "parameters": [GROUP_PARAM],
        "post": {
            "summary": "Reset committed offsets while no member is active (dry_run to preview)",
            "requestBody": {"required": True, **json_body(ref("GroupReset"))},
            "responses": {
                "200": {
                    "description": "what was (or would be) set",
                    **json_body(ref("GroupResetResult")),
                },
                **problems(400, 401, 403, 404, 409, 415, 422, 503, 507),
            },
        },
    },
}
