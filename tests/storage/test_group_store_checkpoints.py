"""The embedded group store writes reading positions on the event loop and keeps
SQLite's own checkpoints off it; the WAL must still be checkpointed, or it
would grow with every group fetch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.embedded.groups import CHECKPOINT_EVERY, GROUPS_DB
from storage.groups import MemberPosition, Membership
from storage.open import StorageConfig, open_backend

pytestmark = pytest.mark.anyio


async def test_the_wal_stays_bounded_under_position_writes(tmp_path: Path) -> None:
    config = StorageConfig(kind="file", data_dir=str(tmp_path / "data"), shards=1)
    backend = await open_backend(config)
    wal = os.path.join(config.data_dir, GROUPS_DB + "-wal")
    try:
        groups = backend.groups
        membership = Membership(generation=1, members=frozenset({"a"}), body=b"doc")
        await groups.put_group("t~g", membership, expected_version=0)
        body = b"p" * 300
        for _ in range(CHECKPOINT_EVERY):
            await groups.put_position("t~g", "a", MemberPosition(1, body))
        one_round = os.path.getsize(wal)
        for _ in range(4 * CHECKPOINT_EVERY):
            await groups.put_position("t~g", "a", MemberPosition(1, body))
        # Checkpointed WAL frames are written over again: the file stops growing.
        assert os.path.getsize(wal) <= 2 * one_round
        assert await groups.get_position("t~g", "a") == MemberPosition(1, body)
    finally:
        await backend.close()
