"""The batch codec: what goes in comes out byte for byte; damage is always detected."""

from __future__ import annotations

import threading
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.embedded.checksum import IMPLEMENTATION, crc32, reference_crc32
from storage.embedded.codec import (
    CRC_AT,
    HEADER_SIZE,
    CodecError,
    crc_matches,
    decode_records,
    encode_batch,
    read_prefix,
    validate_batch,
    with_base_offset,
)
from storage.records import NewRecord

optional_bytes = st.none() | st.binary(max_size=300)
header = st.tuples(st.text(min_size=0, max_size=20), st.binary(max_size=50))
records = st.lists(
    st.builds(
        NewRecord,
        value=optional_bytes,
        key=optional_bytes,
        headers=st.lists(header, max_size=12).map(tuple),
        timestamp=st.none() | st.integers(min_value=0, max_value=2**62),
    ),
    min_size=1,
    max_size=40,
)


# No per-example deadline: these machines are shared, and a slow example is not a wrong one.
@settings(deadline=None)
@given(records, st.integers(min_value=0, max_value=2**62), st.integers(0, 2**40))
def test_round_trip_is_byte_identical(
    batch: list[NewRecord], now_ms: int, base_offset: int
) -> None:
    encoded = with_base_offset(encode_batch(batch, now_ms=now_ms), base_offset)
    header_, decoded = decode_records(encoded)
    assert header_.base_offset == base_offset
    assert header_.record_count == len(batch)
    assert read_prefix(encoded) == (base_offset, len(encoded))
    for i, (sent, got) in enumerate(zip(batch, decoded, strict=True)):
        assert got.offset == base_offset + i
        assert got.key == sent.key  # None stays None, b"" stays b""
        assert got.value == sent.value
        assert got.headers == sent.headers  # order and repeated names kept
        assert got.timestamp == (now_ms if sent.timestamp is None else sent.timestamp)
    stamped = [r.timestamp for r in decoded]
    assert header_.first_timestamp == stamped[0]
    assert header_.max_timestamp == max(stamped)


@settings(deadline=None)
@given(records, st.integers(min_value=0, max_value=2**40))
def test_min_offset_skips_earlier_records(batch: list[NewRecord], skip: int) -> None:
    encoded = with_base_offset(encode_batch(batch, now_ms=1), 100)
    _, decoded = decode_records(encoded, min_offset=100 + skip)
    assert [r.offset for r in decoded] == list(range(100 + skip, 100 + len(batch)))


@settings(max_examples=300, deadline=None)
@given(records, st.data())
def test_every_single_bit_flip_under_the_crc_is_detected(
    batch: list[NewRecord], data: st.DataObject
) -> None:
    encoded = bytearray(encode_batch(batch, now_ms=5))
    position = data.draw(st.integers(min_value=8, max_value=len(encoded) - 1))
    encoded[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CodecError):
        validate_batch(bytes(encoded))


@settings(deadline=None)
@given(records, st.data())
def test_any_truncation_is_detected(batch: list[NewRecord], data: st.DataObject) -> None:
    encoded = encode_batch(batch, now_ms=5)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(CodecError):
        validate_batch(encoded[:cut])


def test_unicode_and_binary_survive() -> None:
    rec = NewRecord(
        value=bytes(range(256)),
        key="ключ-🔑".encode(),
        headers=(("trace", b"\x00\xff"), ("trace", b""), ("名前", "値".encode())),
        timestamp=0,
    )
    _, (got,) = decode_records(encode_batch([rec], now_ms=9))
    assert (got.value, got.key, got.headers, got.timestamp) == (
        rec.value,
        rec.key,
        rec.headers,
        0,
    )


def test_an_empty_batch_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        encode_batch([], now_ms=0)


def test_header_size_is_the_documented_layout() -> None:
    assert HEADER_SIZE == 38


@given(st.integers(0, 10_000), st.integers(0, 7))
def test_a_flipped_bit_under_the_crc_or_in_it_fails_the_quick_check(where: int, bit: int) -> None:
    batch = encode_batch([NewRecord(b"value", b"key"), NewRecord(None)], now_ms=7, base_offset=3)
    assert crc_matches(batch)
    assert crc_matches(memoryview(batch))
    position = CRC_AT + where % (len(batch) - CRC_AT)
    damaged = bytearray(batch)
    damaged[position] ^= 1 << bit
    assert not crc_matches(bytes(damaged))


@given(st.binary(max_size=20_000), st.binary(max_size=64), st.sampled_from([0, 1, 7, 4096]))
def test_the_checksum_is_zlibs_crc32_whichever_implementation_computes_it(
    data: bytes, prefix: bytes, skip: int
) -> None:
    """Batches written with one implementation are read with the other: same function,
    on bytes and on memoryviews, chained or whole."""
    assert IMPLEMENTATION in {"isal", "binascii"}
    assert crc32(data) == reference_crc32(data) == zlib.crc32(data)
    view = memoryview(prefix + data)[skip:]
    assert crc32(view) == reference_crc32(view)
    assert crc32(data, crc32(prefix)) == zlib.crc32(prefix + data)


def test_the_fast_checksum_is_in_use_where_isal_is_installed() -> None:
    pytest.importorskip("isal")
    assert IMPLEMENTATION == "isal"


def test_the_checksum_of_a_large_batch_keeps_the_gil() -> None:
    """A thread that only waits for the GIL cannot run during one checksum call:
    the event loop is not handed to a shard writer in the middle of a request."""
    ran = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ran[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        while ran[0] == 0:
            time.sleep(0.001)
        data = b"\xa5" * (1 << 20)
        for _ in range(5):
            before = ran[0]
            value = crc32(data)
            assert ran[0] == before
        assert value == zlib.crc32(data)
    finally:
        stop.set()
        spinner.join()
