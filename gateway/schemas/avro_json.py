"""An Avro schema as the JSON Schema (2020-12) that accepts exactly the JSON values
fastavro's `validate` accepts as datums of it.

Records are given as JSON and stored as given, so what a value must be is what
fastavro would take when it writes the datum. fastavro checks one datum at a
time in Python and stops at the first failure, with a dotted field name; the
equivalent JSON Schema runs in jsonschema-rs, about three times faster (see
docs/benchmarks.md), and reports every failure with its JSON pointer. A
property test holds the two to the same verdicts
(tests/gateway/schemas/test_avro_json.py).

The rules, as fastavro applies them to JSON values: `int` and `long` are
integers within 32 and 64 bits, `float` and `double` any number, `string`,
`boolean` and `null` themselves, `enum` one of its symbols, `array` and `map`
their items and values; a record is an object whose fields each hold their
type, a field being optional when it has a default or its type takes null
(fastavro reads a missing field as null), and members the schema does not name
are allowed (fastavro ignores them); a union is any of its branches. `bytes`
and `fixed` are JSON strings here (JSON has no bytes; a fixed one of its size).
Logical types are checked as their underlying type. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from gateway.schemas.formats import parsed_avro

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)

_PRIMITIVES: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "boolean": {"type": "boolean"},
    "int": {"type": "integer", "minimum": INT_RANGE[0], "maximum": INT_RANGE[1]},
    "long": {"type": "integer", "minimum": LONG_RANGE[0], "maximum": LONG_RANGE[1]},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "bytes": {"type": "string"},
}


def avro_as_json_schema(document: Any) -> dict[str, Any]:
    """The JSON Schema of the Avro schema `document` (already checked as valid)."""
    defs: dict[str, Any] = {}
    root = _translate(parsed_avro(document), defs)
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema.update(root)
    if defs:
        schema["$defs"] = defs
    return schema


def _accepts_null(schema: Any, defs: dict[str, Any]) -> bool:
    if schema == "null":
        return True
    if isinstance(schema, list):
        return any(_accepts_null(s, defs) for s in schema)
    return bool(isinstance(schema, dict) and schema.get("type") == "null")


def _translate(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return dict(_PRIMITIVES[schema])
        return {"$ref": f"#/$defs/{schema}"}  # a named type defined earlier
    if isinstance(schema, list):
        return {"anyOf": [_translate(s, defs) for s in schema]}
    kind = schema["type"]
    if kind in _PRIMITIVES:
        return dict(_PRIMITIVES[kind])
    if kind == "array":
        return {"type": "array", "items": _translate(schema["items"], defs)}
    if kind == "map":
        return {"type": "object", "additionalProperties": _translate(schema["values"], defs)}
    if kind == "enum":
        return _named(schema, {"enum": list(schema["symbols"])}, defs)
    if kind == "fixed":
        size = int(schema["size"])
        return _named(schema, {"type": "string", "minLength": size, "maxLength": size}, defs)
    if kind in ("record", "error"):
        name = schema["name"]
        defs[name] = {}  # placeholder first: a record may refer to itself
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in schema["fields"]:
            properties[field["name"]] = _translate(field["type"], defs)
            if "default" not in field and not _accepts_null(field["type"], defs):
                required.append(field["name"])
        body: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            body["required"] = required
        defs[name] = body
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(kind, dict | list):  # {"type": {...}} wraps a schema
        return _translate(kind, defs)
    return _translate(kind, defs)


def _named(schema: dict[str, Any], body: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    name = schema["name"]
    defs[name] = body
    return {"$ref": f"#/$defs/{name}"}
