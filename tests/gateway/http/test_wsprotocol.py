"""The uvicorn internals the stream protocol (gateway.http.wsprotocol) builds on.

The live stream tests exercise the protocol end to end; these fail loudly, and
say where, if a uvicorn release moves what it relies on."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from gateway.http.wsprotocol import (
    StreamWebSocketProtocol,
    _Flag,
    _Inbox,
    stream_websocket_protocol,
)


def _source(name: str) -> str:
    return inspect.getsource(getattr(WebSocketsSansIOProtocol, name))


def test_the_handshake_is_parsed_kept_and_answered_where_the_protocol_expects() -> None:
    connect = _source("handle_connect")
    assert "self.request = event" in connect  # dropped once handled
    assert "self.scope" in connect
    assert '"extensions"' in connect
    send = _source("send")
    answer = send.index("self.conn.send_response(self.response)")
    keepalive = send.index("self.start_keepalive()")
    assert answer < keepalive  # the answer is written before the response is dropped
    module = inspect.getsource(inspect.getmodule(WebSocketsSansIOProtocol))  # type: ignore[arg-type]
    uses = [line.strip() for line in module.splitlines() if "self.request" in line]
    assert uses == ["self.request = event"]  # nothing reads it after the handshake


def test_what_a_prebuilt_frame_checks_is_what_uvicorn_sets() -> None:
    # Every way uvicorn stops sending either sets close_sent or closes the transport.
    for name in ("keepalive_timeout", "handle_parser_exception", "handle_handshake_exception"):
        body = _source(name)
        assert "self.close_sent = True" in body, name
        assert "self.transport.close()" in body, name
    assert "self.transport.close()" in _source("handle_close")
    assert "self.writable.clear()" in _source("pause_writing")
    assert "self.writable.set()" in _source("resume_writing")


def test_each_server_gets_its_own_bound() -> None:
    small, large = stream_websocket_protocol(1024), stream_websocket_protocol(1 << 20)
    assert issubclass(small, StreamWebSocketProtocol)
    assert (small.send_buffer_bytes, large.send_buffer_bytes) == (1024, 1 << 20)
    assert small._paused is False  # a new connection's frames may go


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.written.append(data)


@pytest.mark.anyio
async def test_a_prebuilt_frame_goes_only_while_the_connection_takes_frames() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        pass

    protocol = stream_websocket_protocol(1024)(
        config=Config(app=app, ws="websockets-sansio"), server_state=ServerState(), app_state={}
    )
    transport = _Transport()
    protocol.transport = transport  # type: ignore[assignment]
    handle = protocol.stream_handle()
    assert handle.write_frame(b"1")
    protocol.pause_writing()  # the send buffer is past its bound
    assert not handle.write_frame(b"2")
    protocol.resume_writing()
    assert handle.write_frame(b"3")
    protocol.close_sent = True  # as uvicorn marks every way it stops sending
    assert not handle.write_frame(b"4")
    protocol.close_sent = False
    transport.closing = True
    assert not handle.write_frame(b"5")
    assert transport.written == [b"1", b"3"]


def test_the_lighter_inbox_and_flag_have_all_that_uvicorn_uses_of_them() -> None:
    module = inspect.getsource(inspect.getmodule(WebSocketsSansIOProtocol))  # type: ignore[arg-type]
    for attribute, stand_in in (("queue", _Inbox), ("writable", _Flag)):
        used = set(re.findall(rf"self\.{attribute}\.(\w+)", module))
        assert used, attribute
        assert all(callable(getattr(stand_in, name, None)) for name in used), (attribute, used)


@pytest.mark.anyio
async def test_the_inbox_hands_out_messages_in_order_to_a_waiting_reader() -> None:
    inbox = _Inbox()
    reader = asyncio.ensure_future(asyncio.gather(inbox.get(), inbox.get()))
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert await asyncio.wait_for(reader, 5) == ["a", "b"]
    assert inbox.empty()


@pytest.mark.anyio
async def test_the_flag_wakes_its_waiters_when_set() -> None:
    flag = _Flag(False)
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    assert await asyncio.wait_for(waiter, 5) is True
    flag.clear()
    assert not flag.is_set()
