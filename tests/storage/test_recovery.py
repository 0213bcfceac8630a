"""Opening the embedded engine after crashes and damage: cut torn tails, keep acknowledged data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.embedded.codec import read_prefix
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.errors import CorruptData
from storage.records import NewRecord, TopicConfig
from tests.storage.layout import partition_dir

pytestmark = pytest.mark.anyio

OPTIONS = EngineOptions(shards=1, index_interval_bytes=256)


def segment_files(data_dir: Path, suffix: str = ".log") -> list[Path]:
    return sorted(partition_dir(data_dir, "t").glob(f"*{suffix}"))


def batch_positions(path: Path) -> list[tuple[int, int]]:
    """(position, size) of each batch in a segment file, walking the length prefixes."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        _, size = read_prefix(data, pos)
        out.append((pos, size))
        pos += size
    return out


def flip_bit(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


def value(i: int) -> bytes:
    return b"record-%05d" % i + b"." * 40


async def open_store(data_dir: Path, fileio: FileIO | None = None) -> EmbeddedLogStore:
    return await EmbeddedLogStore.open(str(data_dir), options=OPTIONS, fileio=fileio)


async def populate(data_dir: Path, batches: int, *, config: TopicConfig, clean: bool) -> None:
    """Append `batches` batches of 2 records (offsets 2i, 2i+1), then close or crash."""
    store = await open_store(data_dir)
    await store.create_topic("t", 1, config)
    for i in range(batches):
        await store.append("t", 0, [NewRecord(value(2 * i)), NewRecord(value(2 * i + 1))])
    if clean:
        await store.close()
    else:
        await store._abandon()


async def read_all(store: EmbeddedLogStore, start: int = 0) -> list[bytes | None]:
    out: list[bytes | None] = []
    offset = start
    while True:
        fetched = await store.read("t", 0, offset, max_records=1000)
        if not fetched.records:
            return out
        out.extend(r.value for r in fetched.records)
        offset = fetched.next_offset


@pytest.mark.parametrize("cut", [1, 11, 40, 100])
async def test_torn_tail_is_cut_at_the_last_whole_batch(tmp_path: Path, cut: int) -> None:
    await populate(tmp_path, 10, config=TopicConfig(), clean=False)
    (log,) = segment_files(tmp_path)
    last_pos, last_size = batch_positions(log)[-1]
    assert cut < last_size
    os.truncate(log, last_pos + last_size - cut)
    store = await open_store(tmp_path)
    try:
        assert store.recovery.truncated_bytes == last_size - cut
        assert (await store.offsets("t", 0)).end_offset == 18
        assert await read_all(store) == [value(i) for i in range(18)]
        assert (await store.append("t", 0, [NewRecord(b"next")])).base_offset == 18
        assert (await store.read("t", 0, 18)).records[0].value == b"next"
    finally:
        await store.close()
    assert log.stat().st_size == last_pos + batch_positions(log)[-1][1]


async def test_garbled_tail_is_cut(tmp_path: Path) -> None:
    await populate(tmp_path, 10, config=TopicConfig(), clean=False)
    (log,) = segment_files(tmp_path)
    data = bytearray(log.read_bytes())
    for i in range(1, 4):
        data[-i] ^= 0xFF
    log.write_bytes(bytes(data))
    store = await open_store(tmp_path)
    try:
        assert (await store.offsets("t", 0)).end_offset == 18
        assert await read_all(store) == [value(i) for i in range(18)]
    finally:
        await store.close()


async def test_garbage_after_the_last_batch_is_cut(tmp_path: Path) -> None:
    await populate(tmp_path, 3, config=TopicConfig(), clean=False)
    (log,) = segment_files(tmp_path)
    with log.open("ab") as f:
        f.write(b"\x00" * 7 + b"\xde\xad" * 100)
    store = await open_store(tmp_path)
    try:
        assert await read_all(store) == [value(i) for i in range(6)]
        assert store.recovery.truncated_bytes == 207
    finally:
        await store.close()


async def test_missing_or_garbled_indexes_are_rebuilt(tmp_path: Path) -> None:
    config = TopicConfig(segment_bytes=800)
    await populate(tmp_path, 40, config=config, clean=True)
    indexes, time_indexes = segment_files(tmp_path, ".index"), segment_files(tmp_path, ".timeindex")
    assert len(indexes) >= 4
    indexes[0].unlink()
    indexes[1].write_bytes(b"\x01" * 13)
    time_indexes[2].write_bytes(time_indexes[2].read_bytes()[:-16])
    store = await open_store(tmp_path)
    try:
        assert store.recovery.scanned_segments == 3
        assert await read_all(store) == [value(i) for i in range(80)]
        for offset in (0, 7, 33, 61, 79):
            fetched = await store.read("t", 0, offset, max_records=1)
            assert fetched.records[0].value == value(offset)
        info = await store.offsets("t", 0)
        assert (info.start_offset, info.end_offset) == (0, 80)
    finally:
        await store.close()


async def test_index_pointing_elsewhere_is_not_trusted(tmp_path: Path) -> None:
    config = TopicConfig(segment_bytes=800)
    await populate(tmp_path, 20, config=config, clean=True)
    first = segment_files(tmp_path, ".index")[0]
    # Valid entries, wrong end: the index was written for a different file.
    data = first.read_bytes()
    first.write_bytes(data[:-16] + (999).to_bytes(8, "big") + data[-8:])
    store = await open_store(tmp_path)
    try:
        assert store.recovery.scanned_segments == 1
        assert await read_all(store) == [value(i) for i in range(40)]
    finally:
        await store.close()


async def test_bit_flip_in_a_closed_segment_is_reported_not_cut(tmp_path: Path) -> None:
    config = TopicConfig(segment_bytes=1000)
    await populate(tmp_path, 30, config=config, clean=False)
    first = segment_files(tmp_path)[0]
    size_before = first.stat().st_size
    batches = batch_positions(first)
    assert len(batches) >= 3
    pos, size = batches[1]  # offsets 2 and 3
    flip_bit(first, pos + size // 2)
    store = await open_store(tmp_path)
    try:
        with pytest.raises(CorruptData) as error:
            await store.read("t", 0, 2)
        assert error.value.start_offset <= 2 < error.value.end_offset
        with pytest.raises(CorruptData):
            await store.read("t", 0, 3)
        before = await store.read("t", 0, 0, max_records=100)
        assert [r.value for r in before.records] == [value(0), value(1)]
        assert await read_all(store, 4) == [value(i) for i in range(4, 60)]
        assert (await store.offsets("t", 0)).end_offset == 60
    finally:
        await store.close()
    assert first.stat().st_size == size_before


async def test_bit_flip_mid_active_segment_is_quarantined(tmp_path: Path) -> None:
    await populate(tmp_path, 10, config=TopicConfig(), clean=False)
    (log,) = segment_files(tmp_path)
    size_before = log.stat().st_size
    pos, _size = batch_positions(log)[4]  # offsets 8 and 9
    flip_bit(log, pos + 40)
    store = await open_store(tmp_path)
    try:
        assert store.recovery.quarantined_ranges == 1
        assert store.recovery.truncated_bytes == 0
        with pytest.raises(CorruptData) as error:
            await store.read("t", 0, 9)
        assert (error.value.start_offset, error.value.end_offset) == (8, 10)
        before = await store.read("t", 0, 0, max_records=100)
        assert [r.value for r in before.records] == [value(i) for i in range(8)]
        assert await read_all(store, 10) == [value(i) for i in range(10, 20)]
        assert (await store.append("t", 0, [NewRecord(b"next")])).base_offset == 20
        assert await store.offset_for_time("t", 0, 0) == 0
    finally:
        await store.close()
    assert log.stat().st_size > size_before


class CountingFileIO(FileIO):
    """Counts preads of segment log files."""

    def __init__(self) -> None:
        self.log_fds: set[int] = set()
        self.log_preads = 0

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        fd = super().open(path, flags, mode)
        if path.endswith(".log"):
            self.log_fds.add(fd)
        else:
            self.log_fds.discard(fd)
        return fd

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        if fd in self.log_fds:
            self.log_preads += 1
        return super().pread(fd, size, offset)


async def test_clean_shutdown_marker_skips_the_scan(tmp_path: Path) -> None:
    await populate(tmp_path, 20, config=TopicConfig(segment_bytes=800), clean=True)
    counting = CountingFileIO()
    store = await open_store(tmp_path, counting)
    try:
        assert store.recovery.clean_shutdown
        assert store.recovery.scanned_segments == 0
        assert counting.log_preads == 0
        assert not (tmp_path / "clean-shutdown").exists()  # removed before accepting writes
        assert await read_all(store) == [value(i) for i in range(40)]
    finally:
        await store._abandon()
    counting = CountingFileIO()
    store = await open_store(tmp_path, counting)
    try:
        assert not store.recovery.clean_shutdown
        assert store.recovery.scanned_segments == 1  # only the active segment
        assert counting.log_preads > 0
    finally:
        await store.close()
