"""The registry's operations over a SchemaStore, shared by the native and the Confluent API.

Both APIs are thin shapes around these: a registration is read and checked
(`formats`), answered with the existing version when the subject already holds
the same canonical schema, checked against the subject's compatibility mode
(`compatibility`) and then stored on the condition that the latest version is
still the one it was checked against; if another registration came first, the
check runs again (a bounded number of times). Everything is per namespace, the
caller's tenant id: no operation can name another tenant's subjects or ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.schemas.compatibility import Incompatibility, incompatibilities
from gateway.schemas.formats import ParsedSchema, SchemaType, parse_schema
from gateway.schemas.validators import ValueValidator, cached_validator, stored_validator
from storage.errors import SubjectChanged, SubjectNotFound, VersionNotFound
from storage.schemas import DEFAULT_COMPATIBILITY, SchemaStore, SubjectVersion

REGISTER_ATTEMPTS = 8
"""Registrations of one subject racing this one that it re-checks against before
it gives up (a 409 that says so): far more than real clients produce."""

MAX_SUBJECT_CHARS = 255


class SchemaIncompatible(Exception):
    """A schema breaks its subject's compatibility mode; every reason listed."""

    def __init__(self, subject: str, mode: str, found: Sequence[Incompatibility]) -> None:
        super().__init__(f"the schema is incompatible with subject {subject!r} under {mode}")
        self.subject = subject
        self.mode = mode
        self.found = list(found)


class InvalidSubject(ValueError):
    """A subject name the registry does not take."""


@dataclass(frozen=True, slots=True)
class Registered:
    schema_id: int
    version: int
    created: bool


def checked_subject(subject: str) -> str:
    """1 to 255 characters, none a control character."""
    if not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidSubject(f"a subject name has 1 to {MAX_SUBJECT_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject):
        raise InvalidSubject("a subject name has no control characters")
    return subject


def schema_text(schema: Any) -> str:
    """A schema sent as a JSON value or as a string holding one, as the text to store."""
    if isinstance(schema, str):
        return schema
    return orjson.dumps(schema).decode()


def document_of(version: SubjectVersion) -> Any:
    return orjson.loads(version.schema)


class Registry:
    """The schema registry of one process (its state is the store's)."""

    def __init__(self, store: SchemaStore) -> None:
        self.store = store

    async def level(self, namespace: str, subject: str | None) -> str:
        """The subject's compatibility mode: its own, else the tenant's default, else BACKWARD."""
        if subject is not None:
            own = await self.store.compatibility(namespace, subject)
            if own is not None:
                return own
        default = await self.store.compatibility(namespace, None)
        return default if default is not None else DEFAULT_COMPATIBILITY

    async def live_versions(self, namespace: str, subject: str) -> list[SubjectVersion]:
        try:
            return await self.store.versions(namespace, subject)
        except SubjectNotFound:
            return []

    async def check(
        self,
        namespace: str,
        subject: str,
        parsed: ParsedSchema,
        *,
        against: Sequence[SubjectVersion] | None = None,
        mode: str | None = None,
    ) -> tuple[str, list[Incompatibility], int | None]:
        """(mode, what breaks it, the latest live version checked): `parsed` against the
        subject's live versions under its mode, or against `against` only."""
        mode = mode or await self.level(namespace, subject)
        history = await self.live_versions(namespace, subject) if against is None else against
        latest = history[-1].version if history and against is None else None
        existing = [(v.version, SchemaType(v.schema_type), document_of(v)) for v in history]
        found = incompatibilities(mode, parsed.schema_type, parsed.document, existing)
        return mode, found, latest

    async def register(
        self, namespace: str, subject: str, schema_type: SchemaType, text: str
    ) -> Registered:
        """Register `text` under `subject`; raises InvalidSchema, SchemaIncompatible."""
        parsed = parse_schema(schema_type, text)
        for _ in range(REGISTER_ATTEMPTS):
            held = await self.store.lookup(namespace, subject, schema_type, parsed.canonical)
            if held is not None:
                return Registered(held.schema_id, held.version, created=False)
            mode, found, latest = await self.check(namespace, subject, parsed)
            if found:
                raise SchemaIncompatible(subject, mode, found)
            try:
                done = await self.store.register(
                    namespace, subject, schema_type, text, parsed.canonical, expect_latest=latest
                )
            except SubjectChanged:
                continue
            cached_validator(schema_type, parsed.canonical)  # compiled now, not by a produce
            return Registered(done.schema_id, done.version, done.created)
        raise SchemaIncompatible(subject, "a registration race", [])

    async def lookup(
        self, namespace: str, subject: str, schema_type: SchemaType, text: str
    ) -> SubjectVersion:
        """The live version of `subject` holding this schema; raises SubjectNotFound
        when the subject has no live version, VersionNotFound when none holds it."""
        parsed = parse_schema(schema_type, text)
        held = await self.store.lookup(namespace, subject, schema_type, parsed.canonical)
        if held is not None:
            return held
        await self.store.versions(namespace, subject)  # SubjectNotFound if none is live
        raise VersionNotFound(subject, None)

    async def validator(
        self, namespace: str, subject: str, version: int | None
    ) -> tuple[SubjectVersion, ValueValidator]:
        """The version records must match (None: the latest) and its compiled validator."""
        held = await self.store.version(namespace, subject, version)
        return held, stored_validator(SchemaType(held.schema_type), held.schema)
