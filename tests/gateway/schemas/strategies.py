"""Hypothesis strategies for schemas and values of both formats, small enough to collide."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from gateway.schemas.fast_types import python_pattern

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


# -- schemas over the validation keywords, and values drawn from them ---------

DRAFTS = [
    "http://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft/2020-12/schema",
]
PATTERNS = [
    "^ord-[0-9]+$",
    "^[a-z]{2,3}$",
    "a.c",
    "^\\d+$",
    "\\w+@\\w+",
    "^(ab|cd)*$",
    "[^x]",
    "^$",
    "x?y{2}$",
    "^[A-Z0-9_]+$",
    "^.$",
    "(?:a|b)+",
    "\\.",
    "^a$|^b$",
    "[\\d]",
]
ALPHABET = st.sampled_from([*"abcdxyAZ019-_@.\n\r\u2028\u0663\u00e9 ", "\U0001f600"])
BOUNDS = st.sampled_from([-3, -1, 0, 0.5, 1, 2, 2.5, 10, 2**31 - 1, 2**53, 2**63 - 1, 2**64])


def _string() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(0, 4),
            "pattern": st.sampled_from(PATTERNS),
        },
    )


def _numeric(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, Any] = {
        "minimum": BOUNDS,
        "maximum": BOUNDS,
        "exclusiveMinimum": BOUNDS,
        "exclusiveMaximum": BOUNDS,
    }
    if kind == "integer":
        optional["multipleOf"] = st.sampled_from([1, 2, 3, 0.5])
    return st.fixed_dictionaries({"type": st.just(kind)}, optional=optional)


def _leaf() -> st.SearchStrategy[Any]:
    return st.one_of(
        _string(),
        _numeric("integer"),
        _numeric("number"),
        st.sampled_from(["boolean", "null", "object", "array"]).map(lambda t: {"type": t}),
        st.lists(
            st.sampled_from(["null", "boolean", "integer", "number", "string"]),
            min_size=1,
            max_size=3,
            unique=True,
        ).map(lambda ts: {"type": ts}),
        st.lists(st.sampled_from(["A", "B", 1, 2, None, True, 1.5]), min_size=1, max_size=3).map(
            lambda e: {"enum": e}
        ),
        st.sampled_from(["A", 1, None]).map(lambda c: {"const": c}),
        st.just(True),
        st.just({}),
        st.just({"type": "string", "format": "email"}),  # untranslated: no fast type
    )


def _schema(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return _leaf()
    inner = _schema(depth - 1)
    objects = st.builds(
        lambda props, req, closed, extra: {
            "type": "object",
            "properties": props,
            "required": req,
            **({"additionalProperties": closed} if extra else {}),
        },
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=3),
        st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True),
        st.booleans(),
        st.booleans(),
    )
    maps = inner.map(lambda t: {"type": "object", "additionalProperties": t})
    arrays = st.builds(
        lambda items, bounds: {"type": "array", "items": items, **bounds},
        inner,
        st.fixed_dictionaries(
            {},
            optional={
                "minItems": st.integers(0, 2),
                "maxItems": st.integers(0, 3),
                "uniqueItems": st.booleans(),
            },
        ),
    )
    unions = st.lists(inner, min_size=1, max_size=3).map(lambda s: {"anyOf": s})
    nullable = inner.map(lambda s: {"type": ["object", "null"], "properties": {"a": s}})
    return st.one_of(_leaf(), objects, maps, arrays, unions, nullable)


@st.composite
def keyword_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """JSON Schemas of both drafts over the keywords values are checked by, and some
    beyond them, part of them reached by reference."""
    draft = draw(st.sampled_from(DRAFTS))
    root = draw(_schema(2))
    doc: dict[str, Any] = {"$schema": draft}
    if draw(st.booleans()):  # part of it by reference
        defs = "definitions" if draft == DRAFTS[0] else "$defs"
        doc |= {defs: {"D": root}, "type": "object", "properties": {"a": {"$ref": f"#/{defs}/D"}}}
        doc["required"] = draw(st.sampled_from([[], ["a"]]))
    elif isinstance(root, dict):
        doc |= root
    else:
        doc |= {"anyOf": [root]}
    return doc


def pick(items: list[Any]) -> st.SearchStrategy[Any]:
    """One of `items`. Not `sampled_from`: hypothesis caches that by its arguments, and
    `[1]` equals `[1.0]` and `[True]`, so a cached one would draw another type."""
    return st.integers(0, len(items) - 1).map(lambda i: items[i])


def values_for(schema: Any, root: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of `schema`, many valid, many just off (bounds, lengths, patterns)."""
    anything = json_values(4)
    if depth > 4 or schema is True or not isinstance(schema, dict):
        return anything
    if "$ref" in schema:
        where, name = schema["$ref"][2:].split("/")
        return values_for(root[where][name], root, depth + 1)
    if "anyOf" in schema:
        return st.one_of([values_for(s, root, depth + 1) for s in schema["anyOf"]])
    if "enum" in schema:
        return pick(schema["enum"]) | anything
    if "const" in schema:
        return st.just(schema["const"]) | anything
    kinds = schema.get("type")
    if kinds is None:
        return anything
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return st.one_of([_values_of_type(k, schema, root, depth) for k in kinds] + [anything])


def _values_of_type(kind: str, schema: dict[str, Any], root: Any, depth: int) -> Any:
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 5)
        texts = st.text(ALPHABET, min_size=max(0, min(low, high) - 1), max_size=high + 1)
        if "pattern" in schema:
            matching = st.from_regex(python_pattern(schema["pattern"]))
            texts = matching | matching.map(lambda s: s + "\n") | texts
        return texts
    if kind in ("integer", "number"):
        edges = [
            b + d
            for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
            if k in schema
            for b in [schema[k]]
            for d in (-1, 0, 1)
        ]
        ints = pick([int(e) for e in edges] or [0]) | st.integers(-(2**65), 2**65)
        floats = pick([float(e) for e in edges] or [0.0]) | st.floats(
            allow_nan=False, allow_infinity=False
        )
        return ints | floats
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = values_for(schema.get("items", True), root, depth + 1)
        low, high = schema.get("minItems", 0), schema.get("maxItems", 3)
        return st.lists(items, min_size=min(max(0, low - 1), 3), max_size=min(high + 1, 4))
    if kind == "object":
        props = schema.get("properties", {})
        if "additionalProperties" in schema and not isinstance(
            schema["additionalProperties"], bool
        ):
            return st.dictionaries(
                st.sampled_from(FIELD_NAMES),
                values_for(schema["additionalProperties"], root, depth + 1),
                max_size=3,
            )
        required = [n for n in schema.get("required", []) if n in props]
        optional = {n: values_for(s, root, depth + 1) for n, s in props.items()}
        return st.fixed_dictionaries(
            {n: optional.pop(n) for n in required},
            optional={**optional, "zz": json_values(2)},
        )
    return json_values(2)
