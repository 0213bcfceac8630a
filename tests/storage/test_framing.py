"""The C batch framing (`storage/embedded/_framing.c`) against the reference.

`codec.frame_batch` says what a batch is; `codec.frame` is the C twin when it
is built, and must give the same bytes for every batch the reference frames and
refuse every one it refuses. The writer's `write_files` (one call for a pass's
writes to many files) must leave every file as `write_all` of each, in order,
does, with the same error for each. `make sanitize` runs these under ASan and UBSan.
"""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.embedded import codec
from storage.embedded.codec import decode_records, frame_batch, validate_batch, with_base_offset
from storage.embedded.fileio import FileIO
from storage.records import NewRecord, PackedRecords, pack_records

try:
    from storage.embedded._framing import frame as frame_in_c
    from storage.embedded._framing import write_files as write_files_in_c
except ImportError:
    pytest.skip("the C framing is not built", allow_module_level=True)

INT64 = (-(2**63), 2**63 - 1)
lenient = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
near_edges = st.sampled_from(
    [0, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -1, -(2**63), -(2**63) - 1]
)
counts = st.integers(-2, 2**32 + 2) | near_edges
timestamps = st.integers(INT64[0] - 2, INT64[1] + 2) | near_edges
identities = st.none() | st.binary(min_size=15, max_size=17)


def reference(
    data: bytes, count: int, first: int, last: int, identity: bytes | None, appended_ms: int
) -> bytes | None:
    """What frame_batch frames, or None when it refuses."""
    try:
        packed = PackedRecords(data, count, first, last)
        return frame_batch(packed, identity=identity, appended_ms=appended_ms)
    except (ValueError, struct.error):
        return None


def in_c(
    data: bytes, count: int, first: int, last: int, identity: bytes | None, appended_ms: int
) -> bytes | None:
    try:
        return frame_in_c(data, count, first, last, identity, appended_ms)
    except ValueError:
        return None


@lenient
@given(st.binary(max_size=300), counts, timestamps, timestamps, identities, timestamps)
@example(b"", 1, 0, 0, None, 0)
@example(bytes(range(256)) * 40, 3, -5, 2**62, b"i" * 16, 77)  # past zlib's first block
@example(b"x", 0, 0, 0, None, 0)
@example(b"x", 2**32, 0, 0, None, 0)
@example(b"x", 1, 2**63, 0, None, 0)
@example(b"x", 1, 0, 0, b"i" * 16, 2**63)
@example(b"x", 1, 0, 0, b"i" * 15, 0)
def test_the_c_framing_is_the_references_byte_for_byte(
    data: bytes, count: int, first: int, last: int, identity: bytes | None, appended_ms: int
) -> None:
    assert in_c(data, count, first, last, identity, appended_ms) == reference(
        data, count, first, last, identity, appended_ms
    )


@lenient
@given(
    st.lists(
        st.tuples(st.binary(max_size=200) | st.none(), st.binary(max_size=20) | st.none()).map(
            lambda pair: NewRecord(*pair)
        ),
        min_size=1,
        max_size=20,
    ),
    st.none() | st.binary(min_size=16, max_size=16),
    st.integers(0, 2**40),
)
def test_a_batch_framed_in_c_reads_back_as_its_records(
    records: list[NewRecord], identity: bytes | None, base: int
) -> None:
    packed = pack_records(records, now_ms=7)
    batch = with_base_offset(frame_in_c(*packed, identity, 9), base)
    header = validate_batch(batch)
    assert header.base_offset == base
    _, decoded = decode_records(batch)
    assert [(r.value, r.key) for r in decoded] == [(r.value, r.key) for r in records]


def test_the_engine_frames_with_the_c_twin_when_it_is_built() -> None:
    assert codec.frame is frame_in_c


def _write_all_each(fds: list[int], datas: list[bytes]) -> list[int]:
    """The reference: `write_all` of each, in order; each one's errno (0: written)."""
    errors = []
    for fd, data in zip(fds, datas, strict=True):
        try:
            FileIO().write_all(fd, data)
        except OSError as exc:
            errors.append(exc.errno or 0)
        else:
            errors.append(0)
    return errors


# Which descriptor each write goes to: one of three files (a repeat appends after
# the last), one open read-only, or one closed: an error of its own, the rest written.
_TARGETS = st.sampled_from(["a", "b", "c", "read-only", "closed"])


def _written_by(
    root: Path, how: str, writes: list[tuple[str, bytes]]
) -> tuple[list[int], dict[str, bytes]]:
    root.mkdir()
    fds = {name: os.open(root / name, os.O_RDWR | os.O_CREAT | os.O_APPEND) for name in "abc"}
    (root / "ro").write_bytes(b"")
    fds["read-only"] = os.open(root / "ro", os.O_RDONLY)
    closed = os.open(root / "ro", os.O_RDONLY)
    os.close(closed)
    fds["closed"] = closed
    try:
        targets, datas = [fds[t] for t, _ in writes], [d for _, d in writes]
        write = write_files_in_c if how == "c" else _write_all_each
        errors = write(targets, datas)
    finally:
        for name, fd in fds.items():
            if name != "closed":
                os.close(fd)
    return errors, {name: (root / name).read_bytes() for name in "abc"}


@lenient
@given(st.lists(st.tuples(_TARGETS, st.binary(max_size=3000)), max_size=12))
def test_the_c_writes_of_a_pass_are_write_all_of_each(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[str, bytes]]
) -> None:
    root = tmp_path_factory.mktemp("writes")
    in_c = _written_by(root / "c", "c", writes)
    assert in_c == _written_by(root / "reference", "reference", writes)
    assert in_c[0] == [  # nothing to write is no write, wherever it goes
        errno.EBADF if data and target in ("read-only", "closed") else 0 for target, data in writes
    ]


def test_the_c_writes_refuse_what_they_cannot_write() -> None:
    with pytest.raises(TypeError):
        write_files_in_c([1], [bytearray(b"x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="as many"):
        write_files_in_c([1, 2], [b"x"])
    with pytest.raises(ValueError, match="non-negative"):
        write_files_in_c([-1], [b"x"])
    assert write_files_in_c([], []) == []


def test_the_writer_writes_with_the_c_twin_when_it_is_built(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        errors = FileIO().write_files([fd, 10_000], [b"one", b"two"])
    finally:
        os.close(fd)
    assert errors[0] is None
    assert isinstance(errors[1], OSError)
    assert errors[1].errno == errno.EBADF
    assert (tmp_path / "f").read_bytes() == b"one"
