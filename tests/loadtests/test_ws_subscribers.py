"""The stream benchmark's lean subscribers count and time what a server sends, however
its bytes are cut, and answer its pings (a real loopback server, the `websockets`
library's own frames)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from websockets.frames import Frame, Opcode

from loadtests.ws_subscribers import Totals, open_subscribers

pytestmark = pytest.mark.anyio

HANDSHAKE_REPLY = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: x\r\n\r\n"
)


def text(document: object) -> bytes:
    return Frame(Opcode.TEXT, orjson.dumps(document)).serialize(mask=False, extensions=[])


@pytest.mark.parametrize("cut", [1, 7, 100_000])
async def test_records_are_counted_and_timed_across_cuts_and_pings_answered(cut: int) -> None:
    pongs: list[bytes] = []
    sent_at = time.time_ns() - 5_000_000  # 5 ms ago
    stream = text({"type": "subscribed"})  # the greeting: not a record
    for i in range(20):  # 1 to 3 records a frame, and a big one
        count = 1 + i % 3
        stream += text({"records": [{"value": {"t": sent_at}} for _ in range(count)]})
    stream += Frame(Opcode.PING, b"pi").serialize(mask=False, extensions=[])
    stream += text({"records": [{"value": {"t": sent_at}, "pad": "x" * 70_000}]})
    expected = sum(1 + i % 3 for i in range(20)) + 1

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HANDSHAKE_REPLY)
        for start in range(0, len(stream), cut):
            writer.write(stream[start : start + cut])
            await writer.drain()
        pongs.append(await reader.readexactly(2 + 4 + 2))  # masked, zero key
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        totals = Totals(expected * 2)
        url = f"ws://127.0.0.1:{port}/s"
        opened = await open_subscribers(url, {}, 2, greeting=1, sample=2, totals=totals)
        await asyncio.wait_for(totals.complete.wait(), 10)
        await asyncio.sleep(0.05)
        for subscriber in opened:
            assert subscriber.transport is not None
            subscriber.transport.close()
    assert totals.ready == 2
    assert totals.records == expected * 2
    assert len(totals.latencies_ms) == expected  # the first subscriber only
    assert all(5 <= ms < 5_000 for ms in totals.latencies_ms)
    assert pongs == [b"\x8a\x82\0\0\0\0pi"] * 2


async def test_a_refused_handshake_is_an_error() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(ConnectionError, match="403"):
            await open_subscribers(
                f"ws://127.0.0.1:{port}/s", {}, 1, greeting=0, sample=1, totals=Totals()
            )
