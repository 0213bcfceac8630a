"""Deleting a tenant deletes its keys and data for good: a tenant created later under
the same name sees nothing of the old one, also when the purge was interrupted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gateway.lifespan import TENANTS_DB
from tenants.directory import TenantDirectory
from tests.gateway.conftest import GatewayProcess

SCOPES = ["topics:read", "topics:write", "topics:admin"]
LONG_TENANT = "a" * 63
LONG_TOPIC = "o" * 192


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_tenant_with_data(api: httpx.Client, tenant: str, marker: str) -> tuple[str, str]:
    """The tenant's id and key, after it made a long-named topic holding `marker`."""
    r = api.post("/v1/admin/tenants", json={"name": tenant})
    assert r.status_code == 201, r.text
    uid: str = r.json()["id"]
    key: str = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": SCOPES}).json()["key"]
    auth = bearer(key)
    assert api.post("/v1/topics", json={"name": LONG_TOPIC}, headers=auth).status_code == 201
    r = api.post(f"/v1/topics/{LONG_TOPIC}/records", json={"records": [{"value": marker}]},
                 headers=auth)  # fmt: skip
    assert r.status_code == 200, r.text
    return uid, key


def sees_nothing_old(api: httpx.Client, tenant: str, marker: str) -> None:
    key = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": SCOPES}).json()["key"]
    auth = bearer(key)
    assert api.get("/v1/topics", headers=auth).json() == {"topics": []}
    old = api.get(f"/v1/topics/{LONG_TOPIC}/partitions/0/records", headers=auth)
    assert old.status_code == 404
    assert api.post("/v1/topics", json={"name": LONG_TOPIC}, headers=auth).status_code == 201
    r = api.get(f"/v1/topics/{LONG_TOPIC}/partitions/0/records", params={"offset": "earliest"},
                headers=auth)  # fmt: skip
    assert r.json()["records"] == [], marker


def stored_anywhere(data_dir: Path, marker: str) -> bool:
    needle = marker.encode()
    return any(p.is_file() and needle in p.read_bytes() for p in (data_dir / "topics").rglob("*"))


def test_a_deleted_tenant_leaves_nothing_for_the_next_one_of_its_name(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            old_uid, old_key = new_tenant_with_data(api, LONG_TENANT, "first-life")
            assert api.delete(f"/v1/admin/tenants/{LONG_TENANT}").status_code == 204
            assert not stored_anywhere(server.data_dir, "first-life")
            assert api.get("/v1/topics", headers=bearer(old_key)).status_code == 401
            r = api.post("/v1/admin/tenants", json={"name": LONG_TENANT})
            assert r.status_code == 201
            assert r.json()["id"] != old_uid
            sees_nothing_old(api, LONG_TENANT, "first-life")
        server.stop()
        server.start()
        assert not stored_anywhere(server.data_dir, "first-life")
        with server.client() as api:
            key = api.post(f"/v1/admin/tenants/{LONG_TENANT}/keys", json={"scopes": SCOPES})
            auth = bearer(key.json()["key"])
            path = f"/v1/topics/{LONG_TOPIC}/partitions/0/records"
            r = api.get(path, params={"offset": "earliest"}, headers=auth)
            assert r.status_code == 200
            assert r.json()["records"] == []  # the new tenant's own topic, empty
    finally:
        server.stop()


def test_a_tenant_deletion_interrupted_before_its_purge_is_finished_at_start(
    tmp_path: Path,
) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            new_tenant_with_data(api, "alpha", "interrupted-life")
        server.stop()

        async def delete_without_purge() -> None:
            # What a crash right after the deletion's commit leaves: tenant and keys
            # gone, a tombstone of the id, the topics still on disk.
            path = str(server.data_dir / TENANTS_DB)
            directory = await TenantDirectory.open(path, pepper=b"unused")
            try:
                await directory.delete_tenant("alpha")
            finally:
                await directory.close()

        asyncio.run(delete_without_purge())
        assert stored_anywhere(server.data_dir, "interrupted-life")
        server.start()
        assert not stored_anywhere(server.data_dir, "interrupted-life")
        with server.client() as api:
            assert api.post("/v1/admin/tenants", json={"name": "alpha"}).status_code == 201
            sees_nothing_old(api, "alpha", "interrupted-life")
    finally:
        server.stop()
