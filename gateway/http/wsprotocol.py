"""uvicorn's WebSocket protocol (the `websockets` library's sans-I/O core) with the
bounds a live stream needs from below the application.

- a bounded send buffer: the transport pauses the stream's sends once
  `send_buffer_bytes` are queued (the transport's high-water mark), so a
  client that does not read stops receiving; what the server holds for it is
  that buffer and one frame, whatever the produce rate.
- frames written as they are: a stream may hand `write_frame` the bytes of
  a whole data frame, built once for every subscriber of the same records
  (exactly what the protocol would write for that text message on a
  connection without extensions), instead of a message that would be
  framed again for each connection. Refused (False) when the connection
  negotiated an extension (permessage-deflate), is closing, or its send
  buffer is full, so the caller sends by ASGI or waits instead.
- less memory per connection, which an idle stream holds for as long as it
  is open: the handshake's request and response dropped once answered, and
  a lighter inbox and writable flag in place of uvicorn's `asyncio.Queue`
  and `asyncio.Event` (the same uses, without their idle deques).
- a way to drop a client that does not read: closing a connection waits for
  its queued bytes to leave, which they never do for a client that reads
  nothing, so the stream can `abort()` it through the ASGI scope extension
  `TRANSPORT_EXTENSION`; a ping that gets no pong in time aborts too.

`tidegate serve` runs it; under plain uvicorn (`--ws websockets-sansio`) streams
work the same with uvicorn's own buffer limits, and a stalled client is closed
(its socket lingers until the client goes). It relies on uvicorn internals:
uvicorn is pinned (`protocol.TESTED_UVICORN`), and tests/gateway/http/
test_wsprotocol.py fails loudly if they move.
"""

from __future__ import annotations

from asyncio import BaseTransport, Future, Transport, get_running_loop
from collections import deque
from typing import Any, ClassVar, Protocol, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

TRANSPORT_EXTENSION = "tidegate.transport"
"""Scope extension of WebSocket connections this protocol serves (absent elsewhere)."""


class StreamTransport(Protocol):
    """What a stream may do to its connection below ASGI."""

    def abort(self) -> None:
        """Drop the connection now, queued bytes and all."""

    def write_buffer_size(self) -> int:
        """Bytes queued in the server for this connection."""

    def write_frame(self, frame: bytes) -> bool:
        """Write a whole unmasked data frame now; False when it cannot go (see module)."""


class _Handle:
    """The connection as a stream sees it. `refused` is the protocol's `paused` or
    `close_sent`, kept here by the protocol as either changes, so that a feed's
    delivery reads one slot of this small object rather than two attributes of the
    protocol's large instance dictionary (once per subscriber and frame)."""

    __slots__ = ("_transport", "refused")

    def __init__(self, transport: Transport, refused: bool) -> None:
        self._transport = transport
        self.refused = refused

    def abort(self) -> None:
        self._transport.abort()

    def write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def write_frame(self, frame: bytes) -> bool:
        # Per delivery of a feed: flags only. A close the client sent, a parser error, a
        # ping timeout and a lost connection all close the transport; the app's own
        # close comes after its stream has stopped writing frames.
        transport = self._transport
        if self.refused or transport.is_closing():
            return False
        transport.write(frame)
        return True


class _Parking:
    """Futures parked until the next wake-up, the list kept only while someone waits
    (an idle stream's inbox and flag must cost next to nothing)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[Future[None]] | None = None

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def _park(self) -> None:
        waiter = get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class _Inbox(_Parking):
    """What uvicorn's protocol uses of an `asyncio.Queue` (`put_nowait`, `get`, `empty`)
    for the messages its application receives, at a tenth of the memory: an idle
    stream holds one of these for as long as it is open."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: deque[Any] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake()

    async def get(self) -> Any:
        while not self._items:
            await self._park()
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item


class _Flag(_Parking):
    """What uvicorn's protocol uses of an `asyncio.Event` (`set`, `clear`, `is_set`,
    `wait`), its waiters kept only while there are some."""

    __slots__ = ("_set",)

    def __init__(self, value: bool) -> None:
        super().__init__()
        self._set = value

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._wake()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            await self._park()
        return True


class StreamWebSocketProtocol(WebSocketsSansIOProtocol):
    """The sans-I/O WebSocket protocol with a bounded send buffer and `abort()`.
    Build with `stream_websocket_protocol`."""

    send_buffer_bytes: ClassVar[int]
    _paused = False  # the transport's buffer is past the bound (or frames cannot go as they are)
    _close_sent = False
    _handle: _Handle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same uses, in less memory per connection (an idle one keeps them).
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag(True)  # type: ignore[assignment]

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        # Pause the app's sends past the bound; resume once a quarter of it is left.
        cast(Transport, transport).set_write_buffer_limits(
            high=self.send_buffer_bytes, low=self.send_buffer_bytes // 4
        )

    # `paused` and `close_sent` (uvicorn sets the latter wherever it stops sending) are
    # properties so that the stream's handle learns of every change.
    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        if self._handle is not None:
            self._handle.refused = value or self._close_sent

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @close_sent.setter
    def close_sent(self, value: bool) -> None:
        self._close_sent = value
        if self._handle is not None:
            self._handle.refused = self._paused or value

    def stream_handle(self) -> _Handle:
        """The connection's handle for its stream (one a connection; made once)."""
        if self._handle is None:
            self._handle = _Handle(self.transport, self._paused or self._close_sent)
        return self._handle

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = bool(self.conn.extensions)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # Frames built for a connection without extensions are not this one's.
        self.paused = bool(self.conn.extensions)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake went on to the application
            scope["extensions"][TRANSPORT_EXTENSION] = self.stream_handle()
        # The parsed handshake is not needed once answered (the scope has the headers);
        # its request stays referenced by the parser, so its headers are emptied.
        del self.request
        event.headers.clear()

    def start_keepalive(self) -> None:
        super().start_keepalive()  # called once the handshake's answer is written
        del self.response

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self.transport.abort()  # a client that answers no ping may read nothing either


def stream_websocket_protocol(send_buffer_bytes: int) -> type[StreamWebSocketProtocol]:
    """The protocol class uvicorn instantiates per WebSocket connection."""
    return type(
        "StreamWebSocketProtocol",
        (StreamWebSocketProtocol,),
        {"send_buffer_bytes": send_buffer_bytes},
    )
