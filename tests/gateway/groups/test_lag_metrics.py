"""group_lags: per (tenant, group, topic) lag from the real group store and log, and the
cap on the groups one scrape reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.coordinator.service import GroupService
from gateway.groups.lag_metrics import group_lags
from gateway.http.names import storage_name
from storage.groups import OffsetCommit
from storage.open import Backend, StorageConfig, open_backend
from storage.records import NewRecord, TopicConfig
from tenants.directory import TenantDirectory
from tenants.tokens import JwtVerifier, TokenSigner

pytestmark = pytest.mark.anyio


@pytest.fixture
async def opened(
    anyio_backend: str, tmp_path: Path
) -> AsyncIterator[tuple[Backend, TenantDirectory]]:
    backend = await open_backend(StorageConfig(data_dir=str(tmp_path / "data"), shards=1))
    signer = TokenSigner.load_or_create(tmp_path / "token-keys.json")
    directory = await TenantDirectory.open(
        str(tmp_path / "tenants.db"), pepper=b"test-pepper-0123456789",
        token_verifier=JwtVerifier([], signer=signer),
    )  # fmt: skip
    try:
        yield backend, directory
    finally:
        await directory.close()
        await backend.close()


async def test_lag_by_tenant_group_and_topic_and_the_group_cap(
    opened: tuple[Backend, TenantDirectory],
) -> None:
    backend, directory = opened
    service = GroupService(backend.groups, backend.log)
    acme = await directory.create_tenant("acme")
    zeta = await directory.create_tenant("zeta")
    for tenant in (acme, zeta):
        topic = storage_name(tenant.uid, "orders")
        await backend.log.create_topic(topic, 2, TopicConfig())
        for partition in (0, 1):
            await backend.log.append(topic, partition, [NewRecord(b"v")] * 3)
    orders = storage_name(acme.uid, "orders")
    joined = await service.join(storage_name(acme.uid, "billing"), "m1", [orders], 30_000)
    await service.join(
        storage_name(zeta.uid, "audit"), "m2", [storage_name(zeta.uid, "orders")], 30_000
    )
    await service.commit(
        storage_name(acme.uid, "billing"), "m1", joined.group.generation,
        [OffsetCommit(orders, 0, 2)],
    )  # fmt: skip

    lags = await group_lags(service, directory)
    assert [(r.tenant, r.group, r.topic, r.lag) for r in lags.rows] == [
        ("acme", "billing", "orders", 1 + 3),
        ("zeta", "audit", "orders", 6),
    ]
    assert lags.omitted == 0
    capped = await group_lags(service, directory, max_groups=1)
    assert [r.group for r in capped.rows] == ["billing"]
    assert capped.omitted == 1
