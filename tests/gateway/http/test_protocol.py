"""The gathering HTTP protocol: one write per connection per loop pass, nothing held back.

The transport-level tests count what reaches a recording transport; the
wire-level tests run uvicorn with the protocol on a loopback socket and talk
raw HTTP/1.1 (and WebSocket) to it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.asyncio.client import connect

from gateway.http.protocol import (
    FLUSH_AT_BYTES,
    TESTED_UVICORN,
    GatheringHttpProtocol,
    GatheringTransport,
)
from tests.support.inloop_server import read_response, serving

pytestmark = pytest.mark.anyio


class Recording(asyncio.Transport):
    """A transport that keeps each call that would reach the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[bytes]] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.calls.append([bytes(data)])

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append([bytes(d) for d in list_of_data])

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


async def next_pass() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_writes_of_one_pass_reach_the_socket_together_at_its_end() -> None:
    loop = asyncio.get_running_loop()
    first, second = Recording(), Recording()
    a, b = GatheringTransport(first, loop), GatheringTransport(second, loop)
    a.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    b.write(b"head-b")
    a.write(bytearray(b"body"))
    b.write(b"")
    assert first.calls == second.calls == []  # nothing yet: the pass is not over
    assert a.get_write_buffer_size() == 42
    await next_pass()
    assert first.calls == [[b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n", b"body"]]
    assert second.calls == [[b"head-b"]]
    a.write(b"later")  # a later pass is gathered and written again
    await next_pass()
    assert first.calls[-1] == [b"later"]


async def test_a_large_write_goes_at_once_and_close_writes_what_is_gathered() -> None:
    loop = asyncio.get_running_loop()
    raw = Recording()
    t = GatheringTransport(raw, loop)
    t.write(b"head")
    t.write(b"x" * FLUSH_AT_BYTES)
    assert raw.calls == [[b"head", b"x" * FLUSH_AT_BYTES]]
    t.write(b"tail")
    t.close()
    assert raw.calls[-1] == [b"tail"]
    assert raw.closed
    await next_pass()  # the pass's flush finds nothing left to write
    assert len(raw.calls) == 2


async def test_a_lost_connection_forgets_what_it_gathered() -> None:
    raw = Recording()
    t = GatheringTransport(raw, asyncio.get_running_loop())
    t.write(b"never sent")
    t.discard()
    await next_pass()
    assert raw.calls == []


# -- on the wire ------------------------------------------------------------------------


async def sized(request: Request) -> Response:
    n = int(request.query_params.get("n", "5"))
    return Response(request.url.path.encode() + b"." * n, media_type="text/plain")


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


class CountingProxy:
    """Stands between uvicorn's protocol and the real socket transport; counts the calls."""

    def __init__(self, transport: asyncio.Transport, calls: list[bytes]) -> None:
        self._transport = transport
        self._calls = calls

    def write(self, data: bytes) -> None:
        self._calls.append(bytes(data))
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        parts = [bytes(d) for d in list_of_data]
        self._calls.append(b"".join(parts))
        self._transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_each_reply_is_one_call_to_the_socket() -> None:
    calls: list[bytes] = []

    class Counted(GatheringHttpProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CountingProxy(transport, calls))  # type: ignore[arg-type]

    async with serving(Starlette(routes=[Route("/{name}", sized)]), Counted) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for name in ("a", "b"):
            writer.write(get(f"/{name}?n=5000"))
            head, body = await read_response(reader)
            assert body == f"/{name}".encode() + b"." * 5000
            assert calls[-1] == head + body  # head and body in one writev
        assert len(calls) == 2
        writer.close()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(Starlette(routes=[Route("/{name}", sized)])) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/a?n=3") + get("/b?n=70000") + get("/c?n=1"))
        bodies = [(await read_response(reader))[1] for _ in range(3)]
        assert bodies == [b"/a...", b"/b" + b"." * 70000, b"/c."]
        writer.close()


async def test_a_streamed_reply_is_not_held_back() -> None:
    """Each part of a chunked reply leaves in the pass that produced it: the second
    part is only made once the client has the first."""
    client_has_first = asyncio.Event()

    async def parts() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.wait_for(client_has_first.wait(), 5)
        yield b"second"

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(parts(), media_type="text/event-stream")

    async with serving(Starlette(routes=[Route("/s", stream)])) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/s"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        assert await asyncio.wait_for(reader.readuntil(b"first\r\n"), 5) == b"5\r\nfirst\r\n"
        client_has_first.set()
        assert await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5) == (
            b"6\r\nsecond\r\n0\r\n\r\n"
        )
        writer.close()


async def test_a_websocket_upgrade_gets_the_socket_itself() -> None:
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(await ws.receive_text())
        await ws.close()

    app = Starlette(routes=[Route("/r", sized), WebSocketRoute("/ws", echo)])
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/r?n=2"))  # an HTTP request first, on another connection
        assert (await read_response(reader))[1] == b"/r.."
        writer.close()
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"


def test_uvicorn_is_a_release_the_protocol_is_tested_against() -> None:
    installed = Version(importlib.metadata.version("uvicorn"))
    assert installed in SpecifierSet(TESTED_UVICORN), (
        f"uvicorn {installed} is outside {TESTED_UVICORN}: check the internals below, "
        "then widen the range here and in pyproject.toml"
    )
    required = [
        Requirement(r)
        for r in importlib.metadata.requires("tidegate") or []
        if r.startswith("uvicorn")
    ]
    assert [str(r.specifier) for r in required] == [str(SpecifierSet(TESTED_UVICORN))]


def test_the_uvicorn_internals_the_protocol_relies_on_are_still_there() -> None:
    """The protocol swaps the transport uvicorn's HTTP protocol writes through, and
    hands the raw one to the WebSocket protocol on an upgrade. If uvicorn stops
    taking the transport from `self.transport` at those points, replies would
    bypass the gatherer (or an upgrade would write through it): fail loudly."""
    for name in ("connection_made", "data_received", "connection_lost", "shutdown"):
        assert callable(getattr(HttpToolsProtocol, name))
    made = inspect.getsource(HttpToolsProtocol.connection_made)
    assert "self.transport = transport" in made
    headers = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "transport=self.transport" in headers  # each request cycle writes through it
    upgrade = inspect.getsource(HttpToolsProtocol.handle_websocket_upgrade)
    assert "protocol.connection_made(self.transport)" in upgrade
    assert "self.transport.set_protocol(protocol)" in upgrade
