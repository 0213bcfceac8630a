"""The tenant store on a disk that is really full: DirectoryFull (507 at the gateway),
never a bare sqlite3 error, and the same create succeeds once space returns."""

from __future__ import annotations

import pytest

from tenants.directory import TenantDirectory
from tenants.errors import DirectoryFull
from tests.support.small_fs import fill, free, small_filesystem

pytestmark = pytest.mark.anyio


async def test_creating_a_tenant_on_a_full_disk_fails_cleanly_and_works_later() -> None:
    with small_filesystem("2m") as root:
        directory = await TenantDirectory.open(str(root / "tenants.db"), pepper=b"p" * 32)
        try:
            await directory.create_tenant("before")
            fill(root)
            with pytest.raises(DirectoryFull):
                await directory.create_tenant("during")
            assert (await directory.get_tenant("before")).name == "before"
            free(root)
            await directory.create_tenant("after")
            names = {t.name for t in await directory.list_tenants()}
            assert names == {"before", "after"}
        finally:
            await directory.close()
