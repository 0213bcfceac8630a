"""Avro schema resolution: can a reader schema read what a writer schema wrote?

The rules of the Avro specification's "Schema Resolution":
- the same primitive reads itself; `int` is promoted to `long`, `float`,
  `double`; `long` to `float`, `double`; `float` to `double`; `string` and
  `bytes` read each other;
- a record reads a record of the same full name (or one its `aliases` name):
  each reader field takes the writer field of its name or of one of its
  aliases, and a reader field that the writer lacks needs a `default`; writer
  fields the reader lacks are skipped;
- an enum reads an enum of the same name whose every symbol it has, or any,
  when it declares a `default` symbol;
- a fixed reads a fixed of the same name and size; arrays and maps read
  arrays and maps whose items and values they read;
- a writer union is read when the reader reads each of its branches; a
  reader union reads a writer when one of its branches does.

Every finding names the place in the reader schema as a JSON pointer. Pure:
documents in, findings out.
"""

from __future__ import annotations

from typing import Any

from gateway.schemas.findings import Finding, child
from gateway.schemas.formats import parsed_avro

PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"int", "long", "float", "double"}),
    "long": frozenset({"long", "float", "double"}),
    "float": frozenset({"float", "double"}),
    "double": frozenset({"double"}),
    "string": frozenset({"string", "bytes"}),
    "bytes": frozenset({"bytes", "string"}),
    "null": frozenset({"null"}),
    "boolean": frozenset({"boolean"}),
}
"""Writer primitive -> the reader primitives that read it."""

NAMED = ("record", "error", "enum", "fixed")


def _collect_names(schema: Any, names: dict[str, dict[str, Any]]) -> None:
    if isinstance(schema, list):
        for s in schema:
            _collect_names(s, names)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED:
            names[schema["name"]] = schema
        if kind in ("record", "error"):
            for f in schema["fields"]:
                _collect_names(f["type"], names)
        elif kind == "array":
            _collect_names(schema["items"], names)
        elif kind == "map":
            _collect_names(schema["values"], names)
        elif isinstance(kind, dict | list):
            _collect_names(kind, names)


class _Resolver:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names: dict[str, dict[str, Any]] = {}
        self.writer_names: dict[str, dict[str, Any]] = {}
        _collect_names(reader, self.reader_names)
        _collect_names(writer, self.writer_names)
        self.seen: set[tuple[str, str]] = set()

    @staticmethod
    def _resolve(schema: Any, names: dict[str, dict[str, Any]]) -> Any:
        while True:
            if isinstance(schema, str) and schema in names:
                return names[schema]
            if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
                schema = schema["type"]
                continue
            if isinstance(schema, dict) and schema.get("type") in PROMOTIONS:
                return schema["type"]  # {"type": "long", "logicalType": ...} reads as long
            return schema

    @staticmethod
    def kind(schema: Any) -> str:
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return "union"
        return str(schema["type"])

    def reads(self, reader: Any, writer: Any, at: str) -> list[Finding]:
        reader = self._resolve(reader, self.reader_names)
        writer = self._resolve(writer, self.writer_names)
        rk, wk = self.kind(reader), self.kind(writer)
        if wk == "union":
            found: list[Finding] = []
            for i, branch in enumerate(writer):
                if self._readable(reader, branch, at):
                    continue
                found.append(
                    Finding(
                        at,
                        f"the writer's union branch {i} ({self.describe(branch)}) "
                        f"is not readable as {self.describe(reader)}",
                    )
                )
            return found
        if rk == "union":
            if any(not self.reads(b, writer, child(at, i)) for i, b in enumerate(reader)):
                return []
            return [Finding(at, f"no branch of the reader's union reads {self.describe(writer)}")]
        if wk in PROMOTIONS:
            if rk in PROMOTIONS[wk]:
                return []
            return [Finding(at, f"{self.describe(reader)} cannot read {wk}")]
        if rk != wk and not (rk in ("record", "error") and wk in ("record", "error")):
            return [Finding(at, f"{self.describe(reader)} cannot read {self.describe(writer)}")]
        if rk == "array":
            return self.reads(reader["items"], writer["items"], child(at, "items"))
        if rk == "map":
            return self.reads(reader["values"], writer["values"], child(at, "values"))
        named = self._names_match(reader, writer, at)
        if named:
            return named
        if rk == "fixed":
            if reader["size"] != writer["size"]:
                message = f"fixed size {reader['size']} cannot read size {writer['size']}"
                return [Finding(child(at, "size"), message)]
            return []
        if rk == "enum":
            return self._enum(reader, writer, at)
        return self._record(reader, writer, at)

    def _readable(self, reader: Any, writer: Any, at: str) -> bool:
        return not self.reads(reader, writer, at)

    @staticmethod
    def _aliases(schema: dict[str, Any]) -> set[str]:
        namespace = schema["name"].rpartition(".")[0]
        out = set()
        for alias in schema.get("aliases", ()):
            out.add(alias if "." in alias or not namespace else f"{namespace}.{alias}")
        return out

    def _names_match(
        self, reader: dict[str, Any], writer: dict[str, Any], at: str
    ) -> list[Finding]:
        rname, wname = reader["name"], writer["name"]
        if rname == wname or wname in self._aliases(reader):
            return []
        return [
            Finding(
                child(at, "name"),
                f"{self.kind(reader)} {rname!r} cannot read {wname!r} "
                "(the names differ and no alias names the writer's)",
            )
        ]

    def _enum(self, reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if not missing or "default" in reader:
            return []
        return [
            Finding(
                child(at, "symbols"),
                f"enum {reader['name']!r} lacks the writer's symbols {missing} and has no default",
            )
        ]

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], at: str) -> list[Finding]:
        pair = (reader["name"], writer["name"])
        if pair in self.seen:  # a recursive type: assumed to read itself
            return []
        self.seen.add(pair)
        by_name = {f["name"]: f for f in writer["fields"]}
        found: list[Finding] = []
        for i, field in enumerate(reader["fields"]):
            at_field = child(at, "fields", i)
            names = [field["name"], *field.get("aliases", ())]
            source = next((by_name[n] for n in names if n in by_name), None)
            if source is None:
                if "default" not in field:
                    found.append(
                        Finding(
                            at_field, f"field {field['name']!r} is not written and has no default"
                        )
                    )
                continue
            found += self.reads(field["type"], source["type"], child(at_field, "type"))
        self.seen.discard(pair)
        return found

    def describe(self, schema: Any) -> str:
        kind = self.kind(schema)
        if isinstance(schema, dict) and kind in NAMED:
            return f"{kind} {schema['name']!r}"
        return kind


def reads(reader: Any, writer: Any) -> list[Finding]:
    """Why data written with the Avro schema `writer` cannot be read with `reader`."""
    parsed_reader, parsed_writer = parsed_avro(reader), parsed_avro(writer)
    return _Resolver(parsed_reader, parsed_writer).reads(parsed_reader, parsed_writer, "")
