"""uvicorn's httptools protocol, with responses written out once per event-loop pass.

uvicorn writes each response as it goes: its head on `http.response.start`,
its body on `http.response.body`, each a `send` system call at once. On
loopback (and on any busy host) the call that hands bytes to a waiting client
also wakes it, and waking a sleeping process on another core is the dearest
part of a small reply: measured under load, a third of the gateway's CPU per
100-record fetch went to that wake-up, four times what the bare Starlette
endpoint paid, whose client was busy rather than asleep.

So a connection's writes are gathered while the event loop runs the tasks of
one pass and handed to the socket at the end of that pass, the head and body
of a response in one `writev`, the replies of every request answered in the
pass back to back, so that one wake-up of a client serves them all. This is
flush consolidation as Netty's `FlushConsolidationHandler` does it: nothing
waits for a timer, a reply goes out in the same loop pass that produced it or
right at the start of the next, before any new request is read.

Bounded: a connection holds at most `FLUSH_AT_BYTES` before it writes at once,
so a large or streamed reply is written as it is produced and uvicorn's flow
control (which pauses the app when the socket's buffer is full) keeps working.
Order is kept: every write of the HTTP protocol and its request cycles goes
through the one gatherer, which is emptied before the connection reads more,
closes, shuts down or is handed to the WebSocket protocol (which then writes
to the socket directly, as before).

It also tells a request when its connection is lost without the request
spending a task on waiting for `http.disconnect`: `WATCH_DISCONNECT` in the
scope registers a callback. Thousands of long-polls parked on one partition
each kept such a task, and every wake-up paid for cancelling it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TESTED_UVICORN = ">=0.55,<0.56"
"""The uvicorn releases this protocol is tested against (pyproject pins the same range):
it relies on how `HttpToolsProtocol` holds and hands on its transport, which is
not uvicorn's public API (tests/gateway/http/test_protocol.py checks it)."""

FLUSH_AT_BYTES = 64 * 1024
"""Gathered bytes past which a connection writes at once (bounds memory per connection)."""

WATCH_DISCONNECT = "tidegate.watch_disconnect"
"""Scope key of a `DisconnectWatch` on connections this protocol serves (absent elsewhere)."""

DisconnectWatch = Callable[[Callable[[], None]], Callable[[], None] | None]
"""`watch(callback)`: `callback()` runs once if the connection is lost; returns the
function that unregisters it, or None when the connection is already gone."""


class _PassFlusher:
    """The connections with gathered writes on one event loop, written at the end of its pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[GatheringTransport] = []

    def add(self, transport: GatheringTransport) -> None:
        if not self._waiting:
            self._loop.call_soon(self._flush)
        self._waiting.append(transport)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for transport in waiting:
            transport.flush()


_flushers: dict[asyncio.AbstractEventLoop, _PassFlusher] = {}


def _flusher_of(loop: asyncio.AbstractEventLoop) -> _PassFlusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        for stale in [other for other in _flushers if other.is_closed()]:
            del _flushers[stale]
        flusher = _flushers[loop] = _PassFlusher(loop)
    return flusher


class GatheringTransport(asyncio.Transport):
    """A socket transport whose writes wait for the end of the event loop's pass."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self._flusher = _flusher_of(loop)
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._flusher.add(self)
        self._pending.append(data if type(data) is bytes else bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_AT_BYTES:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand what was gathered to the socket now (one `writev`)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        if self.transport.is_closing():  # closed under us: nobody to write to
            return
        if len(pending) == 1:
            self.transport.write(pending[0])
        else:
            self.transport.writelines(pending)

    def discard(self) -> None:
        """Forget what was gathered (the connection is gone)."""
        self._pending = []
        self._pending_bytes = 0

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.discard()
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self._pending_bytes


class GatheringHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose writes go out once per event-loop pass (see the module)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = self.gathering = GatheringTransport(transport, self.loop)
        self._lost = False
        self._lost_watchers: set[Callable[[], None]] = set()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[WATCH_DISCONNECT] = self._watch_disconnect  # type: ignore[literal-required]

    def _watch_disconnect(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        if self._lost:
            return None
        self._lost_watchers.add(callback)
        return functools.partial(self._lost_watchers.discard, callback)

    def data_received(self, data: bytes) -> None:
        self.gathering.flush()  # replies so far leave before anything this data causes
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gathering.discard()
        super().connection_lost(exc)
        self._lost = True
        watchers, self._lost_watchers = self._lost_watchers, set()
        for watcher in watchers:
            watcher()

    def handle_websocket_upgrade(self) -> None:
        self.gathering.flush()
        self.transport = self.gathering.transport  # the WebSocket protocol writes directly
        super().handle_websocket_upgrade()

    def shutdown(self) -> None:
        self.gathering.flush()
        super().shutdown()

    def close_after_response(self) -> None:
        """The reply in progress, if any, says `Connection: close` and closes the
        connection; an idle connection stays open (the server is draining: its
        next request is answered, with a 503, rather than cut off)."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
