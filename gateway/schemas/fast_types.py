"""A JSON Schema as a check the C scanner runs on each value while it reads the body.

Produce checks a batch's values on the way in. The reference check
(`validators.ValueValidator`, jsonschema-rs) needs every value as Python
objects first, and parsing them costs as much as validating them. The C
scanner (`gateway/records/_speedups.c`) already reads every value of the body
to pack it; given a compiled check it also tests each value's types, required
and unknown members, enums, lengths, bounds and patterns as it goes, with no
Python object per JSON value (a pattern runs as an automaton, `automata`, or,
past what that reads, as Python's `re` on the string).
A batch whose values all pass is valid. So the check is a fast way to accept,
and nothing more: a value it refuses, or a schema it cannot express, goes to
the reference, which decides and writes the errors.

`value_check` translates only what the check decides exactly as JSON Schema
does; any other keyword anywhere in the schema makes it answer None (no fast
way for that schema). Where the check is stricter (an integer written as `1.0`,
an enum's `1` given as `1.0`, a repeated member both copies of which must
hold, integers past 18 digits) it only sends more values to the reference.
Patterns are rewritten from a small subset of regular expressions whose
meaning Python's `re` and the reference's engine share (`python_pattern`). A
property test holds the check to the reference: it never accepts a value the
reference refuses (tests/gateway/records/test_speedups.py). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.schemas.automata import automaton

EXACT_FLOAT = 2**53
"""Past this a JSON integer may round on its way to a double; bounds that large on a
number (or an exclusive one on an integer) are left to the reference."""

INT64 = (-(2**63), 2**63 - 1)

MAX_NODES = 1000
"""Nodes of one compiled check (the C compiles at most 1024); a larger schema has none."""

MAX_REQUIRED = 64
"""Required members of one object the check tracks (a bit each)."""

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

# The JSON kinds a node takes (the C's K_* bits).
NULL, BOOLEAN, INTEGER, NUMBER, STRING, ARRAY, OBJECT, ANYTHING = (1 << i for i in range(8))
_KIND_BITS = {
    "null": NULL,
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "number": NUMBER,
    "string": STRING,
    "array": ARRAY,
    "object": OBJECT,
}
# The fields that belong to each kind, for joining the members of a union.
_KIND_FIELDS = {
    INTEGER: ("int_min", "int_max", "int_step", "ints"),
    NUMBER: ("bounds",),
    STRING: ("str_min", "str_max", "pattern", "strs", "automaton"),
    ARRAY: ("items", "items_min", "items_max"),
    OBJECT: ("props", "closed", "extra"),
}

Bounds = tuple[float | None, float | None, float | None, float | None]
"""A number's bounds: minimum, exclusiveMinimum, maximum, exclusiveMaximum."""


class Node(NamedTuple):
    """One schema, for the C (`compile_schema` reads these 17 fields in this order): the
    kinds of JSON value it takes, and for each kind what the value must hold."""

    kinds: int
    int_min: int = INT64[0]
    int_max: int = INT64[1]
    int_step: int = 0  # multipleOf; 0: none
    ints: tuple[int, ...] | None = None  # an enum's integers
    bounds: Bounds = (None, None, None, None)
    str_min: int = 0  # code points
    str_max: int = -1  # -1: none
    pattern: Callable[[str], object] | None = None  # `re.Pattern.search`
    strs: tuple[bytes, ...] | None = None  # an enum's strings, in UTF-8
    items: Node | None = None  # None: anything
    items_min: int = 0
    items_max: int = -1
    props: tuple[tuple[bytes, Node, bool], ...] | None = None  # (name, schema, required)
    closed: bool = False  # additionalProperties false
    extra: Node | None = None  # additionalProperties as a schema (and no properties)
    automaton: tuple[bytes, bytes] | None = None  # the pattern's DFA, then no `pattern`


ANY = Node(ANYTHING)


class ValueCheck:
    """A schema's check: its root node, compared and hashed by identity (the C's
    compiled form is cached per check)."""

    __slots__ = ("root",)

    def __init__(self, root: Node) -> None:
        self.root = root


class Untranslatable(Exception):
    """The schema uses something the check does not express exactly."""


def value_check(document: Any) -> ValueCheck | None:
    """The check accepting only values valid under the JSON Schema `document` (draft 7
    or 2020-12, already checked as valid), or None when there is none."""
    try:
        if isinstance(document, dict):
            if "$id" in document and not isinstance(document["$id"], str):
                raise Untranslatable("$id")
            root = {k: v for k, v in document.items() if k not in ("$schema", "$id")}
        else:
            root = document
        translator = _Translator(document)
        node = translator.node(root)
    except (Untranslatable, TypeError, ValueError, OverflowError, RecursionError):
        return None
    return ValueCheck(node)


class _Translator:
    def __init__(self, document: Any) -> None:
        self._document = document
        self._defs: dict[str, Node] = {}
        self._open: set[str] = set()
        self._nodes = 0

    def node(self, schema: Any) -> Node:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise Untranslatable("too many nodes")
        if schema is True:
            return ANY
        if not isinstance(schema, dict):
            raise Untranslatable("a false or unknown schema")
        keys = set(schema) - ANNOTATIONS - {"$defs", "definitions"}
        if not keys:
            return ANY
        if "$ref" in schema:
            if keys != {"$ref"}:
                raise Untranslatable("$ref beside other keywords")
            return self._ref(schema["$ref"])
        if keys <= {"anyOf"}:
            if not isinstance(schema["anyOf"], list) or not schema["anyOf"]:
                raise Untranslatable("an empty anyOf")
            return _union([self.node(s) for s in schema["anyOf"]])
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
        return _union([self._typed(kind, schema) for kind in kinds])

    def _ref(self, ref: Any) -> Node:
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

    def _literal(self, schema: dict[str, Any], keys: set[str]) -> Node:
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
        strs = tuple(dict.fromkeys(v.encode() for v in values if isinstance(v, str)))
        ints = tuple(dict.fromkeys(v for v in values if isinstance(v, int)))
        if any(not INT64[0] <= v <= INT64[1] for v in ints):
            raise Untranslatable("an enum's integer past 64 bits")
        bits = (NULL if None in values else 0) | (STRING if strs else 0) | (INTEGER if ints else 0)
        return Node(bits, ints=ints or None, strs=strs or None)

    def _typed(self, kind: str, schema: dict[str, Any]) -> Node:
        if kind == "string":
            pattern, dfa = None, None
            if "pattern" in schema:
                text = python_pattern(schema["pattern"])
                dfa = automaton(text)
                pattern = re.compile(text).search if dfa is None else None
            return Node(
                STRING,
                str_min=int(schema.get("minLength", 0)),
                str_max=int(schema.get("maxLength", -1)),
                pattern=pattern,
                automaton=dfa,
            )
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return Node(BOOLEAN)
        if kind == "null":
            return Node(NULL)
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            if schema.get("uniqueItems", False) is not False:
                raise Untranslatable("uniqueItems")
            items = schema.get("items", True)
            if isinstance(items, list):
                raise Untranslatable("items as a list (draft 7 tuples)")
            return Node(
                ARRAY,
                items=self.node(items),
                items_min=int(schema.get("minItems", 0)),
                items_max=int(schema.get("maxItems", -1)),
            )
        raise Untranslatable(f"type {kind!r}")

    def _object(self, schema: dict[str, Any]) -> Node:
        properties: dict[str, Any] = schema.get("properties", {})
        required: list[str] = list(schema.get("required", []))
        extra = schema.get("additionalProperties", True)
        if extra is not True and extra is not False:
            if properties or required:
                raise Untranslatable("additionalProperties as a schema beside properties")
            return Node(OBJECT, extra=self.node(extra))
        if extra is False and any(name not in properties for name in required):
            raise Untranslatable("a required member that additionalProperties forbids")
        wanted = set(required)
        if len(wanted) > MAX_REQUIRED:
            raise Untranslatable("more required members than the check tracks")
        names = list(properties) + [n for n in dict.fromkeys(required) if n not in properties]
        props = tuple(
            (
                name.encode(),  # a lone surrogate: UnicodeEncodeError, a ValueError
                self.node(properties[name]) if name in properties else ANY,
                name in wanted,
            )
            for name in names
        )
        return Node(OBJECT, props=props, closed=extra is False)


def _union(members: list[Node]) -> Node:
    """One node taking what any of `members` takes; each JSON kind from one member
    only (two members of a kind would need a value tried against both)."""
    if any(m.kinds & ANYTHING for m in members):
        return ANY
    if len(members) == 1:
        return members[0]
    kinds = 0
    fields: dict[str, Any] = {}
    for member in members:
        if kinds & member.kinds:
            raise Untranslatable("two members of one JSON kind")
        kinds |= member.kinds
        for bit, names in _KIND_FIELDS.items():
            if member.kinds & bit:
                fields |= {name: getattr(member, name) for name in names}
    return Node(kinds, **fields)


def _bounds(schema: dict[str, Any]) -> None:
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(keyword, 0)
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise Untranslatable(f"{keyword} other than a number")


def _integer(schema: dict[str, Any]) -> Node:
    _bounds(schema)
    # Always within 64 bits: past them the reference reads the text as a double (orjson),
    # which it may judge otherwise (the C takes no integer past 18 digits anyway).
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
    step = 0
    if "multipleOf" in schema:
        step = schema["multipleOf"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 < step <= INT64[1]:
            raise Untranslatable("multipleOf other than a whole number")
    return Node(INTEGER, int_min=low, int_max=high, int_step=step)


def _number(schema: dict[str, Any]) -> Node:
    _bounds(schema)
    bounds: list[float | None] = []
    for keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = schema.get(keyword)
        if bound is not None and abs(bound) >= EXACT_FLOAT:
            raise Untranslatable(f"{keyword} past exact doubles")
        bounds.append(None if bound is None else float(bound))
    ge, gt, le, lt = bounds
    return Node(NUMBER, bounds=(ge, gt, le, lt))


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
