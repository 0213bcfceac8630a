"""What every SchemaStore promises, run against each engine through open_backend."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import (
    InvalidCompatibility,
    SchemaNotFound,
    SubjectChanged,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from storage.open import Backend, StorageConfig, open_backend
from storage.schemas import SchemaStore

pytestmark = pytest.mark.anyio

NS = "t-1"
OTHER = "t-2"


async def _register(
    store: SchemaStore, subject: str, text: str, *, ns: str = NS, kind: str = "JSON"
) -> tuple[int, int, bool]:
    latest = None
    try:
        latest = (await store.version(ns, subject, None)).version
    except (SubjectNotFound, VersionNotFound):
        latest = None
    r = await store.register(ns, subject, kind, text, text.replace(" ", ""), expect_latest=latest)
    return r.schema_id, r.version, r.created


async def test_versions_are_numbered_and_ids_shared_within_a_namespace(backend: Backend) -> None:
    store = backend.schemas
    assert await _register(store, "a", '{"type": "string"}') == (1, 1, True)
    assert await _register(store, "a", '{"type": "integer"}') == (2, 2, True)
    # The same canonical schema under another subject has the same id.
    assert await _register(store, "b", '{"type":"string"}') == (1, 1, True)
    # Registering what the subject holds again adds nothing.
    assert await _register(store, "a", '{ "type" : "string" }') == (1, 1, False)
    assert [v.version for v in await store.versions(NS, "a")] == [1, 2]
    latest = await store.version(NS, "a", None)
    assert (latest.version, latest.schema_id, latest.schema) == (2, 2, '{"type": "integer"}')
    assert (await store.schema(NS, 1)).schema == '{"type": "string"}'
    assert await store.subjects(NS) == ["a", "b"]
    found = await store.lookup(NS, "a", "JSON", '{"type":"integer"}')
    assert found is not None
    assert found.version == 2
    assert await store.lookup(NS, "a", "AVRO", '{"type":"integer"}') is None


async def test_the_same_text_of_another_type_is_another_schema(backend: Backend) -> None:
    store = backend.schemas
    assert await _register(store, "a", '"string"', kind="AVRO") == (1, 1, True)
    assert await _register(store, "b", '"string"', kind="JSON") == (2, 1, True)


async def test_namespaces_are_isolated(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    assert await store.subjects(OTHER) == []
    with pytest.raises(SubjectNotFound):
        await store.versions(OTHER, "a")
    with pytest.raises(SchemaNotFound):
        await store.schema(OTHER, 1)
    # Ids are counted per namespace.
    assert await _register(store, "a", '{"type": "integer"}', ns=OTHER) == (1, 1, True)
    await store.set_compatibility(NS, None, "FULL")
    assert await store.compatibility(OTHER, None) is None


async def test_a_registration_checked_against_a_stale_latest_is_refused(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    with pytest.raises(SubjectChanged):
        await store.register(NS, "a", "JSON", "x", "x", expect_latest=None)
    assert [v.version for v in await store.versions(NS, "a")] == [1]


async def test_racing_registrations_against_one_latest_store_one(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    results = await asyncio.gather(
        *(store.register(NS, "a", "JSON", f"s{i}", f"s{i}", expect_latest=1) for i in range(8)),
        return_exceptions=True,
    )
    stored = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 1
    assert all(isinstance(r, SubjectChanged) for r in results if isinstance(r, BaseException))


async def test_soft_then_permanent_delete_of_a_version(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    await _register(store, "a", '{"type": "integer"}')
    with pytest.raises(VersionNotSoftDeleted):
        await store.delete_version(NS, "a", 2, permanent=True)
    assert await store.delete_version(NS, "a", 2, permanent=False) == 2
    with pytest.raises(VersionSoftDeleted):
        await store.delete_version(NS, "a", 2, permanent=False)
    assert [v.version for v in await store.versions(NS, "a")] == [1]
    assert (await store.version(NS, "a", None)).version == 1
    with pytest.raises(VersionNotFound):
        await store.version(NS, "a", 2)
    hidden = await store.version(NS, "a", 2, include_deleted=True)
    assert hidden.deleted
    # Soft-deleted, the schema is still readable by id; the next version is 3.
    assert (await store.schema(NS, 2)).schema == '{"type": "integer"}'
    assert await store.lookup(NS, "a", "JSON", '{"type":"integer"}') is None
    assert await _register(store, "a", '{"type": "boolean"}') == (3, 3, True)
    assert await store.delete_version(NS, "a", 2, permanent=True) == 2
    with pytest.raises(VersionNotFound):
        await store.version(NS, "a", 2, include_deleted=True)
    with pytest.raises(SchemaNotFound):
        await store.schema(NS, 2)
    with pytest.raises(VersionNotFound):
        await store.delete_version(NS, "a", 9, permanent=False)


async def test_soft_then_permanent_delete_of_a_subject(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    await _register(store, "a", '{"type": "integer"}')
    await store.set_compatibility(NS, "a", "NONE")
    with pytest.raises(SubjectNotSoftDeleted):
        await store.delete_subject(NS, "a", permanent=True)
    assert await store.delete_subject(NS, "a", permanent=False) == [1, 2]
    with pytest.raises(SubjectSoftDeleted):
        await store.delete_subject(NS, "a", permanent=False)
    assert await store.subjects(NS) == []
    assert await store.subjects(NS, include_deleted=True) == ["a"]
    with pytest.raises(SubjectNotFound):
        await store.versions(NS, "a")
    assert len(await store.versions(NS, "a", include_deleted=True)) == 2
    assert await store.delete_subject(NS, "a", permanent=True) == [1, 2]
    assert await store.subjects(NS, include_deleted=True) == []
    assert await store.compatibility(NS, "a") is None
    with pytest.raises(SubjectNotFound):
        await store.delete_subject(NS, "a", permanent=False)
    # Ids are never given out twice, also after a permanent delete.
    assert (await _register(store, "a", '{"type": "null"}'))[0] == 3


async def test_compatibility_config(backend: Backend) -> None:
    store = backend.schemas
    assert await store.compatibility(NS, None) is None
    await store.set_compatibility(NS, None, "FULL")
    await store.set_compatibility(NS, "a", "NONE")
    assert await store.compatibility(NS, None) == "FULL"
    assert await store.compatibility(NS, "a") == "NONE"
    assert await store.compatibility(NS, "b") is None
    with pytest.raises(InvalidCompatibility):
        await store.set_compatibility(NS, "a", "SIDEWAYS")
    assert await store.delete_compatibility(NS, "a") == "NONE"
    assert await store.delete_compatibility(NS, "a") is None
    assert await store.compatibility(NS, "a") is None


async def test_purge_removes_one_namespace_only(backend: Backend) -> None:
    store = backend.schemas
    await _register(store, "a", '{"type": "string"}')
    await store.set_compatibility(NS, None, "FULL")
    await _register(store, "a", '{"type": "string"}', ns=OTHER)
    assert await store.namespaces() == [NS, OTHER]
    assert await store.purge(NS) == 1
    assert await store.subjects(NS, include_deleted=True) == []
    assert await store.compatibility(NS, None) is None
    assert await store.namespaces() == [OTHER]
    assert await store.subjects(OTHER) == ["a"]


async def test_the_count_of_changes_moves_with_every_write_and_only_then(
    backend: Backend,
) -> None:
    """What lets a gateway keep the versions it read until the store changes."""
    store = backend.schemas
    seen = [await store.changes()]

    async def moved() -> bool:
        now = await store.changes()
        grew = now > seen[-1]
        seen.append(now)
        return grew

    await _register(store, "a", '{"type": "string"}')
    assert await moved()
    await store.version(NS, "a", None)
    await store.versions(NS, "a")
    await store.lookup(NS, "a", "JSON", '{"type":"string"}')
    assert not await moved()
    await _register(store, "a", '{"type": "integer"}')
    assert await moved()
    await store.delete_version(NS, "a", 2, permanent=False)
    assert await moved()
    await store.delete_version(NS, "a", 2, permanent=True)
    assert await moved()
    await store.delete_subject(NS, "a", permanent=False)
    assert await moved()
    await store.purge(NS)
    assert await moved()


async def test_registrations_survive_a_reopen(storage_config: StorageConfig) -> None:
    first = await open_backend(storage_config)
    try:
        await _register(first.schemas, "a", '{"type": "string"}')
        await first.schemas.set_compatibility(NS, "a", "FULL")
    finally:
        await first.close()
    second = await open_backend(storage_config)
    try:
        assert (await second.schemas.version(NS, "a", 1)).schema == '{"type": "string"}'
        assert await second.schemas.compatibility(NS, "a") == "FULL"
    finally:
        await second.close()
