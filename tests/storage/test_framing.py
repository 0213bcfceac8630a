"""The C batch framing (`storage/embedded/_framing.c`) against the reference.

`codec.frame_batch` says what a batch is; `codec.frame` is the C twin when it
is built, and must give the same bytes for every batch the reference frames and
refuse every one it refuses. `make sanitize` runs these under ASan and UBSan.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.embedded import codec
from storage.embedded.codec import decode_records, frame_batch, validate_batch, with_base_offset
from storage.records import NewRecord, PackedRecords, pack_records

try:
    from storage.embedded._framing import frame as frame_in_c
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
