"""Open segment files stay bounded as partitions grow, and a bound never loses an fsync error.

The engine keeps at most `max_open_files` segment files open (plus, briefly,
those a writer holds unsynced, see `storage/embedded/openfiles.py`): a topic of
many partitions written and read keeps the process's descriptors under that,
reads reopen closed files transparently, and a file whose data is not yet
synced is never closed, so the sync's error still reaches the producer.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.fileio import FileIO
from storage.embedded.openfiles import (
    OpenFiles,
    Residency,
    Resident,
    SegmentFile,
)
from storage.embedded.options import EngineOptions
from storage.embedded.segment import Segment, append_together, sync_together
from storage.errors import PartitionFenced, StorageError
from storage.records import AppendResult, Durability, NewRecord, TopicConfig, pack_records
from tests.storage.faults import WritebackErrors

pytestmark = pytest.mark.anyio


def open_under(root: Path) -> int:
    """Descriptors of this process open on files under `root` (from /proc/self/fd)."""
    count = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith(str(root) + os.sep):
            count += 1
    return count


def peak_bound(options: EngineOptions) -> int:
    """What the bound promises: the setting, and briefly half as many again held
    unsynced by the writers, plus one in use per thread (writers, loop, workers)."""
    return options.max_open_files * 3 // 2 + options.shards + 4


# -- the choice on its own, without files --------------------------------------------


class Model:
    """A `Residency` driven as `OpenFiles` drives it, with a made-up descriptor a
    file and the checks of what it promises after every step."""

    def __init__(self, capacity: int, count: int, seed: int) -> None:
        self.r = Residency(capacity, random.Random(seed))
        self.files = [Resident(open=False) for _ in range(count)]
        self.fds: dict[int, int] = {}  # file -> its descriptor, while open
        self.next_fd = 3

    def closing(self, victims: Sequence[Resident]) -> None:
        for v in victims:
            i = self.files.index(v)
            assert i in self.fds  # only what is open is closed
            assert not v.users
            assert not v.dirty
            del self.fds[i]

    def hold(self, i: int, *, open_fails: bool = False) -> bool:
        f = self.files[i]
        if f.closed and not f.open:
            return False
        if self.r.hold(f):
            if open_fails:
                self.closing(self.r.let_go(f))
                return False
            self.fds[i] = self.next_fd
            self.next_fd += 1
            self.closing(self.r.opened(f))
        assert f.open
        assert i in self.fds
        return True

    def check(self, held: dict[int, int]) -> None:
        r = self.r
        assert r.open_count == len(self.fds) == sum(f.open for f in self.files)
        pinned = [f for f in self.files if f.open and (f.users or f.dirty)]
        assert all(self.files[i].open for i in held)  # held stays open, same descriptor
        assert all(self.fds[i] == fd for i, fd in held.items())
        assert all(f.open for f in self.files if f.dirty)  # unsynced stays open
        assert all(not f.open for f in self.files if f.closed and not f.users)
        if r.open_count > r.capacity:  # over the bound only by what is pinned
            assert r.open_count == len(pinned)
        assert r.peak >= r.open_count


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2**32),
    st.lists(
        st.tuples(
            st.sampled_from(["use", "write", "hold", "let-go", "dirty", "synced", "close", "fail"]),
            st.integers(min_value=0, max_value=7),
        ),
        min_size=8,
        max_size=120,
    ),
)
def test_the_choice_keeps_the_bound_and_never_closes_a_pinned_file(
    capacity: int, seed: int, ops: list[tuple[str, int]]
) -> None:
    """Whatever the order of uses and whatever the random choices: at most
    `capacity` files are open unless all of them are held or unsynced, a file
    held or unsynced is never named for closing, and every use gets its file."""
    m = Model(capacity, 8, seed)
    held: dict[int, int] = {}  # file -> leases held, each on the descriptor it got
    fd_of: dict[int, int] = {}
    for op, i in ops:
        f = m.files[i]
        if op in ("use", "write", "hold", "fail"):
            if m.hold(i, open_fails=op == "fail"):
                if op == "write":  # a write left unsynced: pinned until `synced`
                    m.r.mark_dirty((f,))
                if op in ("use", "write"):
                    m.closing(m.r.let_go(f))
                else:
                    held[i] = held.get(i, 0) + 1
                    fd_of[i] = m.fds[i]
        elif op == "group":  # a writer pass: three files held, written, let go together
            group = [m.files[(i + k) % 8] for k in range(3)]
            if any(g.closed and not g.open for g in group):
                continue
            for g in m.r.hold_many(group):
                m.fds[m.files.index(g)] = m.next_fd
                m.next_fd += 1
                m.closing(m.r.opened(g))
            assert all(g.open for g in group)  # every access served
            m.r.mark_dirty(group)
            m.closing(m.r.let_go_many(group))
        elif op == "let-go" and i in held:
            held[i] -= 1
            if not held[i]:
                del held[i], fd_of[i]
            m.closing(m.r.let_go(f))
        elif op == "dirty" and i in held:
            m.r.mark_dirty((f,))
        elif op == "synced":
            m.closing(m.r.synced(f))
        elif op == "close":
            victims = m.r.close(f)
            for v in victims:
                assert v is f
                del m.fds[i]
        m.check(fd_of)
    for i, n in held.items():
        for _ in range(n):
            m.closing(m.r.let_go(m.files[i]))
    for f in m.files:
        for v in m.r.close(f):
            del m.fds[m.files.index(v)]
    assert m.r.open_count == 0
    assert not m.fds


def cycle(residency: Residency, files: list[Resident], rounds: int, *, write: bool) -> int:
    """Use each file in turn `rounds` times over (each written, and synced, when
    `write`), as a consumer or a writer going round its partitions; the opens."""
    opens = 0
    for _ in range(rounds):
        for f in files:
            if residency.hold(f):
                opens += 1
                residency.opened(f)
            if write:
                residency.mark_dirty((f,))
                residency.synced(f)
            residency.let_go(f)
    return opens


@pytest.mark.parametrize("write", [False, True], ids=["reader", "writer"])
def test_going_round_more_files_than_fit_still_finds_most_open(write: bool) -> None:
    """Least recently used closes each file just before it comes round again: 1,100
    files through 1,024 would reopen at every use. Here most uses find their file."""
    residency = Residency(1024, random.Random(1))
    files = [Resident(open=False) for _ in range(1100)]
    cycle(residency, files, 2, write=write)
    assert cycle(residency, files, 10, write=write) < 0.3 * 11_000


def test_a_reader_going_round_old_segments_leaves_the_writers_files_open() -> None:
    """800 partitions written in turn beside a consumer reading 2,000 other files:
    the consumer's files are closed first, so the writers' stay open."""
    residency = Residency(1024, random.Random(1))
    written = [Resident(open=False) for _ in range(800)]
    read = [Resident(open=False) for _ in range(2000)]
    cycle(residency, written, 1, write=True)
    opens = 0
    for rnd in range(3):
        for i, f in enumerate(read):
            cycle(residency, [f], 1, write=False)
            if i % 2 == 0:  # a write for every two reads
                opens += cycle(residency, [written[(rnd * 1000 + i // 2) % 800]], 1, write=True)
    assert opens < 0.1 * 3000  # (chosen at random among all: about half)


def test_files_no_longer_written_give_way_to_a_reader() -> None:
    """1,000 files written once and never again, then a consumer going round 1,100
    others: the stale ones age out (one looked at every few evictions), so after a
    while the consumer's files mostly stay open (were written files kept first
    for good, only 24 of the consumer's would fit)."""
    residency = Residency(1024, random.Random(1))
    cycle(residency, [Resident(open=False) for _ in range(1000)], 1, write=True)
    read = [Resident(open=False) for _ in range(1100)]
    cycle(residency, read, 20, write=False)
    assert cycle(residency, read, 10, write=False) < 0.2 * 11_000


# -- the cache on its own ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=5),
    st.lists(
        st.tuples(
            st.sampled_from(["read", "hold", "let-go", "dirty", "synced", "close"]),
            st.integers(min_value=0, max_value=11),
        ),
        max_size=80,
    ),
)
def test_the_cache_never_closes_a_file_in_use_or_unsynced(
    tmp_path_factory: pytest.TempPathFactory, capacity: int, ops: list[tuple[str, int]]
) -> None:
    """Whatever the order of uses: idle clean files are closed past the capacity, a
    held or dirty one never is, and a closed one reads its own bytes again."""
    root = tmp_path_factory.mktemp("files")
    fio = FileIO()
    files = OpenFiles(fio, capacity)
    segs: list[SegmentFile] = []
    for i in range(12):
        path = str(root / f"{i}.log")
        fd = fio.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        fio.write_all(fd, b"file %02d" % i)
        segs.append(files.adopt(path, os.O_RDWR | os.O_APPEND, fd))
    held: dict[int, int] = {}
    try:
        for op, i in ops:
            seg = segs[i]
            if seg.closed:
                continue
            if op == "read":
                fd = files.acquire(seg)
                assert fio.pread(fd, 7, 0) == b"file %02d" % i
                files.release(seg)
            elif op == "hold" and i not in held:
                held[i] = files.acquire(seg)
            elif op == "let-go" and i in held:
                del held[i]
                files.release(seg)
            elif op == "dirty" and i in held:
                files.mark_dirty(seg)
            elif op == "synced":
                files.mark_synced(seg)
            elif op == "close" and i not in held:
                files.close(seg)
            for j, fd in held.items():  # what is held stays open, on the same descriptor
                assert segs[j].fd == fd
            for s in segs:
                if s.dirty:
                    assert s.fd is not None
            pinned = sum(1 for s in segs if s.fd is not None and (s.users or s.dirty))
            assert files.open_count == sum(1 for s in segs if s.fd is not None)
            assert files.open_count <= max(capacity, pinned)
    finally:
        for i in list(held):
            files.release(segs[i])
        for s in segs:
            files.close(s)
    assert files.open_count == 0


def test_readers_and_a_writer_get_their_own_bytes_while_files_are_closed_under_them(
    tmp_path: Path,
) -> None:
    """Four reader threads and a writer over 24 files through a cache of four: every
    read between two of a file's uses may find it closed and reopened, and each
    still gets that file's bytes (never another file's that took its descriptor
    number), the writer's appends land in their own files, and at most the
    capacity plus the files in use are ever open."""
    fio = FileIO()
    files = OpenFiles(fio, 4, random.Random(1))
    segs: list[SegmentFile] = []
    for i in range(24):
        path = str(tmp_path / f"{i}.log")
        fd = fio.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        fio.write_all(fd, b"file %02d|" % i)
        segs.append(files.adopt(path, os.O_RDWR | os.O_APPEND, fd))
    errors: list[BaseException] = []
    appended = [0] * 24

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(1500):
                i = rng.randrange(24)
                with files.lease(segs[i]) as fd:
                    assert fio.pread(fd, 8, 0) == b"file %02d|" % i
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        rng = random.Random(99)
        try:
            for _ in range(500):
                i = rng.randrange(24)
                fd = files.acquire(segs[i])
                try:
                    files.mark_dirty(segs[i])
                    fio.write_all(fd, b"%02d" % i)
                    fio.fdatasync(fd)
                finally:
                    files.mark_synced(segs[i])
                    files.release(segs[i])
                appended[i] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert files.reopened > 100  # the files really were closed under the readers
    assert files.peak <= 4 + len(threads)
    for i, seg in enumerate(segs):
        with files.lease(seg) as fd:
            assert fio.pread(fd, 1 << 16, 0) == b"file %02d|" % i + b"%02d" % i * appended[i]
        files.close(seg)
    assert files.open_count == 0


# -- the engine ------------------------------------------------------------------------


async def test_many_partitions_written_and_read_stay_under_the_bound(tmp_path: Path) -> None:
    options = EngineOptions(shards=2, max_open_files=16)
    store = await EmbeddedLogStore.open(str(tmp_path), options=options)
    partitions = 120
    try:
        for durability in (Durability.FSYNC, Durability.INTERVAL, Durability.NONE):
            name = f"t-{durability.value}"
            await store.create_topic(name, partitions, TopicConfig(durability=durability))
            assert open_under(tmp_path) <= peak_bound(options)
            for rnd in range(2):
                batches = [
                    (p, pack_records([NewRecord(b"%d-%d" % (p, rnd))], now_ms=1))
                    for p in range(partitions)
                ]
                results = await store.append_batches(name, batches)
                assert all(isinstance(r, AppendResult) for r in results)
                assert open_under(tmp_path) <= peak_bound(options)
            for p in range(partitions):  # every file reopened as it is read
                got = await store.read(name, p, 0)
                assert [r.value for r in got.records] == [b"%d-0" % p, b"%d-1" % p]
            assert open_under(tmp_path) <= peak_bound(options)
        assert store.files.peak <= peak_bound(options)
        assert store.files.open_count <= options.max_open_files
        print(
            f"\n{3 * partitions} partitions, max_open_files={options.max_open_files}: "
            f"at most {store.files.peak} segment files open, {open_under(tmp_path)} now, "
            f"{store.files.reopened} reopens"
        )
    finally:
        await store.close()
    assert open_under(tmp_path) == 0


async def test_an_fsync_error_of_a_file_the_bound_would_close_reaches_the_producer(
    tmp_path: Path,
) -> None:
    """Sixteen fsync partitions written in one pass and synced together after,
    through a cache of four files, while other files are read between the write and
    the sync: the file whose write-back failed is held open until its sync, which
    reports the error (the kernel tells only descriptors open when it happened),
    so its producer is refused and every other one acknowledged."""
    results, fio, stored = await _write_with_a_lost_writeback(tmp_path)
    assert isinstance(results[0], PartitionFenced)
    assert all(isinstance(r, AppendResult) for r in results[1:])
    assert stored == [b"first"]  # never the refused batch
    assert fio.reported == 1
    assert fio.lost == 0


def _sync_after_reads_between(root: Path) -> tuple[list[OSError | None], WritebackErrors]:
    """Four segments written with one write call (as a writer pass writes them),
    four others read through a cache of four files, round and round until the
    first written file is closed or 64 reads are done, before the four are synced
    together: the reads are what would close the written files before their sync."""
    fio = WritebackErrors()
    files = OpenFiles(fio, 4, random.Random(1))
    segments = []
    for i in range(8):
        (root / str(i)).mkdir()
        segment = Segment.create(files, str(root / str(i)), 0, index_interval_bytes=4096, now_ms=1)
        segments.append(segment)
    written, others = segments[:4], segments[4:]
    fio.fail_writeback(written[0].log_path)
    data = [b"x" * 64] * 4
    assert append_together(files, written, data, [[(0, 1, 1, 64)]] * 4) == [None] * 4
    for n in range(64):
        others[n % 4].read(0, 1)  # reopened if closed, an idle one closed
        if not files.is_open(written[0].file):
            break
    errors = sync_together(files, written)
    for segment in segments:
        segment.close()
    return errors, fio


def test_a_file_written_together_stays_open_until_its_sync(tmp_path: Path) -> None:
    errors, fio = _sync_after_reads_between(tmp_path)
    assert isinstance(errors[0], OSError)  # reported: its producer is refused
    assert errors[1:] == [None] * 3
    assert (fio.reported, fio.lost) == (1, 0)


def test_without_the_pin_that_error_would_be_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case above is one the bound really meets: were unsynced files not held
    open, the failing one would be closed by those reads before its sync, the error
    lost with its descriptor, and the producer told its records were stored."""
    monkeypatch.setattr(OpenFiles, "mark_dirty", lambda self, *files: None)
    errors, fio = _sync_after_reads_between(tmp_path)
    assert errors == [None] * 4  # acknowledged: what the pin prevents
    assert fio.lost == 1


class ReadsBetween(WritebackErrors):
    """`between()` runs once, at the first write after the failing one (another
    file's): the moment a reader of other partitions would reopen their files."""

    def __init__(self) -> None:
        super().__init__()
        self.between: Callable[[], None] | None = None
        self.after: str | None = None

    def write(self, fd: int, data: bytes | memoryview) -> int:
        n = super().write(fd, data)
        if self.between is not None and self.path_of(fd) != self.after:
            between, self.between = self.between, None
            between()
        return n


async def _write_with_a_lost_writeback(
    tmp_path: Path,
) -> tuple[list[AppendResult | StorageError], WritebackErrors, list[bytes | None]]:
    fio = ReadsBetween()
    options = EngineOptions(shards=1, max_open_files=4)
    store = await EmbeddedLogStore.open(str(tmp_path), options=options, fileio=fio)
    try:
        await store.create_topic("t", 16, TopicConfig(durability=Durability.FSYNC))
        first = [(p, pack_records([NewRecord(b"first")], now_ms=1)) for p in range(16)]
        assert all(isinstance(r, AppendResult) for r in await store.append_batches("t", first))
        segments = [p.active for p in store._topic("t").partitions]

        def read_others() -> None:
            for segment in segments[8:]:
                segment.read(0, 1)  # each reopened, an idle one closed

        fio.fail_writeback(segments[0].log_path)
        fio.after, fio.between = segments[0].log_path, read_others
        second = [(p, pack_records([NewRecord(b"second")], now_ms=1)) for p in range(16)]
        results = await store.append_batches("t", second)
        stored = [r.value for r in (await store.read("t", 0, 0)).records]
    finally:
        await store.close()
    return results, fio, stored
