"""Record values checked against a schema: compiled once, reused by every request.

Both formats run in jsonschema-rs (measured against fastjsonschema on a
15-field schema: docs/benchmarks.md); an Avro schema is first translated into
the equivalent JSON Schema (`avro_json`). A compiled validator is cached by
the schema's type and canonical text, which are the same for every tenant and
subject that holds the schema, so a registration compiles once per process and
a produce only looks it up. `violations` answers at once for a valid value
(`is_valid`) and walks the errors only for a bad one.

Each also holds, when the schema has one, its `value_check` (`fast_types`): a
check the C scanner runs on each value as it reads the body, which lets produce
accept a batch straight from its JSON text; the validator here decides
everything else.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.schemas.avro_json import avro_as_json_schema
from gateway.schemas.fast_types import ValueCheck, value_check
from gateway.schemas.formats import (
    DRAFT_2020_12,
    SchemaType,
    canonical_text,
    json_draft,
    json_validator,
)

CACHED_VALIDATORS = 1024
"""Compiled validators kept per process (an LRU): each holds one schema's compiled
form, some kilobytes for a schema of tens of fields."""


@dataclass(frozen=True, slots=True)
class Violation:
    """Where a value breaks its schema (a JSON pointer into the value) and how."""

    pointer: str
    message: str


def pointer(path: Any) -> str:
    """A JSON pointer (RFC 6901) for a sequence of keys and indexes."""
    if not path:
        return ""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


class ValueValidator:
    """One schema, compiled, with its fast check (None if it has none)."""

    __slots__ = ("_compiled", "value_check")

    def __init__(self, compiled: Any, check: ValueCheck | None = None) -> None:
        self._compiled = compiled
        self.value_check = check

    def is_valid(self, value: Any) -> bool:
        return bool(self._compiled.is_valid(value))

    def violations(self, value: Any, *, limit: int) -> list[Violation]:
        """Up to `limit` violations of `value`; empty when it is valid."""
        if self._compiled.is_valid(value):
            return []
        found: list[Violation] = []
        for error in self._compiled.iter_errors(value):
            found.append(Violation(pointer(error.instance_path), str(error.message)))
            if len(found) >= limit:
                break
        return found


def compile_validator(schema_type: SchemaType, document: Any) -> ValueValidator:
    """A validator for a checked schema document."""
    if schema_type is SchemaType.AVRO:
        translated = avro_as_json_schema(document)
        return ValueValidator(json_validator(translated, DRAFT_2020_12), value_check(translated))
    return ValueValidator(json_validator(document, json_draft(document)), value_check(document))


@functools.lru_cache(maxsize=CACHED_VALIDATORS)
def cached_validator(schema_type: SchemaType, canonical: str) -> ValueValidator:
    """The compiled validator of a registered schema, by its canonical text."""
    return compile_validator(schema_type, orjson.loads(canonical))


@functools.lru_cache(maxsize=CACHED_VALIDATORS)
def stored_validator(schema_type: SchemaType, text: str) -> ValueValidator:
    """The compiled validator of a stored schema's text (as registered): what a
    produce looks up, so that it neither parses nor compiles the schema again."""
    return cached_validator(schema_type, canonical_text(orjson.loads(text)))
