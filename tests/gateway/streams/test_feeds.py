"""Frames a feed writes as they are (byte for byte what the websockets library writes),
and what it counts for them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from gateway.http.tenant_usage import Traffic
from gateway.streams.feeds import Frame as FeedFrame
from gateway.streams.feeds import charge, wire_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_prebuilt_frame_is_the_websockets_librarys_own(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ours = wire_frame(payload)
    theirs = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert ours == theirs


@given(st.lists(st.integers(0, 3), max_size=50), st.integers(0, 5), st.integers(0, 10_000))
def test_a_frame_is_charged_once_for_each_subscriber_that_took_it(
    takers: list[int], count: int, size: int
) -> None:
    tenants = [Traffic() for _ in range(4)]  # equal, unhashable records: told apart by identity
    frame = FeedFrame(0, [], count, 0, 1, size, b"")
    charge(frame, [tenants[i] for i in takers])
    for i, traffic in enumerate(tenants):
        assert traffic.consumed_records == count * takers.count(i)
        assert traffic.consumed_bytes == size * takers.count(i)
