"""JSON Schema compatibility: does a reader schema accept every value a writer schema accepts?

JSON Schema has no resolution rules of its own, so compatibility here means
what a consumer validating with the reader needs: every value valid under the
writer is valid under the reader. It is decided structurally, keyword by
keyword, for the keywords schemas commonly use; a finding names the place in
the reader schema (a JSON pointer) and what narrows there:

- `type`: the reader allows every type the writer allows (`number` covers
  `integer`); a reader with a type narrows a writer without one.
- `enum` and `const`: the reader allows every value the writer allows; an
  `enum` or `const` the writer lacks narrows.
- objects: a property the reader requires is required by the writer too (so a
  new required property breaks BACKWARD and a removed one FORWARD);
  properties both name are compared in turn; a property only the writer names
  must be allowed by the reader's `additionalProperties` (a closed reader,
  `false`, refuses it); a reader that closes its content model
  (`additionalProperties: false`) narrows an open writer, whose values may
  carry any other member, while opening a closed one is fine. A property only
  the reader names is accepted even when the writer is open: the writer's
  unnamed members are taken not to collide with a later schema's properties
  (otherwise adding an optional property could never be compatible).
- arrays: `items` compared; the reader's `minItems`/`maxItems` no tighter.
- strings: `minLength`/`maxLength` no tighter; a `pattern` or `format` the
  writer does not have (the same) narrows.
- numbers: `minimum`/`maximum` and their exclusive forms no tighter,
  `multipleOf` dividing the writer's.
- `anyOf`/`oneOf`: each writer branch accepted by some reader branch.
- any other keyword (`$ref`, `allOf`, `not`, conditionals, ...) must be the
  same on both sides, else it is reported as a change that was not compared.
- `true`/`{}` accepts everything; `false` accepts nothing.

Pure: documents in, findings out.
"""

from __future__ import annotations

from typing import Any

from gateway.schemas.findings import Finding, child

_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_HANDLED = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "anyOf",
        "oneOf",
    }
)
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
    }
)


def _types(schema: dict[str, Any]) -> set[str] | None:
    """The types a schema allows, or None for any."""
    if "type" in schema:
        declared = schema["type"]
        return {declared} if isinstance(declared, str) else set(declared)
    values = _values(schema)
    if values is not None:
        return {_type_of(v) for v in values}
    return None


def _values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _covers(reader: set[str], writer_type: str) -> bool:
    return writer_type in reader or (writer_type == "integer" and "number" in reader)


def _allows(reader: set[str] | None, kind: str, writer: set[str] | None) -> bool:
    """Whether values of `kind` can reach this check: the writer allows the kind."""
    return writer is None or kind in writer or (kind == "number" and "integer" in writer)


def reads(reader: Any, writer: Any) -> list[Finding]:
    """Why some value valid under the JSON Schema `writer` is invalid under `reader`."""
    return _reads(reader, writer, "")


def _reads(reader: Any, writer: Any, at: str) -> list[Finding]:
    if reader is True or reader == {} or writer is False:
        return []
    if reader is False:
        return [Finding(at, "the reader accepts nothing here")]
    if writer is True:
        writer = {}
    if not isinstance(reader, dict) or not isinstance(writer, dict):
        return [Finding(at, "not a schema")]
    if reader == writer:
        return []
    found: list[Finding] = []
    if "anyOf" in writer or "oneOf" in writer:
        return _writer_branches(reader, writer, at)
    if "anyOf" in reader or "oneOf" in reader:
        key = "anyOf" if "anyOf" in reader else "oneOf"
        rest = {k: v for k, v in reader.items() if k != key}
        if not any(not _reads(b, writer, child(at, key, i)) for i, b in enumerate(reader[key])):
            found.append(Finding(child(at, key), "no branch accepts every value the writer allows"))
        reader = rest
    found += _other_keywords(reader, writer, at)
    rtypes, wtypes = _types(reader), _types(writer)
    if rtypes is not None:
        if wtypes is None:
            found.append(Finding(child(at, "type"), f"type narrowed to {sorted(rtypes)} from any"))
        else:
            lost = sorted(t for t in wtypes if not _covers(rtypes, t))
            if lost:
                found.append(Finding(child(at, "type"), f"type narrowed: {lost} no longer allowed"))
    found += _enum(reader, writer, at)
    if _allows(rtypes, "object", wtypes):
        found += _object(reader, writer, at)
    if _allows(rtypes, "array", wtypes):
        found += _array(reader, writer, at)
    if _allows(rtypes, "string", wtypes):
        found += _bounds(reader, writer, at, "minLength", "maxLength")
        for key in ("pattern", "format"):
            if key in reader and reader.get(key) != writer.get(key):
                found.append(Finding(child(at, key), f"{key} {reader[key]!r} added or changed"))
    if _allows(rtypes, "number", wtypes):
        found += _numbers(reader, writer, at)
    return found


def _writer_branches(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    key = "anyOf" if "anyOf" in writer else "oneOf"
    rest = {k: v for k, v in writer.items() if k != key}
    found: list[Finding] = []
    for i, branch in enumerate(writer[key]):
        merged = branch if not rest else {**rest, **branch} if isinstance(branch, dict) else branch
        for f in _reads(reader, merged, at):
            found.append(Finding(f.pointer, f"for the writer's {key} branch {i}: {f.message}"))
    return found


def _other_keywords(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    found = []
    for key in sorted(set(reader) | set(writer)):
        if key in _HANDLED or key in _ANNOTATIONS:
            continue
        if reader.get(key) != writer.get(key) and key in reader:
            found.append(
                Finding(child(at, key), f"{key} changed; it is not compared, so it counts")
            )
    return found


def _enum(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    allowed = _values(reader)
    if allowed is None:
        return []
    key = "const" if "const" in reader else "enum"
    given = _values(writer)
    if given is None:
        return [Finding(child(at, key), f"{key} added: the writer allows any value")]
    missing = [v for v in given if v not in allowed]
    if missing:
        return [Finding(child(at, key), f"{key} narrowed: {missing} no longer allowed")]
    return []


def _closed(schema: dict[str, Any]) -> bool:
    return schema.get("additionalProperties") is False


def _object(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    found: list[Finding] = []
    required_by_writer = set(writer.get("required", ()))
    for name in reader.get("required", ()):
        if name not in required_by_writer:
            found.append(
                Finding(
                    child(at, "required"),
                    f"property {name!r} is required by the reader, not by the writer",
                )
            )
    rprops: dict[str, Any] = reader.get("properties", {})
    wprops: dict[str, Any] = writer.get("properties", {})
    extra = reader.get("additionalProperties", True)
    for name, wschema in wprops.items():
        if name in rprops:
            found += _reads(rprops[name], wschema, child(at, "properties", name))
        elif extra is False:
            found.append(
                Finding(
                    child(at, "additionalProperties"),
                    f"property {name!r} of the writer is refused by the closed reader",
                )
            )
        elif extra is not True:
            found += _reads(extra, wschema, child(at, "additionalProperties"))
    wextra = writer.get("additionalProperties", True)
    if _closed(reader) and wextra is not False:
        found.append(
            Finding(
                child(at, "additionalProperties"),
                "content model closed: the writer allows properties the reader refuses",
            )
        )
    elif extra not in (True, False) and wextra is not False:
        found += _reads(
            extra, True if wextra is True else wextra, child(at, "additionalProperties")
        )
    return found


def _array(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    found = _bounds(reader, writer, at, "minItems", "maxItems")
    if "items" in reader:
        found += _reads(reader["items"], writer.get("items", True), child(at, "items"))
    return found


def _bounds(
    reader: dict[str, Any], writer: dict[str, Any], at: str, low: str, high: str
) -> list[Finding]:
    found = []
    if low in reader and reader[low] > writer.get(low, 0):
        found.append(Finding(child(at, low), f"{low} raised to {reader[low]}"))
    if high in reader and (high not in writer or reader[high] < writer[high]):
        found.append(Finding(child(at, high), f"{high} lowered to {reader[high]}"))
    return found


def _numbers(reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
    found = []
    for key, lower in (
        ("minimum", True),
        ("exclusiveMinimum", True),
        ("maximum", False),
        ("exclusiveMaximum", False),
    ):
        if key not in reader or isinstance(reader[key], bool):
            continue  # draft 4's boolean exclusive bounds are not compared
        mine, theirs = reader[key], writer.get(key)
        if (
            theirs is None
            or isinstance(theirs, bool)
            or (mine > theirs if lower else mine < theirs)
        ):
            found.append(Finding(child(at, key), f"{key} tightened to {reader[key]}"))
    if "multipleOf" in reader:
        w = writer.get("multipleOf")
        if w is None or (w / reader["multipleOf"]) % 1 != 0:
            found.append(
                Finding(
                    child(at, "multipleOf"), f"multipleOf {reader['multipleOf']} added or changed"
                )
            )
    return found
