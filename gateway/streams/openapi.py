"""The OpenAPI paths of live streams (merged into `gateway.openapi`).

OpenAPI cannot describe a WebSocket's frames; the operation says what the
upgrade takes and answers, and docs/api.md describes the frames, close codes,
flow control and resume.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import TOPIC_PARAM, problems

SCHEMAS: dict[str, Any] = {}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


START_PARAMS = [
    _query(
        "from",
        "earliest, latest (the default), or a position list p:offset,p:offset naming the "
        "next offset of each partition followed (also a resume token)",
    ),
    _query(
        "timestamp",
        "start at the first record at or after this time (ms since the epoch)",
        {"type": "integer", "minimum": 0},
    ),
    _query("partitions", "follow only these partitions (comma-separated numbers)"),
    _query(
        "on_gap",
        "when a position is no longer retained: continue (from the earliest) or close",
        {"type": "string", "enum": ["continue", "close"]},
    ),
    _query("access_token", "a short-lived token from POST /v1/tokens (browsers); never a key"),
    _query("key", "only records with exactly this key"),
    _query("header", "only records with this header value (name:value)"),
]

PATHS: dict[str, Any] = {
    "/streams/viewer": {
        "get": {
            "summary": "A page that follows a topic live over WebSocket and EventSource",
            "description": "Open as /streams/viewer#topic=NAME&token=TOKEN (a token from "
            "POST /v1/tokens; the fragment never reaches the server).",
            "security": [],
            "responses": {
                "200": {
                    "description": "the page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/v1/topics/{topic}/stream": {
        "parameters": [TOPIC_PARAM],
        "get": {
            "summary": "Follow a topic live over a WebSocket",
            "description": "A WebSocket upgrade (subprotocol tidegate.v1; a browser may offer "
            "bearer.<token> beside it). Server frames: subscribed, records, gap, error, "
            "closing, and in group mode assigned, revoked, committed; client frames: credit, "
            "and in group mode commit. A refused credential, topic or quota is told "
            "after the upgrade with an error frame and a 44xx close code; a page from an "
            "origin not allowed is refused with 403 before it. See docs/api.md.",
            "parameters": [
                *START_PARAMS,
                _query(
                    "credit",
                    "start in credit mode with this many records of credit",
                    {"type": "integer", "minimum": 0},
                ),
                _query(
                    "group",
                    "group mode: the connection is a member of this consumer group and reads "
                    "its assigned partitions from the committed offsets (groups:read too; "
                    "not with from, timestamp or partitions)",
                ),
                _query("member_id", "group mode: rejoin as this member"),
                _query(
                    "session_timeout_ms",
                    "group mode: the member's session",
                    {"type": "integer", "minimum": 1},
                ),
            ],
            "responses": {
                "101": {"description": "switching to the WebSocket protocol"},
                "426": {
                    "$ref": "#/components/responses/Problem",
                },
                **problems(401, 403, 404),
            },
        },
    },
    "/v1/topics/{topic}/events": {
        "parameters": [TOPIC_PARAM],
        "get": {
            "summary": "Follow a topic live as Server-Sent Events",
            "description": "One record event per record, its id the position list right after "
            "it; Last-Event-ID (or last_event_id) resumes right after that event. Events: "
            "subscribed, record, gap, error; a heartbeat comment keeps idle streams open.",
            "parameters": [
                *START_PARAMS,
                _query("last_event_id", "resume right after this event id (first connect)"),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "resume right after this event id (what EventSource sends)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "the event stream (it does not end by itself)",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **problems(400, 401, 403, 404, 416),
            },
        },
    },
}
