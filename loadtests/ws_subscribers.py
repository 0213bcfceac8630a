"""Lean WebSocket subscribers for the stream benchmark: many connections in one process,
so that the load generator costs the shared cores as little as it honestly can.

Each subscriber is an asyncio protocol (uvloop where it is installed) that does
the RFC 6455 client handshake itself and then reads frames with the least
parsing that is still correct: the frame header (opcode, length) to find where
each frame ends, to answer pings and to see a close. Records are counted by
the `"t":` member that every benchmark value carries (`{"t": <send time ns>}`),
found with `bytes.count` over the complete frames of a read, never by decoding
the JSON; both servers' messages carry it the same way (Tidegate inside its
`records` frame, Nchan as the whole message), so both are measured alike.
Every `sample`-th subscriber also takes its records' send times (a regular
expression over the same bytes) to compute end-to-end latency: receive time
minus send time, on the one clock of this machine.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from array import array
from collections.abc import Callable
from urllib.parse import urlsplit

MARKER = b'"t":'
SEND_TIMES = re.compile(rb'"t":(\d+)')
OP_CLOSE, OP_PING = 0x8, 0x9


def handshake(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    """Host, port and the HTTP upgrade request of a `ws://` URL."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (mask key zero: the payload goes as it is) of < 126 bytes."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


class Totals:
    """What one process's subscribers have seen."""

    def __init__(self, expected: int = 0) -> None:
        self.ready = 0
        self.records = 0
        self.expected = expected  # records due in all (0: none)
        self.complete = asyncio.Event()  # set once they have all arrived
        self.latencies_ms: array[float] = array("d")
        self.failures: list[str] = []


class Subscriber(asyncio.Protocol):
    """One connection: handshake, then count records (and time them, if sampled).
    `greeting`: frames the server sends before any record (Tidegate's `subscribed`)."""

    def __init__(self, request: bytes, greeting: int, sampled: bool, totals: Totals) -> None:
        self.request = request
        self.greeting = greeting
        self.sampled = sampled
        self.totals = totals
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribing: {exc!r}"))

    def _subscribed(self) -> None:
        if not self.ready.done():
            self.totals.ready += 1
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:end]).split(b"\r\n", 1)[0]
            if status.split(b" ")[1:2] != [b"101"]:
                self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            del buffer[: end + 4]
            self.upgraded = True
            if not self.greeting:
                self._subscribed()
        size, pos, frames = len(buffer), 0, 0
        while size - pos >= 2:
            length, head = buffer[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            opcode = buffer[pos] & 0x0F
            if opcode == OP_PING:
                self.transport.write(client_frame(0xA, bytes(buffer[pos + head : end])))  # type: ignore[union-attr]
            elif opcode == OP_CLOSE:
                self.transport.write(client_frame(OP_CLOSE, b""))  # type: ignore[union-attr]
                self.transport.close()  # type: ignore[union-attr]
            elif opcode < 0x8:
                frames += 1
            pos = end
        if not pos:
            return
        totals = self.totals
        if self.greeting:
            taken = min(self.greeting, frames)
            self.greeting -= taken
            if not self.greeting:
                self._subscribed()
        totals.records += buffer.count(MARKER, 0, pos)
        if totals.expected and totals.records >= totals.expected:
            totals.complete.set()
        if self.sampled:
            now = time.time_ns()
            append = totals.latencies_ms.append
            for sent in SEND_TIMES.findall(buffer, 0, pos):
                append((now - int(sent)) / 1e6)
        del buffer[:pos]


async def open_subscribers(
    url: str,
    headers: dict[str, str],
    count: int,
    *,
    greeting: int,
    sample: int,
    totals: Totals,
    in_flight: int = 100,
    timeout_s: float = 120.0,
) -> list[Subscriber]:
    """Open `count` subscribers, at most `in_flight` handshakes at a time, and wait
    until every one has subscribed (or raise the first failure)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(in_flight)
    opened: list[Subscriber] = []

    async def one(i: int) -> None:
        async with gate:
            host, port, request = handshake(url, headers)
            factory: Callable[[], Subscriber] = lambda: Subscriber(  # noqa: E731
                request, greeting, i % sample == 0, totals
            )
            _transport, protocol = await loop.create_connection(factory, host, port)
            opened.append(protocol)
            await protocol.ready

    async with asyncio.timeout(timeout_s):
        await asyncio.gather(*(one(i) for i in range(count)))
    return opened


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (cheaper per read), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
