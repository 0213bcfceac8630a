"""The fast check's translation: which schemas get one, what a pattern becomes, and
where the check is stricter than the reference (jsonschema-rs).

That the check never accepts a value the reference refuses is held by the
differential tests beside the C (tests/gateway/records/test_speedups.py), which
`make sanitize` also runs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.records.fastpath import built
from gateway.schemas.avro_json import avro_as_json_schema
from gateway.schemas.fast_types import Untranslatable, ValueCheck, python_pattern, value_check
from gateway.schemas.formats import SchemaType
from gateway.schemas.validators import compile_validator
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from storage.records import PackedRecords
from tests.gateway.schemas.strategies import ALPHABET, PATTERNS

FAST = built()
needs_c = pytest.mark.skipif(FAST is None, reason="the C fast paths are not built")


def accepted(check: ValueCheck, text: bytes) -> bool:
    """Whether the C scan of a one-record body takes the value `text` under `check`."""
    assert FAST is not None
    body = b'{"records":[{"value":' + text + b"}]}"
    compiled = FAST.compile_schema(check.root)
    limit = 1 << 20
    scan = FAST.scan_produce(
        body, 0, 1, 10, limit, 64, limit, limit, 0, 0, PackedRecords, schema=compiled
    )
    return scan is not None


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
        # Past 64 bits the reference reads a double; the check takes no integer past 18 digits.
        ({"type": "integer"}, b"-9223372036854775809"),
        ({"type": "integer", "maximum": 2**64}, b"18446744073709551615"),
        ({"type": "integer"}, b"1234567890123456789"),
        ({"type": "number", "maximum": 10}, b"12345678901234567"),
        ({"type": "number"}, b"-1e400"),
        ({"type": "object", "required": ["a"]}, b"null"),
    ],
)
@needs_c
def test_where_the_check_is_stricter_it_refuses(schema: dict[str, Any], text: bytes) -> None:
    check = value_check(schema)
    assert check is not None
    assert not accepted(check, text)


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
        {"anyOf": [{"type": "string"}, {"type": "string", "maxLength": 2}]},
        {"type": "object", "required": [f"m{i}" for i in range(65)]},
        {"type": "object", "properties": {f"p{i}": {"type": "null"} for i in range(1000)}},
        False,
    ]:
        assert value_check(schema) is None, schema


@needs_c
@pytest.mark.parametrize("schema", [JSON_SCHEMA, avro_as_json_schema(AVRO_SCHEMA)])
def test_the_realistic_order_has_a_check_that_accepts_valid_orders(
    schema: dict[str, Any],
) -> None:
    check = value_check(schema)
    assert check is not None
    assert all(accepted(check, orjson.dumps(order(i))) for i in range(200))
    for changed in [
        dict(order(1), status="lost"),
        dict(order(1), currency="EURO"),
        dict(order(1), items=[]),
        dict(order(1), priority=10),
        dict(order(1), shipping={"country": "DE"}),
        {k: v for k, v in order(1).items() if k != "customer_id"},
        dict(order(1), extra=1),
    ]:
        # On these plain cases the check is exact: it takes what the reference takes.
        valid = compile_validator(SchemaType.JSON, schema).is_valid(changed)
        assert accepted(check, orjson.dumps(changed)) == valid, changed
    assert not accepted(check, orjson.dumps(dict(order(1), status="lost")))
