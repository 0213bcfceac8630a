"""Topics on disk by id: any valid name fits, deleted data never comes back, failed
creates leave nothing, old name-keyed data directories are moved, partitions grow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.embedded.crashpoints import CRASH_EXIT_STATUS
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.errors import DiskFull, PartitionsCannotShrink, TopicExists, TopicNotFound
from storage.records import NewRecord, TopicConfig
from tests.storage.faults import DiskQuota
from tests.storage.layout import topic_dir

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
# The longest names the gateway accepts: a 63-character tenant with a 192-character
# topic (past the 255-byte file-name limit together), `default` with a 249-character
# one, and both at their longest.
LONGEST = [
    "t" * 63 + "~" + "x" * 192,
    "default~" + "y" * 249,
    "u" * 63 + "~" + "z" * 249,
]


async def open_store(path: Path, fio: FileIO | None = None) -> EmbeddedLogStore:
    return await EmbeddedLogStore.open(str(path), options=EngineOptions(shards=2), fileio=fio)


async def values(store: EmbeddedLogStore, name: str, partition: int = 0) -> list[bytes | None]:
    fetched = await store.read(name, partition, 0)
    return [r.value for r in fetched.records]


def on_disk_names(data_dir: Path) -> list[str]:
    return [os.path.relpath(os.path.join(d, n), data_dir) for d, ds, fs in os.walk(data_dir)
            for n in ds + fs]  # fmt: skip


def holds(data_dir: Path, needle: bytes) -> bool:
    return any(path.is_file() and needle in path.read_bytes() for path in data_dir.rglob("*"))


@pytest.mark.parametrize("name", LONGEST, ids=["63+192", "default+249", "63+249"])
async def test_the_longest_names_create_produce_fetch_restart_and_delete(
    tmp_path: Path, name: str
) -> None:
    store = await open_store(tmp_path)
    info = await store.create_topic(name, 2, TopicConfig())
    assert len(info.topic_id) == 32
    await store.append(name, 1, [NewRecord(b"one"), NewRecord(b"two")])
    assert await values(store, name, 1) == [b"one", b"two"]
    await store.close()
    assert all(len(part) <= 64 for n in on_disk_names(tmp_path) for part in n.split(os.sep))

    store = await open_store(tmp_path)
    assert (await store.get_topic(name)).topic_id == info.topic_id
    assert await values(store, name, 1) == [b"one", b"two"]
    await store.delete_topic(name)
    assert await store.list_topics() == []
    await store.close()

    store = await open_store(tmp_path)
    try:
        assert await store.list_topics() == []
        assert not holds(tmp_path, b"two")
    finally:
        await store.close()


async def test_a_topic_created_again_gets_a_new_id_and_none_of_the_old_records(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    first = await store.create_topic("acme~orders", 1, TopicConfig())
    await store.append("acme~orders", 0, [NewRecord(b"old")])
    await store.delete_topic("acme~orders")
    second = await store.create_topic("acme~orders", 1, TopicConfig())
    assert second.topic_id != first.topic_id
    assert await values(store, "acme~orders") == []
    await store.close()
    store = await open_store(tmp_path)
    try:
        assert (await store.get_topic("acme~orders")).topic_id == second.topic_id
        assert await values(store, "acme~orders") == []
        assert not (tmp_path / "topics" / first.topic_id).exists()
    finally:
        await store.close()


def run_child(data_dir: Path, action: str, name: str, crash_point: str | None) -> int:
    extra = ["--crash-point", crash_point] if crash_point else []
    proc = subprocess.run(
        [sys.executable, "-m", "tests.storage.catalog_child", str(data_dir), action, name, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode


async def test_a_crash_mid_delete_never_brings_the_topic_back(tmp_path: Path) -> None:
    name = "alpha~" + "d" * 249
    code = run_child(tmp_path, "fill-and-delete", name, "topic-delete:1")
    assert code == CRASH_EXIT_STATUS  # died after the deletion point, its files still there
    assert holds(tmp_path, b"secret-4")
    store = await open_store(tmp_path)
    try:
        assert await store.list_topics() == []
        with pytest.raises(TopicNotFound):
            await store.read(name, 0, 0)
        assert not holds(tmp_path, b"secret-4")
        await store.create_topic(name, 2, TopicConfig())
        assert await values(store, name) == []
    finally:
        await store.close()


async def test_a_crash_before_a_create_commits_leaves_no_topic_and_frees_the_name(
    tmp_path: Path,
) -> None:
    code = run_child(tmp_path, "create", "acme~orders", "metadata-rename:1")
    assert code == CRASH_EXIT_STATUS
    store = await open_store(tmp_path)
    try:
        assert await store.list_topics() == []
        assert os.listdir(tmp_path / "topics") == []
        await store.create_topic("acme~orders", 1, TopicConfig())
    finally:
        await store.close()


@pytest.mark.parametrize("where", ["segment", "metadata"])
async def test_a_create_that_finds_the_disk_full_leaves_nothing_and_succeeds_later(
    tmp_path: Path, where: str
) -> None:
    fio = DiskQuota()
    store = await open_store(tmp_path, fio)
    try:
        if where == "segment":
            fio.fail_new_segments = True
        else:
            fio.budget = fio.written  # every segment file starts empty: topic.json fails
        with pytest.raises(DiskFull):
            await store.create_topic("acme~orders", 3, TopicConfig())
        assert await store.list_topics() == []
        assert os.listdir(tmp_path / "topics") == []
        fio.refill()
        await store.create_topic("acme~orders", 3, TopicConfig())
        await store.append("acme~orders", 2, [NewRecord(b"ok")])
        assert await values(store, "acme~orders", 2) == [b"ok"]
    finally:
        await store.close()


async def test_a_config_change_on_a_full_disk_is_disk_full_and_changes_nothing(
    tmp_path: Path,
) -> None:
    fio = DiskQuota()
    store = await open_store(tmp_path, fio)
    try:
        await store.create_topic("t", 1, TopicConfig())
        fio.budget = fio.written
        with pytest.raises(DiskFull):
            await store.update_topic_config("t", TopicConfig(retention_ms=1000))
        assert (await store.get_topic("t")).config == TopicConfig()
    finally:
        await store.close()


def make_legacy(data_dir: Path, name: str) -> None:
    """Turn a topic's directory back into the name-keyed layout of earlier versions."""
    directory = topic_dir(data_dir, name)
    meta = json.loads((directory / "topic.json").read_text())
    legacy = {k: meta[k] for k in ("partitions", "config", "created_ms")}
    (directory / "topic.json").write_text(json.dumps(legacy))
    directory.rename(data_dir / "topics" / name)


async def test_a_name_keyed_data_directory_is_moved_to_ids_on_open(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.create_topic("acme~orders", 2, TopicConfig(retention_bytes=10_000))
    await store.create_topic("default~audit", 1, TopicConfig())
    await store.append("acme~orders", 1, [NewRecord(b"kept")])
    await store.close()
    make_legacy(tmp_path, "acme~orders")
    make_legacy(tmp_path, "default~audit")
    assert sorted(os.listdir(tmp_path / "topics")) == ["acme~orders", "default~audit"]

    # A crash between the two steps of the move is finished by the next open.
    assert run_child(tmp_path, "open", "-", "topic-migrate:2") == CRASH_EXIT_STATUS
    store = await open_store(tmp_path)
    try:
        topics = {t.name: t for t in await store.list_topics()}
        assert sorted(topics) == ["acme~orders", "default~audit"]
        assert topics["acme~orders"].config == TopicConfig(retention_bytes=10_000)
        assert await values(store, "acme~orders", 1) == [b"kept"]
        assert sorted(os.listdir(tmp_path / "topics")) == sorted(
            t.topic_id for t in topics.values()
        )
        with pytest.raises(TopicExists):
            await store.create_topic("acme~orders", 1, TopicConfig())
    finally:
        await store.close()


async def test_partitions_grow_durably_and_never_shrink(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.create_topic("t", 2, TopicConfig())
    await store.append("t", 1, [NewRecord(b"before")])
    info = await store.add_partitions("t", 5)
    assert info.partitions == 5
    await store.append("t", 4, [NewRecord(b"new")])
    assert await values(store, "t", 4) == [b"new"]
    with pytest.raises(PartitionsCannotShrink, match="never shrink"):
        await store.add_partitions("t", 3)
    assert (await store.add_partitions("t", 5)).partitions == 5
    await store.close()
    store = await open_store(tmp_path)
    try:
        description = await store.describe_topic("t")
        assert [p.end_offset for p in description.partitions] == [0, 1, 0, 0, 1]
        assert await values(store, "t", 1) == [b"before"]
        assert await values(store, "t", 4) == [b"new"]
    finally:
        await store.close()


async def test_a_growth_that_finds_the_disk_full_changes_nothing(tmp_path: Path) -> None:
    fio = DiskQuota()
    store = await open_store(tmp_path, fio)
    try:
        await store.create_topic("t", 2, TopicConfig())
        fio.fail_new_segments = True
        with pytest.raises(DiskFull):
            await store.add_partitions("t", 4)
        assert (await store.get_topic("t")).partitions == 2
        assert sorted(os.listdir(topic_dir(tmp_path, "t"))) == ["0", "1", "topic.json"]
        fio.refill()
        assert (await store.add_partitions("t", 4)).partitions == 4
        await store.append("t", 3, [NewRecord(b"x")])
    finally:
        await store.close()
