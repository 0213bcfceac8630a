"""The OpenAPI paths and schemas of the schema registry, both APIs (merged by `gateway.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import json_body, problems, ref
from gateway.schemas.confluent import PREFIX
from gateway.schemas.confluent_errors import MEDIA_TYPE
from storage.schemas import COMPATIBILITY_LEVELS

SUBJECT = {
    "name": "subject",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "latest"}]},
    "description": "a version number or `latest` (the Confluent API also takes -1)",
}
SCHEMA_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _flag(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "boolean"}, "description": description}


DELETED = _flag("deleted", "include soft-deleted subjects or versions")
PERMANENT = _flag("permanent", "delete for good what was soft-deleted before")

SCHEMAS: dict[str, Any] = {
    "SchemaIn": {
        "type": "object",
        "additionalProperties": False,
        "required": ["schema_type", "schema"],
        "properties": {
            "schema_type": {"enum": ["JSON", "AVRO"]},
            "schema": {"description": "the schema as a JSON value, or a string holding it"},
            "version": {
                "oneOf": [{"type": "integer", "minimum": 1}, {"const": "latest"}],
                "description": "compatibility check only: the one version to check against",
            },
        },
    },
    "Registered": {
        "type": "object",
        "required": ["id", "version"],
        "properties": {"id": {"type": "integer"}, "version": {"type": "integer"}},
    },
    "SubjectVersion": {
        "type": "object",
        "required": ["subject", "version", "id", "schema_type", "schema"],
        "properties": {
            "subject": {"type": "string"},
            "version": {"type": "integer"},
            "id": {"type": "integer"},
            "schema_type": {"enum": ["JSON", "AVRO"]},
            "schema": {"description": "the schema as registered"},
            "deleted": {"type": "boolean"},
        },
    },
    "Incompatibility": {
        "type": "object",
        "required": ["version", "direction", "pointer", "message"],
        "properties": {
            "version": {"type": "integer"},
            "direction": {"enum": ["backward", "forward"]},
            "pointer": {"type": "string", "description": "JSON pointer into the reader schema"},
            "message": {"type": "string"},
        },
    },
    "Compatibility": {
        "type": "object",
        "required": ["compatibility"],
        "properties": {
            "compatibility": {"enum": list(COMPATIBILITY_LEVELS)},
            "inherited": {"type": "boolean"},
        },
    },
    "RegistryError": {
        "type": "object",
        "required": ["error_code", "message"],
        "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
    },
}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, **json_body(schema)}


_OBJ = {"type": "object"}
_INTS = {"type": "array", "items": {"type": "integer"}}
_STRS = {"type": "array", "items": {"type": "string"}}
_SCHEMA_BODY = {"required": True, **json_body(ref("SchemaIn"))}

NATIVE: dict[str, Any] = {
    "/v1/schemas": {
        "get": {
            "summary": "List the tenant's subjects",
            "parameters": [DELETED],
            "responses": {
                "200": _ok("subjects", {"type": "object", "properties": {"subjects": _STRS}}),
                **problems(401, 403),
            },
        }
    },
    "/v1/schemas/ids/{id}": {
        "parameters": [SCHEMA_ID],
        "get": {
            "summary": "A schema by id",
            "responses": {"200": _ok("the schema", _OBJ), **problems(400, 401, 403, 404)},
        },
    },
    "/v1/schemas/{subject}": {
        "parameters": [SUBJECT],
        "delete": {
            "summary": "Soft delete a subject's versions (permanent=true: delete them for good)",
            "parameters": [PERMANENT],
            "responses": {
                "200": _ok("the versions deleted", _OBJ),
                **problems(400, 401, 403, 404, 409),
            },
        },
    },
    "/v1/schemas/{subject}/versions": {
        "parameters": [SUBJECT],
        "post": {
            "summary": "Register a schema (the existing version if it is already there)",
            "requestBody": _SCHEMA_BODY,
            "responses": {
                "200": _ok("already registered", ref("Registered")),
                "201": _ok("registered", ref("Registered")),
                **problems(400, 401, 403, 409, 415, 422),
            },
        },
        "get": {
            "summary": "A subject's versions",
            "parameters": [DELETED],
            "responses": {
                "200": _ok("versions", {"type": "object", "properties": {"versions": _INTS}}),
                **problems(400, 401, 403, 404),
            },
        },
    },
    "/v1/schemas/{subject}/versions/{version}": {
        "parameters": [SUBJECT, VERSION],
        "get": {
            "summary": "One version of a subject",
            "parameters": [DELETED],
            "responses": {
                "200": _ok("the version", ref("SubjectVersion")),
                **problems(400, 401, 403, 404),
            },
        },
        "delete": {
            "summary": "Soft delete a version (permanent=true: delete it for good)",
            "parameters": [PERMANENT],
            "responses": {
                "200": _ok("the version deleted", _OBJ),
                **problems(400, 401, 403, 404, 409),
            },
        },
    },
    "/v1/schemas/{subject}/compatibility": {
        "parameters": [SUBJECT],
        "post": {
            "summary": "Dry run: would this schema be accepted under the subject's mode?",
            "requestBody": _SCHEMA_BODY,
            "responses": {
                "200": _ok(
                    "the verdict",
                    {
                        "type": "object",
                        "properties": {
                            "compatible": {"type": "boolean"},
                            "compatibility": {"type": "string"},
                            "incompatibilities": {"type": "array", "items": ref("Incompatibility")},
                        },
                    },
                ),
                **problems(400, 401, 403, 404, 415, 422),
            },
        },
    },
    "/v1/schemas/{subject}/config": {
        "parameters": [SUBJECT],
        "get": {
            "summary": "The subject's compatibility mode (its own or the tenant's default)",
            "responses": {"200": _ok("the mode", ref("Compatibility")), **problems(400, 401, 403)},
        },
        "put": {
            "summary": "Set the subject's compatibility mode",
            "requestBody": {"required": True, **json_body(ref("Compatibility"))},
            "responses": {
                "200": _ok("the mode", ref("Compatibility")),
                **problems(400, 401, 403, 415, 422),
            },
        },
        "delete": {
            "summary": "Remove the subject's own mode (the tenant's default applies)",
            "responses": {
                "200": _ok("the mode now", ref("Compatibility")),
                **problems(400, 401, 403),
            },
        },
    },
}


def _sr(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": schema}}}


_SR_ERRORS = {
    str(status): _sr("Schema Registry error", ref("RegistryError"))
    for status in (401, 403, 404, 409, 422, 429, 500)
}
_SR_BODY = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["schema"],
                "properties": {
                    "schema": {"type": "string"},
                    "schemaType": {"enum": ["AVRO", "JSON"]},
                    "references": {"type": "array", "maxItems": 0},
                },
            }
        }
        for media in (MEDIA_TYPE, "application/json")
    },
}
_SR_CONFIG_BODY = {
    "required": True,
    "content": {
        MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "properties": {"compatibility": {"enum": list(COMPATIBILITY_LEVELS)}},
            }
        }
    },
}


def _sr_op(summary: str, reply: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {"200": _sr("ok", reply), **_SR_ERRORS}, **more}


CONFLUENT: dict[str, Any] = {
    "/subjects": {"get": _sr_op("Subjects", _STRS, parameters=[DELETED])},
    "/subjects/{subject}": {
        "parameters": [SUBJECT],
        "post": _sr_op(
            "Look up a schema under a subject", _OBJ, requestBody=_SR_BODY, parameters=[DELETED]
        ),
        "delete": _sr_op("Delete a subject", _INTS, parameters=[PERMANENT]),
    },
    "/subjects/{subject}/versions": {
        "parameters": [SUBJECT],
        "post": _sr_op(
            "Register a schema",
            {"type": "object", "properties": {"id": {"type": "integer"}}},
            requestBody=_SR_BODY,
        ),
        "get": _sr_op("A subject's versions", _INTS, parameters=[DELETED]),
    },
    "/subjects/{subject}/versions/{version}": {
        "parameters": [SUBJECT, VERSION],
        "get": _sr_op("A version", _OBJ, parameters=[DELETED]),
        "delete": _sr_op("Delete a version", {"type": "integer"}, parameters=[PERMANENT]),
    },
    "/subjects/{subject}/versions/{version}/schema": {
        "parameters": [SUBJECT, VERSION],
        "get": _sr_op("A version's schema text alone", _OBJ),
    },
    "/schemas/ids/{id}": {"parameters": [SCHEMA_ID], "get": _sr_op("A schema by id", _OBJ)},
    "/schemas/types": {"get": _sr_op("The schema types served", _STRS)},
    "/config": {
        "get": _sr_op("The default compatibility level", _OBJ),
        "put": _sr_op("Set the default level", _OBJ, requestBody=_SR_CONFIG_BODY),
        "delete": _sr_op("Reset the default level", _OBJ),
    },
    "/config/{subject}": {
        "parameters": [SUBJECT],
        "get": _sr_op(
            "A subject's level",
            _OBJ,
            parameters=[_flag("defaultToGlobal", "the default level when the subject has none")],
        ),
        "put": _sr_op("Set a subject's level", _OBJ, requestBody=_SR_CONFIG_BODY),
        "delete": _sr_op("Remove a subject's level", _OBJ),
    },
    "/compatibility/subjects/{subject}/versions/{version}": {
        "parameters": [SUBJECT, VERSION],
        "post": _sr_op(
            "Test against one version",
            _OBJ,
            requestBody=_SR_BODY,
            parameters=[_flag("verbose", "list the incompatibilities")],
        ),
    },
    "/compatibility/subjects/{subject}/versions": {
        "parameters": [SUBJECT],
        "post": _sr_op(
            "Test against the versions the mode names",
            _OBJ,
            requestBody=_SR_BODY,
            parameters=[_flag("verbose", "list the incompatibilities")],
        ),
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    # The Confluent-compatible registry API: the API key as the password.
    "basic": {"type": "http", "scheme": "basic"},
}
_BASIC: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}]
PATHS: dict[str, Any] = {
    **NATIVE,
    **{
        PREFIX + path: {
            method: (op | {"security": _BASIC}) if method != "parameters" else op
            for method, op in item.items()
        }
        for path, item in CONFLUENT.items()
    },
}
