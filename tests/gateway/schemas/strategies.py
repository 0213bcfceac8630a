"""Hypothesis strategies for schemas and values of both formats, small enough to collide."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

AVRO_PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "string"]
DEFAULTS: dict[str, Any] = {"boolean": False, "int": 0, "long": 0, "double": 0.5, "string": ""}
FIELD_NAMES = ["a", "b", "c", "d"]
SYMBOLS = ["A", "B", "C", "D"]


def _avro_type(depth: int) -> st.SearchStrategy[Any]:
    base = st.one_of(
        st.sampled_from(AVRO_PRIMITIVES),
        st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True).map(
            lambda s: {"type": "enum", "name": "?", "symbols": s}
        ),
        st.lists(st.sampled_from(AVRO_PRIMITIVES), min_size=2, max_size=3, unique=True),
    )
    if depth <= 0:
        return base
    inner = _avro_type(depth - 1)
    return st.one_of(
        base,
        inner.filter(lambda t: not isinstance(t, list)).map(
            lambda t: {"type": "array", "items": t}
        ),
        inner.filter(lambda t: not isinstance(t, list)).map(lambda t: {"type": "map", "values": t}),
        _avro_record(depth - 1),
    )


def _field(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    def build(name: str, type_: Any, with_default: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "type": type_}
        if with_default and isinstance(type_, str) and type_ in DEFAULTS:
            out["default"] = DEFAULTS[type_]
        elif with_default and isinstance(type_, list) and type_[0] == "null":
            out["default"] = None
        return out

    return st.builds(build, st.sampled_from(FIELD_NAMES), _avro_type(depth), st.booleans())


def _avro_record(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(_field(depth), max_size=4, unique_by=lambda f: f["name"]).map(
        lambda fields: {"type": "record", "name": "?", "fields": fields}
    )


def named(schema: Any) -> Any:
    """`schema` with every placeholder name `?` replaced by N1, N2, ... in walk order."""
    counter = itertools.count(1)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if out.get("name") == "?":
                out["name"] = f"N{next(counter)}"
            return out
        return node

    return walk(schema)


avro_schemas = _avro_record(1).map(named)


def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from(["", "x", "A", "B", "C"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


JSON_TYPES = ["null", "boolean", "integer", "number", "string", "object", "array"]


def _json_schema(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(
        st.sampled_from(JSON_TYPES).map(lambda t: {"type": t}),
        st.lists(st.sampled_from(JSON_TYPES), min_size=1, max_size=3, unique=True).map(
            lambda ts: {"type": ts}
        ),
        st.lists(
            st.sampled_from(["A", "B", "C", 1, None]), min_size=1, max_size=3, unique=True
        ).map(lambda e: {"enum": e}),
        st.builds(lambda m: {"type": "string", "maxLength": m}, st.integers(0, 3)),
        st.builds(lambda m: {"type": "integer", "minimum": m}, st.integers(-2, 2)),
    )
    if depth <= 0:
        return leaf
    inner = _json_schema(depth - 1)
    objects = st.builds(
        lambda props, req, closed: {
            "type": "object",
            "properties": props,
            "required": sorted(r for r in req if r in props),
            **({"additionalProperties": False} if closed else {}),
        },
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=3),
        st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True),
        st.booleans(),
    )
    arrays = inner.map(lambda t: {"type": "array", "items": t})
    return st.one_of(leaf, objects, arrays)


json_schemas = _json_schema(2)
