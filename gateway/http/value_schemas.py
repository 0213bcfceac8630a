"""What produce needs of the schema registry: a topic's bound schema, compiled, by version.

The produce path (`records`) and the registry (`schemas`) are separate
features, so this seam sits on the floor they share: the registry implements
`ValueSchemas` (gateway/schemas/binding.py), the lifespan puts it in the
`Runtime`, and produce asks it, per request, for the version its records must
match (so a schema registered a moment ago applies to the next request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SCHEMA_ID_HEADER = "tidegate-schema-id"
"""The reserved record header that carries, on a schema-bound topic, the id of the
schema the record's value was validated against (decimal ASCII)."""

SCHEMA_VERSION_HEADER = "tidegate-schema-version"
"""The request header that pins a produce to one version of the bound subject."""


class ValueCheck(Protocol):
    """A schema's fast check (`schemas.fast_types.ValueCheck`): the description the C
    scanner compiles (`_speedups.compile_schema`), compared and hashed by identity."""

    @property
    def root(self) -> object: ...

    def __hash__(self) -> int: ...


class ValueSchema(Protocol):
    """One version of a subject, compiled: what a record value is checked against."""

    @property
    def schema_id(self) -> int: ...

    @property
    def version(self) -> int: ...

    @property
    def value_check(self) -> ValueCheck | None:
        """A check the C scanner runs on each value (`schemas.fast_types.ValueCheck`),
        accepting only values valid under this schema (a fast way to accept; a value it
        refuses may still be valid), or None."""
        ...

    def is_valid(self, value: Any) -> bool: ...

    def violations(self, value: Any, *, limit: int) -> Sequence[tuple[str, str]]:
        """Up to `limit` (JSON pointer into the value, message) pairs; empty if valid."""
        ...


class ValueSchemas(Protocol):
    async def bound(self, namespace: str, subject: str, version: int | None) -> ValueSchema:
        """The subject's version (None: the latest live one), compiled; raises the
        store's SubjectNotFound or VersionNotFound."""
        ...
