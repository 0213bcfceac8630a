"""Schema formats: read a schema's text, refuse what is not a schema, normalise it.

Two formats: JSON Schema (drafts 7 and 2020-12, by `$schema`; without one,
draft 7, as Confluent Schema Registry assumes) and Avro. A schema is kept as
the text it was registered with; its canonical text, which decides whether
two registrations are the same schema, is its JSON with object members
sorted and no insignificant whitespace (so formatting and member order never
make a new version, while anything with a meaning, an Avro default or a
`doc`, does). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import fastavro
import fastavro.schema
import jsonschema_rs
import orjson


class SchemaType(StrEnum):
    JSON = "JSON"
    AVRO = "AVRO"


SCHEMA_TYPES = tuple(t.value for t in SchemaType)

DRAFT_7 = "draft-07"
DRAFT_2020_12 = "2020-12"
_DRAFTS = {
    "http://json-schema.org/draft-07/schema": DRAFT_7,
    "https://json-schema.org/draft/2020-12/schema": DRAFT_2020_12,
}


class InvalidSchema(ValueError):
    """The text is not a schema of its type; the message says why."""


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """A schema read and checked: its type, the text as given, its parsed document
    and its canonical text."""

    schema_type: SchemaType
    text: str
    document: Any
    canonical: str

    @property
    def draft(self) -> str | None:
        """The JSON Schema draft (`draft-07` or `2020-12`); None for Avro."""
        if self.schema_type is not SchemaType.JSON:
            return None
        return json_draft(self.document)


def schema_type_of(value: str | None) -> SchemaType:
    """`schemaType` as clients send it; absent means AVRO (Confluent's default)."""
    if value is None:
        return SchemaType.AVRO
    try:
        return SchemaType(value.upper())
    except ValueError:
        raise InvalidSchema(
            f"unsupported schema type {value!r}; one of {', '.join(SCHEMA_TYPES)}"
        ) from None


def canonical_text(document: Any) -> str:
    """The document's JSON with sorted members and no insignificant whitespace."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def json_draft(document: Any) -> str:
    """The draft a JSON Schema document declares (draft 7 without `$schema`)."""
    if not isinstance(document, dict) or "$schema" not in document:
        return DRAFT_7
    declared = document["$schema"]
    if not isinstance(declared, str):
        raise InvalidSchema("$schema must be a string")
    draft = _DRAFTS.get(declared.rstrip("#"))
    if draft is None:
        raise InvalidSchema(
            f"$schema {declared!r} is not supported; use draft 7 "
            "(http://json-schema.org/draft-07/schema#) or 2020-12 "
            "(https://json-schema.org/draft/2020-12/schema)"
        )
    return draft


def parse_schema(schema_type: SchemaType, text: str) -> ParsedSchema:
    """The schema in `text`, checked; raises InvalidSchema with the reason."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidSchema(f"the schema is not JSON: {exc}") from None
    if schema_type is SchemaType.JSON:
        _check_json_schema(document)
    else:
        _check_avro_schema(document)
    return ParsedSchema(schema_type, text, document, canonical_text(document))


def _check_json_schema(document: Any) -> None:
    if not isinstance(document, dict | bool):
        raise InvalidSchema("a JSON Schema is an object or a boolean")
    draft = json_draft(document)
    try:
        jsonschema_rs.meta.validate(document)
        json_validator(document, draft)
    except jsonschema_rs.ValidationError as exc:
        where = "/" + "/".join(str(p) for p in exc.instance_path)
        raise InvalidSchema(f"not a valid JSON Schema at {where}: {exc.message}") from None
    except (jsonschema_rs.ReferencingError, ValueError) as exc:
        raise InvalidSchema(f"not a valid JSON Schema: {exc}") from None


def json_validator(document: Any, draft: str) -> Any:
    """A compiled validator of the draft; references are never fetched (offline)."""
    if draft == DRAFT_2020_12:
        return jsonschema_rs.Draft202012Validator(document, offline=True)
    return jsonschema_rs.Draft7Validator(document, offline=True)


_AVRO_REQUIRED = {
    "record": ("name", "fields"),
    "error": ("name", "fields"),
    "enum": ("name", "symbols"),
    "fixed": ("name", "size"),
    "array": ("items",),
    "map": ("values",),
}


def _check_avro_members(node: Any, at: str) -> None:
    """What the specification requires of each complex type and fastavro lets pass."""
    if isinstance(node, list):
        for i, branch in enumerate(node):
            _check_avro_members(branch, f"{at}/{i}")
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    for key in _AVRO_REQUIRED.get(kind, ()) if isinstance(kind, str) else ():
        if key not in node:
            raise InvalidSchema(f"not a valid Avro schema: the {kind} at {at or '/'} lacks {key!r}")
    if kind in ("record", "error"):
        if not isinstance(node["fields"], list):
            raise InvalidSchema(f"not a valid Avro schema: fields at {at or '/'} is not a list")
        for i, field in enumerate(node["fields"]):
            if isinstance(field, dict):
                _check_avro_members(field.get("type"), f"{at}/fields/{i}/type")
    elif kind == "array":
        _check_avro_members(node["items"], f"{at}/items")
    elif kind == "map":
        _check_avro_members(node["values"], f"{at}/values")
    elif isinstance(kind, dict | list):
        _check_avro_members(kind, f"{at}/type")


def _check_avro_schema(document: Any) -> None:
    _check_avro_members(document, "")
    try:
        fastavro.parse_schema(document, _write_hint=False)
    except (fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as exc:
        raise InvalidSchema(f"not a valid Avro schema: {exc}") from None
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InvalidSchema(f"not a valid Avro schema: {exc!r}") from None


def parsed_avro(document: Any) -> dict[str, Any] | str | list[Any]:
    """fastavro's parsed form (names resolved to full names) of a checked schema."""
    parsed: dict[str, Any] | str | list[Any] = fastavro.parse_schema(document, _write_hint=False)
    return parsed
