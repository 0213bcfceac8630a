"""Schemas read and normalised, values checked: both formats, with pointers to each failure."""

from __future__ import annotations

import json
from typing import Any

import fastavro
import fastavro.validation
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.schemas.avro_json import avro_as_json_schema
from gateway.schemas.formats import (
    DRAFT_7,
    DRAFT_2020_12,
    InvalidSchema,
    SchemaType,
    parse_schema,
    schema_type_of,
)
from gateway.schemas.validators import Violation, cached_validator, compile_validator
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from tests.gateway.schemas.strategies import avro_schemas, json_values


def test_canonical_text_ignores_formatting_and_member_order() -> None:
    a = parse_schema(SchemaType.JSON, '{"type": "object", "required": ["a"]}')
    b = parse_schema(SchemaType.JSON, '{\n  "required":["a"],\n  "type":"object"}')
    assert a.canonical == b.canonical == '{"required":["a"],"type":"object"}'
    assert a.text == '{"type": "object", "required": ["a"]}'  # kept as given
    with_doc = parse_schema(SchemaType.AVRO, '{"type": "string", "doc": "x"}')
    assert with_doc.canonical != parse_schema(SchemaType.AVRO, '{"type": "string"}').canonical


def test_drafts_7_and_2020_12_only() -> None:
    assert parse_schema(SchemaType.JSON, "{}").draft == DRAFT_7
    doc = '{"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{}]}'
    assert parse_schema(SchemaType.JSON, doc).draft == DRAFT_2020_12
    doc7 = '{"$schema": "http://json-schema.org/draft-07/schema#"}'
    assert parse_schema(SchemaType.JSON, doc7).draft == DRAFT_7
    with pytest.raises(InvalidSchema, match="not supported"):
        parse_schema(SchemaType.JSON, '{"$schema": "http://json-schema.org/draft-04/schema#"}')


@pytest.mark.parametrize(
    ("kind", "text", "reason"),
    [
        (SchemaType.JSON, "{not json", "not JSON"),
        (SchemaType.JSON, '{"type": "strin"}', "not a valid JSON Schema"),
        (SchemaType.JSON, '{"minLength": -1}', "not a valid JSON Schema"),
        (SchemaType.JSON, "[1]", "an object or a boolean"),
        (SchemaType.AVRO, '{"type": "record", "name": "R"}', "not a valid Avro schema"),
        (SchemaType.AVRO, '"strin"', "not a valid Avro schema"),
        (
            SchemaType.AVRO,
            '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int",'
            ' "default": "x"}]}',
            "not a valid Avro schema",
        ),
    ],
)
def test_what_is_not_a_schema_is_refused_with_the_reason(
    kind: SchemaType, text: str, reason: str
) -> None:
    with pytest.raises(InvalidSchema, match=reason):
        parse_schema(kind, text)


def test_schema_types_as_clients_name_them() -> None:
    assert schema_type_of(None) is SchemaType.AVRO
    assert schema_type_of("json") is SchemaType.JSON
    with pytest.raises(InvalidSchema, match="PROTOBUF"):
        schema_type_of("PROTOBUF")


@pytest.mark.parametrize("kind", [SchemaType.JSON, SchemaType.AVRO])
def test_the_realistic_schema_accepts_orders_and_points_at_each_failure(kind: SchemaType) -> None:
    document = JSON_SCHEMA if kind is SchemaType.JSON else AVRO_SCHEMA
    parsed = parse_schema(kind, json.dumps(document))
    validator = cached_validator(kind, parsed.canonical)
    assert cached_validator(kind, parsed.canonical) is validator  # compiled once
    assert all(validator.violations(order(i), limit=10) == [] for i in range(50))
    bad = order(1)
    bad["items"][1]["quantity"] = "one"
    bad["status"] = "lost"
    del bad["currency"]
    found = validator.violations(bad, limit=10)
    assert sorted(v.pointer for v in found) == ["", "/items/1/quantity", "/status"]
    assert any("currency" in v.message for v in found)
    assert len(validator.violations(bad, limit=2)) == 2


def test_pointers_escape_slash_and_tilde() -> None:
    validator = compile_validator(SchemaType.JSON, {"properties": {"a/b~c": {"type": "integer"}}})
    assert validator.violations({"a/b~c": "x"}, limit=5) == [
        Violation("/a~1b~0c", '"x" is not of type "integer"')
    ]


def _has_bytes_like(schema: Any) -> bool:
    return "bytes" in json.dumps(schema) or "fixed" in json.dumps(schema)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(avro_schemas, st.data())
def test_avro_as_json_schema_agrees_with_fastavro(schema: Any, data: st.DataObject) -> None:
    validator = compile_validator(SchemaType.AVRO, schema)
    parsed = fastavro.parse_schema(schema)
    for _ in range(5):
        value = data.draw(json_values(max_leaves=8))
        if isinstance(value, float) and value.is_integer():
            continue  # a JSON number 1.0 is an integer to JSON Schema, a float to fastavro
        # Values as they come out of the stored JSON text.
        value = orjson.loads(orjson.dumps(value))
        if _contains_integral_float(value):
            continue
        expected = fastavro.validation.validate(value, parsed, raise_errors=False)
        assert validator.is_valid(value) == expected, (schema, value, avro_as_json_schema(schema))


def _contains_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, list):
        return any(_contains_integral_float(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_integral_float(v) for v in value.values())
    return False
