"""The schema registry's storage seam: subjects, numbered versions, ids, compatibility config.

Everything is kept per namespace (a tenant's immutable id), so one tenant's
subjects, ids and config are invisible to every other. A subject holds
immutable versions numbered 1, 2, ... in registration order; each version
points at a schema by id. Ids are unique within a namespace and shared: the
same schema (same type, same canonical text) registered under two subjects
has one id, as in Confluent Schema Registry. Deleting is in two steps: a soft
delete hides a version (or every version of a subject) from ordinary reads,
and only a soft-deleted version can then be deleted permanently.

The store knows nothing of schema formats: the caller passes the schema's
canonical text (its normalised form) beside the text as given, and the store
compares canonical texts byte for byte. Compatibility is decided above; the
store only makes a registration conditional on the subject's latest version
being the one that was checked (`expect_latest`), so two racing
registrations cannot both pass a check against the same predecessor. That
shape suits one process (a lock) and a shared Redis (a script) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_COMPATIBILITY = "BACKWARD"


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """A schema as registered: its id, its type (`JSON`, `AVRO`), the text as given."""

    schema_id: int
    schema_type: str
    schema: str


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """One version of a subject and the schema it holds."""

    subject: str
    version: int
    schema_id: int
    schema_type: str
    schema: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration did: the id and version, and whether it added a version
    (False when the subject already held the same canonical schema)."""

    schema_id: int
    version: int
    created: bool


class SchemaStore(Protocol):
    """Durable schema registry state, namespaced by tenant id."""

    async def register(
        self,
        namespace: str,
        subject: str,
        schema_type: str,
        schema: str,
        canonical: str,
        *,
        expect_latest: int | None,
    ) -> Registration:
        """Add `schema` as the subject's next version, or answer the live version
        that already holds `canonical` (of `schema_type`) with `created` False.

        The schema gets the id a schema of the same type and canonical text already
        has in the namespace, else the next id. `expect_latest` is the latest live
        version the caller checked compatibility against (None for a subject with no
        live version); if the subject's latest live version is another, nothing is
        stored and SubjectChanged is raised. Version numbers are never reused while
        a version (live or soft-deleted) holds them."""
        ...

    async def lookup(
        self, namespace: str, subject: str, schema_type: str, canonical: str
    ) -> SubjectVersion | None:
        """The live version of `subject` holding that canonical schema, or None."""
        ...

    async def versions(
        self, namespace: str, subject: str, *, include_deleted: bool = False
    ) -> list[SubjectVersion]:
        """The subject's versions, oldest first; raises SubjectNotFound when it has none
        (none live, unless `include_deleted`)."""
        ...

    async def version(
        self, namespace: str, subject: str, version: int | None, *, include_deleted: bool = False
    ) -> SubjectVersion:
        """One version (None: the latest live one); raises SubjectNotFound or
        VersionNotFound. A soft-deleted version is found only with `include_deleted`."""
        ...

    async def schema(self, namespace: str, schema_id: int) -> StoredSchema:
        """The schema with that id; raises SchemaNotFound. A schema stays readable by
        id while any version (live or soft-deleted) holds it."""
        ...

    async def subjects(self, namespace: str, *, include_deleted: bool = False) -> list[str]:
        """Subjects with a live version (or any version, with `include_deleted`), sorted."""
        ...

    async def delete_version(
        self, namespace: str, subject: str, version: int, *, permanent: bool
    ) -> int:
        """Soft delete a live version, or permanently delete a soft-deleted one; returns
        the version. Raises SubjectNotFound, VersionNotFound, VersionSoftDeleted (a
        soft delete of a soft-deleted version) or VersionNotSoftDeleted (a permanent
        delete of a live one)."""
        ...

    async def delete_subject(self, namespace: str, subject: str, *, permanent: bool) -> list[int]:
        """Soft delete every live version of the subject, or permanently delete a
        subject whose versions are all soft-deleted (its config goes too); returns the
        versions deleted. Raises SubjectNotFound, SubjectSoftDeleted (a soft delete of
        a subject with no live version) or SubjectNotSoftDeleted (a permanent delete
        while a version is live)."""
        ...

    async def compatibility(self, namespace: str, subject: str | None) -> str | None:
        """The level set for `subject` (None: the namespace's default), or None when
        none is set."""
        ...

    async def set_compatibility(self, namespace: str, subject: str | None, level: str) -> None:
        """Set the subject's level (None: the namespace's default); one of
        COMPATIBILITY_LEVELS, else InvalidCompatibility."""
        ...

    async def delete_compatibility(self, namespace: str, subject: str | None) -> str | None:
        """Remove the level set for `subject` (None: the default); returns what it was."""
        ...

    async def purge(self, namespace: str) -> int:
        """Remove every subject, schema and config of the namespace (a deleted
        tenant's); returns how many versions went."""
        ...

    async def namespaces(self) -> list[str]:
        """Every namespace that holds anything (for purging deleted tenants)."""
        ...

    async def changes(self) -> int:
        """A count that moves (only ever grows) with every write to the store; reads
        may be cached under it and read again once it has moved. A change is counted
        before the call that made it returns, so a reader that checks it sees every
        change that returned before. Cheap: per produce of a schema-bound topic."""
        ...

    async def close(self) -> None: ...
