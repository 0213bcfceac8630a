"""The fast accept path's types never accept a value the reference (jsonschema-rs) refuses.

Schemas of both drafts and Avro schemas (through their JSON Schema) are
generated with values drawn from them, near their bounds and patterns, and
with arbitrary ones; whenever a schema has a fast type and a value's JSON
text decodes into it, the reference must find the value valid."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.records.schema_check import json_value
from gateway.schemas.avro_json import avro_as_json_schema
from gateway.schemas.fast_types import Untranslatable, accepting_type, python_pattern
from gateway.schemas.formats import SchemaType
from gateway.schemas.validators import compile_validator
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from tests.gateway.schemas.strategies import (
    ALPHABET,
    PATTERNS,
    avro_schemas,
    json_values,
    keyword_schemas,
    values_for,
)


def accepted(value_type: Any, text: bytes) -> bool:
    try:
        msgspec.json.decode(text, type=value_type)
    except msgspec.DecodeError:
        return False
    return True


def check(kind: SchemaType, document: Any, reference_doc: dict[str, Any], value: Any) -> None:
    value_type = accepting_type(reference_doc)
    if value_type is None:
        event("no fast type")
        return
    text = json.dumps(value).encode()  # integers past 64 bits too
    if accepted(value_type, text):
        event("accepted")
        assert compile_validator(kind, document).is_valid(json_value(text)), (document, value)
    else:
        event("refused")


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_json_schemas_fast_type_accepts_only_what_the_reference_accepts(
    data: st.DataObject,
) -> None:
    doc = data.draw(keyword_schemas())
    value = data.draw(values_for(doc, doc) | json_values())
    check(SchemaType.JSON, doc, doc, value)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_an_avro_schemas_fast_type_accepts_only_what_the_reference_accepts(
    data: st.DataObject,
) -> None:
    avro = data.draw(avro_schemas)
    translated = avro_as_json_schema(avro)
    value = data.draw(values_for(translated, translated) | json_values())
    check(SchemaType.AVRO, avro, translated, value)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATTERNS), st.data())
def test_a_translated_pattern_matches_what_the_references_pattern_matches(
    pattern: str, data: st.DataObject
) -> None:
    python = re.compile(python_pattern(pattern))
    text = data.draw(st.from_regex(python) | st.text(ALPHABET, max_size=6))
    reference = compile_validator(SchemaType.JSON, {"type": "string", "pattern": pattern})
    assert bool(python.search(text)) == reference.is_valid(text), (pattern, text)


@pytest.mark.parametrize(
    "pattern", ["\\s", "(?=a)", "a+?", "\\bx", "[a-]", "\\p{L}", "é", "a{2", "(a", "\\u0041"]
)
def test_patterns_outside_the_shared_subset_are_left_to_the_reference(pattern: str) -> None:
    with pytest.raises(Untranslatable):
        python_pattern(pattern)


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        ({"type": "integer"}, b"1.0"),
        ({"enum": [1]}, b"1.0"),
        ({"type": "integer", "maximum": 2**63 - 1}, b"9223372036854775808"),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, b'{"a":"x","a":1}'),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, b'{"a":1,"a":"x"}'),
        ({"type": "string"}, b'"\\ud800"'),
        ({"type": "number"}, b"1e400"),
        # Past 64 bits the reference reads a double; msgspec would read the integer.
        ({"type": "integer"}, b"-9223372036854775809"),
        ({"type": "integer", "maximum": 2**64}, b"18446744073709551615"),
    ],
)
def test_where_msgspec_is_stricter_it_refuses(schema: dict[str, Any], text: bytes) -> None:
    value_type = accepting_type(schema)
    assert value_type is not None
    assert not accepted(value_type, text)


def test_keywords_it_does_not_express_leave_the_schema_to_the_reference() -> None:
    for schema in [
        {"type": "string", "format": "date"},
        {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        {"allOf": [{"type": "integer"}]},
        {"not": {"type": "string"}},
        {"type": "array", "items": {}, "uniqueItems": True},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "object", "patternProperties": {"^a": {}}},
        {"type": "object", "required": ["x"], "additionalProperties": False},
        {"minLength": 2},
        {"$ref": "#/$defs/R", "$defs": {"R": {"type": "array", "items": {"$ref": "#/$defs/R"}}}},
        {"type": "number", "maximum": 2**60},
        {"type": "integer", "exclusiveMaximum": 2**60},
        {"type": "string", "pattern": "\\s"},
        False,
    ]:
        assert accepting_type(schema) is None, schema


@pytest.mark.parametrize("schema", [JSON_SCHEMA, avro_as_json_schema(AVRO_SCHEMA)])
def test_the_realistic_order_has_a_fast_type_that_accepts_valid_orders(
    schema: dict[str, Any],
) -> None:
    value_type = accepting_type(schema)
    assert value_type is not None
    assert all(accepted(value_type, orjson.dumps(order(i))) for i in range(200))
    bad = dict(order(1), status="lost")
    assert not accepted(value_type, orjson.dumps(bad))
