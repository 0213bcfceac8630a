"""Frames a feed writes as they are: byte for byte what the websockets library writes."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from gateway.streams.feeds import wire_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_prebuilt_frame_is_the_websockets_librarys_own(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ours = wire_frame(payload)
    theirs = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert ours == theirs
