"""Fixtures of the shared behaviour suite: one Backend per engine kind.

Every test here runs once per kind in KINDS; an engine joins the suite by
adding its kind (and whatever its config needs) to `storage_config`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.open import Backend, StorageConfig, open_backend

KINDS = ["file"]


@pytest.fixture(params=KINDS)
def storage_config(request: pytest.FixtureRequest, tmp_path: Path) -> StorageConfig:
    kind = str(request.param)
    return StorageConfig(kind=kind, data_dir=str(tmp_path / "data"), shards=2)


@pytest.fixture
async def backend(anyio_backend: str, storage_config: StorageConfig) -> AsyncIterator[Backend]:
    opened = await open_backend(storage_config)
    try:
        yield opened
    finally:
        await opened.close()
