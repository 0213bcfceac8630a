"""A JSON Schema as a msgspec type that decodes only values the schema accepts.

Produce checks a batch's values on the way in. The reference check
(`validators.ValueValidator`, jsonschema-rs) needs every value as Python
objects first, and parsing them costs as much as validating them. msgspec
decodes JSON text straight into a type and checks types, required and unknown
members, literals, lengths and bounds as it goes, in C, with no intermediate
objects; a batch of values that decodes into the type is valid. So the type is
a fast way to accept, and nothing more: a value it refuses, or a schema it
cannot express, goes to the reference, which decides and writes the errors.

Only what msgspec checks exactly as JSON Schema does is translated; any other
keyword anywhere in the schema makes `accepting_type` answer None (no fast
way for that schema). Where msgspec is stricter (an integer written as `1.0`,
an enum's `1` given as `1.0`, a repeated member both copies of which must
hold) it only sends more values to the reference. Patterns are rewritten from
a small subset of regular expressions whose meaning Python's `re` and the
reference's engine share (`python_pattern`). A property test holds the type to
the reference: it never accepts a value the reference refuses
(tests/gateway/schemas/test_fast_types.py). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

EXACT_FLOAT = 2**53
"""Past this a JSON integer may round on its way to a double; bounds that large on a
number (or an exclusive one on an integer) are left to the reference."""

INT64 = (-(2**63), 2**63 - 1)

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern"}),
    "integer": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
    "null": frozenset(),
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems", "uniqueItems"}),
}
TYPE_KEYWORDS["number"] = TYPE_KEYWORDS["integer"] - {"multipleOf"}
_REF = re.compile(r"#/(\$defs|definitions)/([A-Za-z0-9_.\-]+)")


class Untranslatable(Exception):
    """The schema uses something the fast type does not express exactly."""


def accepting_type(document: Any) -> Any | None:
    """The msgspec type accepting only values valid under the JSON Schema `document`
    (draft 7 or 2020-12, already checked as valid), or None when there is none."""
    try:
        if isinstance(document, dict):
            if "$id" in document and not isinstance(document["$id"], str):
                raise Untranslatable("$id")
            root = {k: v for k, v in document.items() if k not in ("$schema", "$id")}
        else:
            root = document
        translated = _Translator(document).node(root)
        msgspec.json.Decoder(translated)  # msgspec refuses some unions: no fast type then
    except (Untranslatable, TypeError, ValueError, RecursionError):
        return None
    return translated


class _Translator:
    def __init__(self, document: Any) -> None:
        self._document = document
        self._defs: dict[str, Any] = {}
        self._open: set[str] = set()
        self._structs = 0

    def node(self, schema: Any) -> Any:
        if schema is True:
            return Any
        if not isinstance(schema, dict):
            raise Untranslatable("a false or unknown schema")
        keys = set(schema) - ANNOTATIONS - {"$defs", "definitions"}
        if not keys:
            return Any
        if "$ref" in schema:
            if keys != {"$ref"}:
                raise Untranslatable("$ref beside other keywords")
            return self._ref(schema["$ref"])
        if keys <= {"anyOf"}:
            members = [self.node(s) for s in schema["anyOf"]]
            if Any in members:
                return Any
            return Union[tuple(members)]  # noqa: UP007 (a runtime union of types)
        if "enum" in schema or "const" in schema:
            return self._literal(schema, keys)
        if "type" not in schema:
            raise Untranslatable("keywords without a type")
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        rest = keys - {"type"}
        allowed = frozenset().union(*(TYPE_KEYWORDS.get(k, frozenset()) for k in kinds))
        if not rest <= allowed or not kinds:
            raise Untranslatable(f"keywords {sorted(rest - allowed)}")
        if "integer" in kinds and "number" in kinds:
            kinds = [k for k in kinds if k != "integer"]  # a number covers every integer
        members = [self._typed(kind, schema) for kind in kinds]
        return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007

    def _ref(self, ref: Any) -> Any:
        match = _REF.fullmatch(ref) if isinstance(ref, str) else None
        if match is None or not isinstance(self._document, dict):
            raise Untranslatable("a reference other than to a local definition")
        where, name = match.groups()
        key = f"{where}/{name}"
        if key in self._defs:
            return self._defs[key]
        if key in self._open:
            raise Untranslatable("a recursive reference")
        container = self._document.get(where)
        if not isinstance(container, dict) or name not in container:
            raise Untranslatable("a reference to nothing")
        self._open.add(key)
        self._defs[key] = self.node(container[name])
        self._open.discard(key)
        return self._defs[key]

    def _literal(self, schema: dict[str, Any], keys: set[str]) -> Any:
        if not keys <= {"enum", "const", "type"}:
            raise Untranslatable("enum or const beside other keywords")
        values = list(schema["enum"]) if "enum" in schema else [schema["const"]]
        if "const" in schema and "enum" in schema:
            values = [v for v in values if _same(v, schema["const"])]
        if "type" in schema:
            kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            values = [v for v in values if _json_kind(v) in kinds]
        if not values or any(
            v is not None and (isinstance(v, bool) or not isinstance(v, str | int)) for v in values
        ):
            raise Untranslatable("an enum of other than strings, integers and null")
        return Literal[tuple(values)]

    def _typed(self, kind: str, schema: dict[str, Any]) -> Any:
        if kind == "string":
            meta: dict[str, Any] = {}
            if "minLength" in schema:
                meta["min_length"] = int(schema["minLength"])
            if "maxLength" in schema:
                meta["max_length"] = int(schema["maxLength"])
            if "pattern" in schema:
                meta["pattern"] = python_pattern(schema["pattern"])
            return Annotated[str, Meta(**meta)] if meta else str
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return bool
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            if schema.get("uniqueItems", False) is not False:
                raise Untranslatable("uniqueItems")
            items = schema.get("items", True)
            if isinstance(items, list):
                raise Untranslatable("items as a list (draft 7 tuples)")
            meta = {}
            if "minItems" in schema:
                meta["min_length"] = int(schema["minItems"])
            if "maxItems" in schema:
                meta["max_length"] = int(schema["maxItems"])
            listed: Any = list.__class_getitem__(self.node(items))
            return Annotated[listed, Meta(**meta)] if meta else listed
        raise Untranslatable(f"type {kind!r}")

    def _object(self, schema: dict[str, Any]) -> Any:
        properties: dict[str, Any] = schema.get("properties", {})
        required: list[str] = list(schema.get("required", []))
        extra = schema.get("additionalProperties", True)
        if extra is not True and extra is not False:
            if properties or required:
                raise Untranslatable("additionalProperties as a schema beside properties")
            return dict.__class_getitem__((str, self.node(extra)))
        if extra is False and any(name not in properties for name in required):
            raise Untranslatable("a required member that additionalProperties forbids")
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        rename: dict[str, str] = {}
        names = list(properties) + [n for n in dict.fromkeys(required) if n not in properties]
        for index, name in enumerate(names):
            member = self.node(properties[name]) if name in properties else Any
            attribute = f"m{index}"
            rename[attribute] = name
            if name in required:
                fields.append((attribute, member))
            else:
                fields.append((attribute, Union[member, UnsetType], UNSET))  # noqa: UP007
        self._structs += 1
        return msgspec.defstruct(
            f"Value{self._structs}",
            fields,
            rename=rename,
            forbid_unknown_fields=extra is False,
            kw_only=True,
            gc=False,
        )


def _bounds(schema: dict[str, Any]) -> None:
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(keyword, 0)
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise Untranslatable(f"{keyword} other than a number")


def _integer(schema: dict[str, Any]) -> Any:
    _bounds(schema)
    # Always within 64 bits: msgspec reads any integer, but past 64 bits the reference
    # reads the text as a double (orjson), which it may judge otherwise.
    low, high = INT64
    for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        if keyword in schema and abs(schema[keyword]) >= EXACT_FLOAT:
            raise Untranslatable(f"{keyword} past exact doubles")
    for keyword in ("minimum", "maximum"):
        if isinstance(schema.get(keyword), float) and abs(schema[keyword]) >= EXACT_FLOAT:
            raise Untranslatable(f"{keyword} past exact doubles")
    if "minimum" in schema:
        low = max(low, math.ceil(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        high = min(high, math.floor(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
    if low > INT64[1] or high < INT64[0]:
        raise Untranslatable("integer bounds past 64 bits")
    meta: dict[str, Any] = {"ge": low, "le": high}
    if "multipleOf" in schema:
        step = schema["multipleOf"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 < step <= INT64[1]:
            raise Untranslatable("multipleOf other than a whole number")
        meta["multiple_of"] = step
    return Annotated[int, Meta(**meta)]


def _number(schema: dict[str, Any]) -> Any:
    _bounds(schema)
    meta: dict[str, Any] = {}
    names = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
    for keyword, name in names.items():
        if keyword in schema:
            bound = schema[keyword]
            if abs(bound) >= EXACT_FLOAT:
                raise Untranslatable(f"{keyword} past exact doubles")
            meta[name] = float(bound)
    return Annotated[float, Meta(**meta)] if meta else float


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# -- patterns ---------------------------------------------------------------

_ESCAPED = frozenset(".-+*?()[]{}|\\/^$")
_PLAIN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-@:/,'\"=!%&#~<>;"
)
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_"}


def python_pattern(pattern: str) -> str:
    """`pattern` (ECMA-262, as JSON Schema reads it) as a Python regular expression that
    matches the same strings, for the subset both read alike: literals, `.`, classes of
    literals and ranges, `\\d`, `\\w`, groups, alternation, greedy quantifiers, `^` and
    `$`. Raises Untranslatable for anything else."""
    out: list[str] = []
    i = 0
    atom = False  # may a quantifier follow?
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c in _PLAIN:
            out.append(re.escape(c))
            atom = True
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise Untranslatable("a trailing backslash")
            n = pattern[i + 1]
            if n in _ESCAPED:
                out.append(re.escape(n))
            elif n in _CLASS_ESCAPES:
                out.append(f"[{_CLASS_ESCAPES[n]}]")
            else:
                raise Untranslatable(f"the escape \\{n}")
            i += 1
            atom = True
        elif c == ".":
            out.append("[^\\n]")  # the reference's `.`: anything but a newline
            atom = True
        elif c == "[":
            end, text = _class(pattern, i)
            out.append(text)
            i = end
            atom = True
        elif c == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 2
            elif pattern.startswith("(?", i):
                raise Untranslatable("a group other than (...) and (?:...)")
            else:
                out.append("(")
            depth += 1
            atom = False
        elif c == ")":
            if depth == 0:
                raise Untranslatable("an unbalanced parenthesis")
            depth -= 1
            out.append(")")
            atom = True
        elif c == "|":
            out.append("|")
            atom = False
        elif c in "*+?":
            if not atom:
                raise Untranslatable("a quantifier of nothing")
            out.append(c)
            atom = False
        elif c == "{":
            match = re.compile(r"\{(\d{1,4})(,(\d{1,4})?)?\}").match(pattern, i)
            if match is None or not atom:
                raise Untranslatable("a brace other than {n}, {n,} or {n,m}")
            low, comma, high = match.group(1), match.group(2), match.group(3)
            if high is not None and int(high) < int(low):
                raise Untranslatable("a {n,m} with m < n")
            out.append(match.group(0) if comma is None or high is not None else f"{{{low},}}")
            i = match.end() - 1
            atom = False
        elif c == "^":
            out.append("^")
            atom = False
        elif c == "$":
            out.append(r"\Z")  # Python's $ also matches before a final newline
            atom = False
        else:
            raise Untranslatable(f"the character {c!r}")
        i += 1
    if depth:
        raise Untranslatable("an unbalanced parenthesis")
    return "".join(out)


def _class(pattern: str, start: int) -> tuple[int, str]:
    """The class `[...]` at `start`: (the index of its `]`, its Python text)."""
    i = start + 1
    parts: list[str] = []
    negated = pattern.startswith("^", i)
    if negated:
        i += 1
    members: list[str] = []
    while i < len(pattern) and pattern[i] != "]":
        c = pattern[i]
        if c == "\\":
            n = pattern[i + 1] if i + 1 < len(pattern) else ""
            if n in _CLASS_ESCAPES and not negated:
                parts.append(_CLASS_ESCAPES[n])
            elif n in _ESCAPED:
                members.append(n)
            else:
                raise Untranslatable(f"the escape \\{n} in a class")
            i += 2
            continue
        if c not in _PLAIN or c == "-":
            raise Untranslatable(f"the character {c!r} in a class")
        if pattern.startswith("-", i + 1) and i + 2 < len(pattern) and pattern[i + 2] != "]":
            last = pattern[i + 2]
            if not (c.isalnum() and last.isalnum() and c.isascii() and last.isascii()):
                raise Untranslatable("a range other than of ASCII letters or digits")
            if ord(last) < ord(c) or c.isdigit() != last.isdigit():
                raise Untranslatable("a range out of order")
            parts.append(f"{c}-{last}")
            i += 3
            continue
        members.append(c)
        i += 1
    if i >= len(pattern) or (not parts and not members):
        raise Untranslatable("an empty or unclosed class")
    body = "".join(parts) + "".join(re.escape(m) for m in members)
    return i, f"[{'^' if negated else ''}{body}]"
