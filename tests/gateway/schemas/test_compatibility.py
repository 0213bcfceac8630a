"""Known-good and known-bad schema evolutions, per compatibility mode, for both formats."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.schemas.compatibility import incompatibilities
from gateway.schemas.formats import SchemaType
from storage.schemas import COMPATIBILITY_LEVELS

OK, BAD = True, False


def obj(props: dict[str, Any], required: list[str], **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, **more}


S, INT = {"type": "string"}, {"type": "integer"}

# (name, old, new, backward ok, forward ok)
JSON_EVOLUTIONS = [
    ("add optional property", obj({"a": S}, ["a"]), obj({"a": S, "b": S}, ["a"]), OK, OK),
    ("add required property", obj({"a": S}, ["a"]), obj({"a": S, "b": S}, ["a", "b"]), BAD, OK),
    ("remove required property", obj({"a": S, "b": S}, ["a", "b"]), obj({"a": S}, ["a"]), OK, BAD),
    ("change type", obj({"a": S}, ["a"]), obj({"a": INT}, ["a"]), BAD, BAD),
    ("widen integer to number", obj({"a": INT}, []), obj({"a": {"type": "number"}}, []), OK, BAD),
    ("widen type to a list", {"type": "string"}, {"type": ["string", "null"]}, OK, BAD),
    ("widen enum", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, OK, BAD),
    ("narrow enum", {"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, BAD, OK),
    (
        "close the content model",
        obj({"a": S}, []),
        obj({"a": S}, [], additionalProperties=False),
        BAD,
        OK,
    ),
    (
        "open the content model",
        obj({"a": S}, [], additionalProperties=False),
        obj({"a": S}, []),
        OK,
        BAD,
    ),
    (
        "remove a property from a closed model",
        obj({"a": S, "b": S}, ["a"], additionalProperties=False),
        obj({"a": S}, ["a"], additionalProperties=False),
        BAD,
        OK,
    ),
    ("tighten maxLength", {"type": "string"}, {"type": "string", "maxLength": 5}, BAD, OK),
    (
        "raise minimum",
        {"type": "integer", "minimum": 0},
        {"type": "integer", "minimum": 1},
        BAD,
        OK,
    ),
    (
        "nested type change",
        obj({"o": obj({"x": INT}, [])}, []),
        obj({"o": obj({"x": S}, [])}, []),
        BAD,
        BAD,
    ),
    (
        "array items narrowed",
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": INT},
        BAD,
        OK,
    ),
]


def record(fields: list[dict[str, Any]], name: str = "Order", **more: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "shop", "fields": fields, **more}


def field(name: str, type_: Any, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **more}


def enum(symbols: list[str], **more: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Status", "symbols": symbols, **more}


ID = field("id", "string")
AVRO_EVOLUTIONS = [
    ("add field with default", record([ID]), record([ID, field("n", "int", default=0)]), OK, OK),
    ("add field without default", record([ID]), record([ID, field("n", "int")]), BAD, OK),
    ("remove field without default", record([ID, field("n", "int")]), record([ID]), OK, BAD),
    ("remove field with default", record([ID, field("n", "int", default=1)]), record([ID]), OK, OK),
    ("change type", record([ID, field("n", "int")]), record([ID, field("n", "string")]), BAD, BAD),
    ("promote int to long", record([field("n", "int")]), record([field("n", "long")]), OK, BAD),
    ("string reads bytes", record([field("b", "bytes")]), record([field("b", "string")]), OK, OK),
    (
        "widen enum",
        record([field("s", enum(["A", "B"]))]),
        record([field("s", enum(["A", "B", "C"]))]),
        OK,
        BAD,
    ),
    (
        "narrow enum",
        record([field("s", enum(["A", "B", "C"]))]),
        record([field("s", enum(["A", "B"]))]),
        BAD,
        OK,
    ),
    (
        "widen enum with a default symbol",
        record([field("s", enum(["A", "B"], default="A"))]),
        record([field("s", enum(["A", "B", "C"], default="A"))]),
        OK,
        OK,
    ),
    (
        "rename field with an alias",
        record([ID, field("n", "int")]),
        record([ID, field("count", "int", aliases=["n"])]),
        OK,
        BAD,
    ),
    (
        "rename record with an alias",
        record([ID]),
        record([ID], name="Purchase", aliases=["Order"]),
        OK,
        BAD,
    ),
    ("rename record without alias", record([ID]), record([ID], name="Purchase"), BAD, BAD),
    (
        "make field nullable",
        record([field("c", "string")]),
        record([field("c", ["null", "string"], default=None)]),
        OK,
        BAD,
    ),
    (
        "fixed size change",
        {"type": "fixed", "name": "F", "size": 4},
        {"type": "fixed", "name": "F", "size": 8},
        BAD,
        BAD,
    ),
]


def verdicts(kind: SchemaType, old: Any, new: Any) -> dict[str, bool]:
    return {
        mode: not incompatibilities(mode, kind, new, [(1, kind, old)])
        for mode in COMPATIBILITY_LEVELS
    }


def expected(backward: bool, forward: bool) -> dict[str, bool]:
    return {
        "NONE": True,
        "BACKWARD": backward,
        "BACKWARD_TRANSITIVE": backward,
        "FORWARD": forward,
        "FORWARD_TRANSITIVE": forward,
        "FULL": backward and forward,
        "FULL_TRANSITIVE": backward and forward,
    }


@pytest.mark.parametrize(
    ("name", "old", "new", "backward", "forward"),
    JSON_EVOLUTIONS,
    ids=[e[0] for e in JSON_EVOLUTIONS],
)
def test_json_schema_evolutions(
    name: str, old: Any, new: Any, backward: bool, forward: bool
) -> None:
    assert verdicts(SchemaType.JSON, old, new) == expected(backward, forward)


@pytest.mark.parametrize(
    ("name", "old", "new", "backward", "forward"),
    AVRO_EVOLUTIONS,
    ids=[e[0] for e in AVRO_EVOLUTIONS],
)
def test_avro_evolutions(name: str, old: Any, new: Any, backward: bool, forward: bool) -> None:
    assert verdicts(SchemaType.AVRO, old, new) == expected(backward, forward)


def test_transitive_modes_check_every_earlier_version() -> None:
    v1 = record([ID])
    v2 = record([ID, field("n", "int", default=0)])
    v3 = record([ID, field("n", "int")])  # reads v2 (which writes n), not v1
    history = [(1, SchemaType.AVRO, v1), (2, SchemaType.AVRO, v2)]
    assert incompatibilities("BACKWARD", SchemaType.AVRO, v3, history) == []
    found = incompatibilities("BACKWARD_TRANSITIVE", SchemaType.AVRO, v3, history)
    assert [(f.version, f.direction, f.pointer) for f in found] == [(1, "backward", "/fields/1")]
    assert "'n' is not written and has no default" in found[0].message


def test_each_incompatibility_is_named_with_its_path() -> None:
    old = obj({"a": S, "o": obj({"x": INT}, [])}, ["a"])
    new = obj({"a": INT, "o": obj({"x": S}, ["x"]), "b": S}, ["a", "b"])
    found = incompatibilities("FULL", SchemaType.JSON, new, [(3, SchemaType.JSON, old)])
    described = sorted((f.direction, f.pointer) for f in found)
    assert described == [
        ("backward", "/properties/a/type"),
        ("backward", "/properties/o/properties/x/type"),
        ("backward", "/properties/o/required"),
        ("backward", "/required"),
        ("forward", "/properties/a/type"),
        ("forward", "/properties/o/properties/x/type"),
    ]
    assert found[0].describe().startswith("the new schema cannot read data written with version 3")


def test_a_change_of_schema_type_is_incompatible_except_under_none() -> None:
    history = [(1, SchemaType.AVRO, "string")]
    assert incompatibilities("NONE", SchemaType.JSON, S, history) == []
    assert incompatibilities("FORWARD", SchemaType.JSON, S, history)


def test_an_unknown_keyword_that_changed_counts_as_incompatible() -> None:
    old = {"allOf": [S]}
    new = {"allOf": [INT]}
    found = incompatibilities("BACKWARD", SchemaType.JSON, new, [(1, SchemaType.JSON, old)])
    assert [f.pointer for f in found] == ["/allOf"]
