"""Disk faults through the FileIO seam: failed fsync, disk full, short writes, power cuts,
bit flips. What a client was told must stay true: no acknowledgement that a crash
can take back, nothing half-written or corrupt ever served."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storage.embedded.codec import read_prefix
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.options import EngineOptions
from storage.embedded.segment import Segment
from storage.errors import CorruptData, DiskFull, PartitionFenced, StorageError
from storage.records import Durability, NewRecord, TopicConfig, pack_records
from tests.storage.faults import (
    DiskQuota,
    FailingFsync,
    FailingFsyncAndTruncate,
    PowerIsOff,
    ShortWrites,
    SimulatedDisk,
)
from tests.storage.layout import partition_dir

pytestmark = pytest.mark.anyio

TOPIC = "t"
SMALL_SEGMENTS = TopicConfig(segment_bytes=16 * 1024, durability=Durability.FSYNC)
Acked = dict[tuple[int, int], bytes]


def batch(tag: str, n: int) -> list[NewRecord]:
    return [
        NewRecord(f"{tag}-{i}-".encode() + os.urandom(random.randint(0, 300))) for i in range(n)
    ]


async def open_store(path: Path, fio: FileIO | None = None) -> EmbeddedLogStore:
    return await EmbeddedLogStore.open(str(path), options=EngineOptions(shards=2), fileio=fio)


async def append_acked(
    store: EmbeddedLogStore, partition: int, records: Sequence[NewRecord], acked: Acked
) -> None:
    result = await store.append(TOPIC, partition, records)
    for i, rec in enumerate(records):
        assert rec.value is not None
        acked[(partition, result.base_offset + i)] = rec.value


async def spread_acked(
    store: EmbeddedLogStore,
    partitions: list[int],
    records: Sequence[NewRecord],
    history: PowerCutHistory,
) -> None:
    """`records` split over `partitions` in one `append_batches`; each partition's part
    joins the acknowledged records when its result says it is appended. Raises the
    first failure (after noting what was acknowledged), as a caller would see it."""
    cut = max(1, len(records) // 2)
    halves = (records[:cut], records[cut:])
    parts = [(p, half) for p, half in zip(partitions, halves, strict=True) if half]
    results = await store.append_batches(TOPIC, [(p, pack_records(r, now_ms=1)) for p, r in parts])
    failure = None
    for (p, part), result in zip(parts, results, strict=True):
        if isinstance(result, StorageError):
            failure = failure or result
            continue
        for i, rec in enumerate(part):
            assert rec.value is not None
            history.acked[(p, result.base_offset + i)] = rec.value
    if failure is not None:
        raise failure


async def read_all(store: EmbeddedLogStore, partition: int) -> dict[int, bytes | None]:
    info = await store.offsets(TOPIC, partition)
    out: dict[int, bytes | None] = {}
    offset = info.start_offset
    while offset < info.end_offset:
        fetched = await store.read(TOPIC, partition, offset, max_records=10_000)
        for r in fetched.records:
            assert r.offset == offset
            out[r.offset] = r.value
            offset += 1
    return out


async def read_all_but_corrupt(
    store: EmbeddedLogStore, partition: int
) -> tuple[dict[int, bytes | None], int]:
    """Like `read_all`, stepping over ranges that raise CorruptData; returns their size too."""
    info = await store.offsets(TOPIC, partition)
    out: dict[int, bytes | None] = {}
    corrupt = 0
    offset = info.start_offset
    while offset < info.end_offset:
        try:
            fetched = await store.read(TOPIC, partition, offset, max_records=10_000)
        except CorruptData as exc:
            step = max(exc.end_offset, offset + 1) - offset
            corrupt += step
            offset += step
            continue
        for r in fetched.records:
            out[r.offset] = r.value
        offset = fetched.next_offset
    return out, corrupt


async def assert_exactly_acked(store: EmbeddedLogStore, partitions: int, acked: Acked) -> None:
    """Every acknowledged record is readable and unchanged; nothing else is stored."""
    for p in range(partitions):
        stored = await read_all(store, p)
        mine = {o: v for (q, o), v in acked.items() if q == p}
        assert stored == mine


async def test_failed_fsync_is_never_acknowledged_and_fences_the_partition(
    tmp_path: Path,
) -> None:
    fio = FailingFsync()
    store = await open_store(tmp_path, fio)
    await store.create_topic(TOPIC, 2, SMALL_SEGMENTS)
    acked: Acked = {}
    for i in range(5):
        await append_acked(store, 0, batch(f"a{i}", 10), acked)
    fio.armed = True
    acks_after_error = 0
    for i in range(5):
        try:
            await append_acked(store, 0, batch(f"b{i}", 10), acked)
            acks_after_error += 1
        except PartitionFenced:
            pass
    assert acks_after_error == 0
    assert fio.failures >= 1
    stored = await read_all(store, 0)  # reads keep working
    assert stored == {o: v for (p, o), v in acked.items() if p == 0}
    await store._abandon()
    print(f"\nacks after an fsync error: {acks_after_error}")

    store = await open_store(tmp_path)
    try:
        await assert_exactly_acked(store, 2, acked)
        await append_acked(store, 0, batch("c", 3), acked)  # writable again after restart
        await assert_exactly_acked(store, 2, acked)
    finally:
        await store.close()


@pytest.mark.parametrize("fio_kind", [FailingFsync, FailingFsyncAndTruncate])
async def test_records_of_a_failed_fsync_never_reappear_after_restart(
    tmp_path: Path, fio_kind: type[FailingFsync | FailingFsyncAndTruncate]
) -> None:
    fio = fio_kind()
    store = await open_store(tmp_path, fio)
    await store.create_topic(TOPIC, 1, SMALL_SEGMENTS)
    acked: Acked = {}
    for i in range(3):
        await append_acked(store, 0, batch(f"a{i}", 10), acked)
    fio.armed = True
    with pytest.raises(PartitionFenced):
        await append_acked(store, 0, batch("lost", 10), acked)
    await store._abandon()
    log_bytes = b"".join(p.read_bytes() for p in partition_dir(tmp_path, TOPIC).glob("*.log"))
    if fio_kind is FailingFsyncAndTruncate:
        assert b"lost-0-" in log_bytes  # the failed batch is still on disk...

    store = await open_store(tmp_path)
    try:
        await assert_exactly_acked(store, 1, acked)  # ...but is never served
        await append_acked(store, 0, batch("after", 4), acked)
        await assert_exactly_acked(store, 1, acked)  # offsets continue gaplessly
    finally:
        await store.close()
    assert not (partition_dir(tmp_path, TOPIC) / "fenced").exists()


@pytest.mark.parametrize("budget", [3000, 20_000, 50_000])
async def test_disk_full_mid_write_fails_cleanly_and_recovers_by_itself(
    tmp_path: Path, budget: int
) -> None:
    fio = DiskQuota()
    store = await open_store(tmp_path, fio)
    try:
        await store.create_topic(TOPIC, 1, SMALL_SEGMENTS)
        fio.budget = fio.written + budget
        acked: Acked = {}
        full = 0
        for i in range(60):
            try:
                await append_acked(store, 0, batch(f"a{i}", 8), acked)
            except DiskFull:
                full += 1
        assert full > 0
        await assert_exactly_acked(store, 1, acked)  # nothing half-written is served
        fio.refill()
        for i in range(10):
            await append_acked(store, 0, batch(f"b{i}", 8), acked)
        await assert_exactly_acked(store, 1, acked)  # gapless, resumed by itself
    finally:
        await store.close()
    store = await open_store(tmp_path)
    try:
        await assert_exactly_acked(store, 1, acked)
    finally:
        await store.close()


async def test_disk_full_at_segment_roll(tmp_path: Path) -> None:
    fio = DiskQuota()
    store = await open_store(tmp_path, fio)
    try:
        await store.create_topic(TOPIC, 1, SMALL_SEGMENTS)
        acked: Acked = {}
        fio.fail_new_segments = True
        full = 0
        for i in range(80):  # enough bytes to need several new segments
            try:
                await append_acked(store, 0, batch(f"a{i}", 8), acked)
            except DiskFull:
                full += 1
        assert full > 0
        await assert_exactly_acked(store, 1, acked)
        fio.refill()
        for i in range(40):
            await append_acked(store, 0, batch(f"b{i}", 8), acked)
        await assert_exactly_acked(store, 1, acked)
    finally:
        await store.close()


async def test_short_writes_still_store_exact_bytes(tmp_path: Path) -> None:
    store = await open_store(tmp_path, ShortWrites(seed=7))
    acked: Acked = {}
    try:
        await store.create_topic(TOPIC, 2, SMALL_SEGMENTS)
        await asyncio.gather(
            *(append_acked(store, i % 2, batch(f"s{i}", 5), acked) for i in range(60))
        )
        await assert_exactly_acked(store, 2, acked)
    finally:
        await store.close()
    store = await open_store(tmp_path)
    try:
        await assert_exactly_acked(store, 2, acked)
    finally:
        await store.close()


def test_simulated_disk_keeps_only_what_was_made_durable(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"before")
    disk = SimulatedDisk(tmp_path, seed=3)
    synced = disk.open(str(tmp_path / "synced"), os.O_RDWR | os.O_CREAT | os.O_APPEND)
    disk.write_all(synced, b"durable")
    disk.fdatasync(synced)
    disk.write_all(synced, b"-lost")
    unsynced_dir = disk.open(str(tmp_path / "no-dir-sync"), os.O_RDWR | os.O_CREAT)
    disk.write_all(unsynced_dir, b"data")
    disk.fsync(unsynced_dir)
    disk.write_atomic(str(tmp_path / "meta"), b"v1")  # syncs the directory: all durable
    disk.close(unsynced_dir)
    disk.unlink(str(tmp_path / "no-dir-sync"))  # none of what follows is made durable
    disk.mkdir(str(tmp_path / "newdir"))
    disk.rename(str(tmp_path / "old"), str(tmp_path / "renamed"))
    disk.close(synced)

    report = disk.power_cut(tear=False)
    with pytest.raises(PowerIsOff):
        disk.open(str(tmp_path / "synced"), os.O_RDONLY)  # the disk is gone
    assert (tmp_path / "synced").read_bytes() == b"durable"
    assert (tmp_path / "no-dir-sync").read_bytes() == b"data"
    assert (tmp_path / "meta").read_bytes() == b"v1"
    assert (tmp_path / "old").read_bytes() == b"before"
    assert not (tmp_path / "renamed").exists()
    assert not (tmp_path / "newdir").exists()
    assert (report.removed, report.restored) == (2, 2)


def test_simulated_disk_tears_the_last_page(tmp_path: Path) -> None:
    tails: set[bytes] = set()
    for seed in range(12):
        path = tmp_path / f"f{seed}"
        disk = SimulatedDisk(tmp_path, seed=seed)
        fd = disk.open(str(path), os.O_RDWR | os.O_CREAT | os.O_APPEND)
        disk.write_all(fd, b"A" * 100)
        disk.fdatasync(fd)
        disk.fsync_dir(str(tmp_path))
        disk.write_all(fd, b"B" * 100)
        disk.close(fd)
        assert disk.power_cut(tear=True).torn == 1
        content = path.read_bytes()
        assert content[:100] == b"A" * 100
        assert len(content) > 100
        tails.add(content[100:101])
    assert tails >= {b"B"}  # sometimes a prefix of the unsynced bytes reaches the disk


@dataclass
class PowerCutHistory:
    """Every value ever sent, and the (partition, offset) -> value of acknowledged ones."""

    attempted: set[bytes] = field(default_factory=set)
    acked: Acked = field(default_factory=dict)
    cut_during_appends: int = 0
    torn_files: int = 0


async def power_cut_cycle(path: Path, seed: int, history: PowerCutHistory, partitions: int) -> None:
    """Concurrent appends, and the power goes at a random moment while they run.

    After the cut every file operation fails, so the engine can neither sync nor
    acknowledge anything more (as a dead machine would not); appends that fail
    from then on have an unknown outcome, like those of a crashed process.
    """
    rng = random.Random(seed)
    disk = SimulatedDisk(path, seed=seed)
    store = await open_store(path, disk)
    if not await store.list_topics():
        await store.create_topic(TOPIC, partitions, SMALL_SEGMENTS)
    in_flight = 0

    async def producer(worker: int) -> None:
        nonlocal in_flight
        for i in range(100_000):
            records = batch(f"{seed}-{worker}-{i}", rng.randint(1, 8))
            history.attempted.update(r.value for r in records if r.value is not None)
            in_flight += 1
            try:
                if worker % 2:  # a keyed produce's shape: batches for several partitions at once
                    await spread_acked(store, rng.sample(range(partitions), 2), records, history)
                else:
                    await append_acked(store, rng.randrange(partitions), records, history.acked)
            except StorageError:
                return  # the power is off
            finally:
                in_flight -= 1

    tasks = [asyncio.create_task(producer(w)) for w in range(8)]
    await asyncio.sleep(rng.uniform(0.005, 0.08))
    history.cut_during_appends += in_flight > 0
    report = await asyncio.to_thread(disk.power_cut, tear=True)
    history.torn_files += report.torn
    await store._abandon()
    await asyncio.gather(*tasks)


@dataclass
class CutDamage:
    lost: int = 0  # acknowledged, and now missing or different
    corrupt: int = 0  # offsets reads refused with CorruptData
    foreign: int = 0  # served values nobody ever sent (garbage that passed as records)
    duplicates: int = 0


async def check_after_cut(path: Path, history: PowerCutHistory, partitions: int) -> CutDamage:
    """Reopen without faults; count what the cut took from acknowledged records.

    Records that reached the disk without their acknowledgement may be served;
    from then on later cycles must keep them too, so they join the model.
    """
    damage = CutDamage()
    store = await open_store(path)
    try:
        seen: set[bytes] = set()
        for p in range(partitions):
            stored, corrupt = await read_all_but_corrupt(store, p)  # each batch passed its CRC
            damage.corrupt += corrupt
            for (q, offset), value in history.acked.items():
                if q == p and stored.get(offset) != value:
                    damage.lost += 1
            for offset, got in stored.items():
                assert got is not None  # no producer sends a null value
                if got in seen:
                    damage.duplicates += 1
                seen.add(got)
                if got not in history.attempted:
                    damage.foreign += 1
                history.acked.setdefault((p, offset), got)
    finally:
        await store.close()
    return damage


async def power_cuts(tmp_path: Path, cycles: int) -> None:
    history = PowerCutHistory()
    acked_before_cuts = 0
    for cycle in range(cycles):
        acked_before = len(history.acked)
        await power_cut_cycle(tmp_path, cycle, history, partitions=3)
        acked_before_cuts += len(history.acked) - acked_before
        damage = await check_after_cut(tmp_path, history, partitions=3)
        assert damage == CutDamage(), f"cycle {cycle}: {damage}"
    assert history.cut_during_appends >= cycles // 2
    print(
        f"\npower-cut cycles={cycles} (cut mid-append: {history.cut_during_appends}, "
        f"torn files: {history.torn_files}) acked={acked_before_cuts} "
        f"records kept={len(history.acked)} lost=0 foreign=0 duplicates=0"
    )


async def test_power_cuts_lose_no_acknowledged_record(tmp_path: Path) -> None:
    await power_cuts(tmp_path, cycles=20)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_200_power_cuts_lose_no_acknowledged_record(tmp_path: Path) -> None:
    await power_cuts(tmp_path, cycles=200)


async def test_power_cut_catches_an_acknowledgement_before_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness has teeth: an engine that skips its fdatasync loses acked records."""

    def skip_syncs() -> None:  # both ways an append is made durable: a sync, a durable write
        monkeypatch.setattr(Segment, "sync", lambda self: None)
        monkeypatch.setattr(FileIO, "write_all_durable", FileIO.write_all)

    skip_syncs()
    history = PowerCutHistory()
    lost = 0
    for cycle in range(5):
        await power_cut_cycle(tmp_path, cycle, history, partitions=3)
        monkeypatch.undo()
        lost += (await check_after_cut(tmp_path, history, partitions=3)).lost
        skip_syncs()
        history.acked.clear()
    assert lost > 0
    print(f"\nacknowledging before fsync: {lost} acknowledged records lost in 5 power cuts")


@dataclass
class ReadBack:
    """What reading a whole damaged partition served and refused."""

    served: dict[int, bytes | None] = field(default_factory=dict)
    refused: list[tuple[int, int]] = field(default_factory=list)  # CorruptData ranges
    bad: int = 0  # served records that differ from what was acknowledged
    stalled: int = 0  # reads that returned nothing below the end (a reader would spin)


async def read_damaged(
    path: Path, acked: Acked, rng: random.Random, *, every_offset: bool = False
) -> ReadBack:
    """Read the whole partition, stepping over refused ranges; with `every_offset`, a
    one-record read starts at each offset (so each goes through the index lookup)."""
    out = ReadBack()
    store = await open_store(path)
    try:
        end = (await store.offsets(TOPIC, 0)).end_offset
        offset = 0
        while offset < end:
            limit = 1 if every_offset else rng.choice([1, 7, 500])
            try:
                fetched = await store.read(TOPIC, 0, offset, max_records=limit)
            except CorruptData as exc:
                out.refused.append((exc.start_offset, exc.end_offset))
                offset = max(exc.end_offset, offset + 1)
                continue
            if not fetched.records:
                out.stalled += 1
                offset += 1
                continue
            for r in fetched.records:
                out.served[r.offset] = r.value
                out.bad += acked.get((0, r.offset)) != r.value
            offset = fetched.next_offset
    finally:
        await store.close()
    return out


async def pristine_log(path: Path) -> tuple[Acked, list[Path]]:
    """A closed partition of many segments; returns the acks and its closed segments."""
    store = await open_store(path)
    acked: Acked = {}
    try:
        await store.create_topic(TOPIC, 1, SMALL_SEGMENTS)
        for i in range(150):
            await append_acked(store, 0, batch(f"f{i}", random.randint(1, 9)), acked)
    finally:
        await store.close()
    segments = sorted(partition_dir(path, TOPIC).glob("*.log"))[:-1]
    assert len(segments) >= 5
    return acked, segments


def segment_range(segments: list[Path], i: int, end: int) -> tuple[int, int]:
    base = int(segments[i].stem)
    return base, int(segments[i + 1].stem) if i + 1 < len(segments) else end


async def test_bit_flips_in_closed_segments_are_always_detected(tmp_path: Path) -> None:
    acked, segments = await pristine_log(tmp_path / "pristine")
    end = 1 + max(o for _, o in acked)
    rng = random.Random(11)
    flips = detected = served_bad = lost_elsewhere = 0
    for trial in range(40):
        work = tmp_path / f"trial-{trial}"
        shutil.copytree(tmp_path / "pristine", work)
        i = rng.randrange(len(segments))
        seg = work / segments[i].relative_to(tmp_path / "pristine")
        data = bytearray(seg.read_bytes())
        for _ in range(rng.randint(1, 3)):  # anywhere: headers, lengths, offsets, payloads
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        seg.write_bytes(bytes(data))
        flips += 1
        lo, hi = segment_range(segments, i, end)
        got = await read_damaged(work, acked, rng)
        served_bad += got.bad
        detected += any(s < hi and e > lo for s, e in got.refused)
        # The damage stays in its segment: every other record is still served.
        lost_elsewhere += sum(1 for _, o in acked if not lo <= o < hi and o not in got.served)
        shutil.rmtree(work)
    print(
        f"\nbit flips: segments damaged={flips} detected={detected} "
        f"served with a bad CRC={served_bad} good records refused elsewhere={lost_elsewhere}"
    )
    assert served_bad == 0
    assert detected == flips
    assert lost_elsewhere == 0


async def test_damaged_index_files_never_change_what_is_served(tmp_path: Path) -> None:
    """Indexes are caches: a bit flip or a cut in one must not hide or alter records."""
    acked, _ = await pristine_log(tmp_path / "pristine")
    indexes = sorted(partition_dir(tmp_path / "pristine", TOPIC).glob("*index"))
    rng = random.Random(5)
    trials = served_bad = refused = missing = 0
    for trial in range(30):
        work = tmp_path / f"trial-{trial}"
        shutil.copytree(tmp_path / "pristine", work)
        victim = work / rng.choice(indexes).relative_to(tmp_path / "pristine")
        data = bytearray(victim.read_bytes())
        if trial % 3 == 0:
            data = data[: rng.randrange(len(data))]
        else:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        victim.write_bytes(bytes(data))
        got = await read_damaged(work, acked, rng, every_offset=trial % 2 == 0)
        trials += 1
        served_bad += got.bad
        refused += len(got.refused)
        missing += sum(1 for _, o in acked if o not in got.served)
        shutil.rmtree(work)
    print(
        f"\nindex damage: trials={trials} served wrong={served_bad} "
        f"reads refused={refused} records missing={missing}"
    )
    assert served_bad == 0
    assert (refused, missing) == (0, 0)


async def test_truncated_closed_segment_is_reported_not_served(tmp_path: Path) -> None:
    acked, segments = await pristine_log(tmp_path / "pristine")
    end = 1 + max(o for _, o in acked)
    rng = random.Random(9)
    for trial in range(10):
        work = tmp_path / f"trial-{trial}"
        shutil.copytree(tmp_path / "pristine", work)
        i = rng.randrange(len(segments))
        seg = work / segments[i].relative_to(tmp_path / "pristine")
        data = seg.read_bytes()
        seg.write_bytes(data[: rng.randrange(len(data))])
        lo, hi = segment_range(segments, i, end)
        got = await read_damaged(work, acked, rng)
        assert got.bad == 0
        assert got.refused, "a cut segment must be reported"
        assert all(lo <= s and e <= hi for s, e in got.refused)  # only its own range
        assert all(o in got.served for _, o in acked if not lo <= o < hi)
        shutil.rmtree(work)


async def test_an_index_entry_pointing_at_the_wrong_batch_is_not_trusted(tmp_path: Path) -> None:
    """The index is a cache: an entry moved to the next batch boundary (still increasing,
    inside the segment, so it parses) must neither hide records nor stall readers."""
    acked, segments = await pristine_log(tmp_path / "pristine")
    rng = random.Random(2)
    damaged: list[str] = []
    trials = 0
    for seg in segments:
        index_path = seg.with_suffix(".index")
        raw = index_path.read_bytes()
        entries = [struct.unpack_from(">QQ", raw, i) for i in range(0, len(raw), 16)]
        log = seg.read_bytes()
        for k in range(len(entries) - 1):  # the last entry is the end entry
            rel, position = entries[k]
            moved = position + read_prefix(log, position)[1]
            if moved >= entries[k + 1][1]:
                continue  # no batch boundary in between: the parser would reject it
            trials += 1
            work = tmp_path / "work"
            shutil.copytree(tmp_path / "pristine", work)
            victim = work / index_path.relative_to(tmp_path / "pristine")
            data = bytearray(raw)
            struct.pack_into(">QQ", data, k * 16, rel, moved)
            victim.write_bytes(bytes(data))
            got = await read_damaged(work, acked, rng, every_offset=True)
            missing = sum(1 for _, o in acked if o not in got.served)
            if got.bad or got.refused or missing or got.stalled:
                damaged.append(
                    f"{index_path.name} entry {k}: wrong={got.bad} refused={len(got.refused)} "
                    f"missing={missing} empty reads={got.stalled}"
                )
            shutil.rmtree(work)
    print(f"\nindex entries moved to the next batch: trials={trials} with damage={len(damaged)}")
    assert trials > 0
    assert not damaged, damaged


async def test_a_damaged_base_offset_is_refused_not_served_under_another_offset(
    tmp_path: Path,
) -> None:
    """The base offset is outside the CRC: a flip that moves a batch to lower offsets
    (still overlapping what a reader asks for) must be caught by the offset chain."""
    acked, segments = await pristine_log(tmp_path / "pristine")
    end = 1 + max(o for _, o in acked)
    rng = random.Random(3)
    trials = served_bad = lost_elsewhere = undetected = 0
    for i, seg_path in enumerate(segments):
        data = seg_path.read_bytes()
        position, batches = 0, []
        while position < len(data):
            base, size = read_prefix(data, position)
            batches.append((position, base))
            position += size
        for position, base in batches[1:3]:  # a couple of batches inside each segment
            bit = (base & -base).bit_length() - 1  # its lowest set bit: the base goes down
            if bit < 0:
                continue
            trials += 1
            work = tmp_path / "work"
            shutil.copytree(tmp_path / "pristine", work)
            victim = work / seg_path.relative_to(tmp_path / "pristine")
            damaged = bytearray(data)
            struct.pack_into(">Q", damaged, position, base ^ (1 << bit))
            victim.write_bytes(bytes(damaged))
            lo, hi = segment_range(segments, i, end)
            got = await read_damaged(work, acked, rng, every_offset=trials % 2 == 0)
            served_bad += got.bad
            undetected += not any(s <= base < e for s, e in got.refused)
            lost_elsewhere += sum(1 for _, o in acked if not lo <= o < hi and o not in got.served)
            shutil.rmtree(work)
    print(
        f"\nbase offsets lowered by a bit flip: trials={trials} served under a wrong offset="
        f"{served_bad} undetected={undetected} good records refused elsewhere={lost_elsewhere}"
    )
    assert trials >= 5
    assert served_bad == 0
    assert undetected == 0
    assert lost_elsewhere == 0
