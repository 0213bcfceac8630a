"""Properties of the compatibility checkers: each schema follows itself in every mode,
the Avro checker agrees with the Apache Avro library's, and a JSON Schema verdict of
"compatible" holds for actual values."""

from __future__ import annotations

import json
from typing import Any

import avro.compatibility
import avro.schema
import jsonschema_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.schemas import avro_compat, json_compat
from gateway.schemas.compatibility import incompatibilities
from gateway.schemas.formats import SchemaType
from storage.schemas import COMPATIBILITY_LEVELS
from tests.gateway.schemas.strategies import avro_schemas, json_schemas, json_values

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(avro_schemas, st.sampled_from(COMPATIBILITY_LEVELS))
def test_an_avro_schema_follows_itself_in_every_mode(schema: Any, mode: str) -> None:
    assert incompatibilities(mode, SchemaType.AVRO, schema, [(1, SchemaType.AVRO, schema)]) == []


@SETTINGS
@given(json_schemas, st.sampled_from(COMPATIBILITY_LEVELS))
def test_a_json_schema_follows_itself_in_every_mode(schema: Any, mode: str) -> None:
    assert incompatibilities(mode, SchemaType.JSON, schema, [(1, SchemaType.JSON, schema)]) == []


def _apache_reads(reader: Any, writer: Any) -> bool:
    checker = avro.compatibility.ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is avro.compatibility.SchemaCompatibilityType.compatible


@SETTINGS
@given(avro_schemas, avro_schemas)
def test_avro_resolution_agrees_with_the_apache_avro_checker(reader: Any, writer: Any) -> None:
    ours = not avro_compat.reads(reader, writer)
    assert ours == _apache_reads(reader, writer), avro_compat.reads(reader, writer)


def uses_unnamed_members(writer: Any, value: Any) -> bool:
    """Whether `value` has an object member that an open `writer` does not name: the one
    case the checker accepts on purpose (an optional property added to an open model)."""
    if not isinstance(writer, dict):
        return False
    if isinstance(value, dict):
        named = writer.get("properties", {})
        for key, member in value.items():
            if key not in named:
                if writer.get("additionalProperties", True) is not False:
                    return True
            elif uses_unnamed_members(named[key], member):
                return True
    if isinstance(value, list):
        return any(uses_unnamed_members(writer.get("items", {}), item) for item in value)
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_schemas, json_schemas, st.lists(json_values(), min_size=1, max_size=20))
def test_a_compatible_json_reader_accepts_every_value_the_writer_accepts(
    reader: Any, writer: Any, values: list[Any]
) -> None:
    if json_compat.reads(reader, writer):
        return
    read = jsonschema_rs.Draft7Validator(reader)
    written = jsonschema_rs.Draft7Validator(writer)
    for value in values:
        if written.is_valid(value) and not uses_unnamed_members(writer, value):
            assert read.is_valid(value), (reader, writer, value)
