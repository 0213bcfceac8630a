"""A deleted tenant's schema registry entries are purged with its topics, and no one else's."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.admin.tenants import purge_deleted_tenants
from storage.open import StorageConfig, open_backend
from tenants.directory import TenantDirectory

pytestmark = pytest.mark.anyio


async def test_purging_a_deleted_tenant_removes_its_subjects_only(tmp_path: Path) -> None:
    backend = await open_backend(StorageConfig(data_dir=str(tmp_path / "data"), shards=1))
    directory = await TenantDirectory.open(str(tmp_path / "tenants.db"), pepper=b"p")
    try:
        gone = await directory.create_tenant("gone")
        kept = await directory.create_tenant("kept")
        for record in (gone, kept):
            await backend.schemas.register(
                record.uid, "orders-value", "JSON", "{}", "{}", expect_latest=None
            )
            await backend.schemas.set_compatibility(record.uid, None, "FULL")
        await directory.delete_tenant("gone")
        await purge_deleted_tenants(directory, backend.log, backend.schemas, backend.groups)
        assert await backend.schemas.subjects(gone.uid, include_deleted=True) == []
        assert await backend.schemas.compatibility(gone.uid, None) is None
        assert await backend.schemas.subjects(kept.uid) == ["orders-value"]
        assert await backend.schemas.namespaces() == [kept.uid]
    finally:
        await directory.close()
        await backend.close()
