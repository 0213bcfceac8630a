"""`tidegate serve`: listen, open the data directory, serve, drain, close, in that order.

The port is bound before anything else happens: a server that cannot listen
says so in one line and leaves the data directory untouched (on a first start
no operator key is spent on a server that never served). Then the app's
lifespan opens storage (which locks the data directory: a second server on it
is refused in one line naming the holder's PID), the tenant directory, and on
a first start prints the operator key; only then does uvicorn serve.

The drain starts at the signal (SIGTERM or SIGINT): readiness turns false,
waiting long-polls are answered with what they have, each request already
accepted gets its answer with `Connection: close`, and every request arriving
from then on is answered 503 `shutting-down` with `Retry-After` and
`Connection: close` (see `runtime_of`), so that no client is left with a
closed connection and no reply. Once the requests accepted before the signal
are answered (at most `drain_timeout_s`) and at least `drain_grace_s` has
passed, the listener and then the idle connections close, and the lifespan
closes the log cleanly.

Exit codes: 0 after a shutdown by signal, 2 for bad settings (cli), 3 when
start-up fails (port in use, data directory in use, storage cannot open).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.http import logredact
from gateway.http.connlimits import (
    ConnectionLimits,
    limited_protocol,
    raise_fd_limit,
    raise_soft_limit,
    segment_file_bound,
)
from gateway.http.protocol import GatheringHttpProtocol
from gateway.http.runtime import Drain
from gateway.http.settings import Settings
from gateway.http.wsprotocol import stream_websocket_protocol
from storage.errors import StorageError
from tenants.errors import TenantError

EXIT_OK = 0
EXIT_SETTINGS = 2
EXIT_STARTUP = 3
BACKLOG = 2048  # uvicorn's default
LAST_ARRIVALS_S = 0.1


class _DrainingServer(uvicorn.Server):
    """A uvicorn server whose shutdown answers every request it accepted.

    uvicorn's own shutdown closes the listener and every idle keep-alive
    connection at once: a request the client had just sent on one, or that
    sat in the listener's backlog, is dropped without a reply. Here the
    listener stays open and idle connections stay up until the requests
    accepted before the signal are answered; whatever arrives meanwhile gets
    a quick 503 that closes its connection.
    """

    def __init__(
        self, config: uvicorn.Config, drain: Drain, *, grace_s: float, drain_timeout_s: float
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._grace_s = grace_s
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepted: set[asyncio.Task[None]] = set()
        self._drain_began = 0.0
        self._forced = asyncio.Event()  # a second SIGINT: stop waiting

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._forced = asyncio.Event()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.should_exit
        super().handle_exit(sig, frame)
        # uvicorn re-raises a caught signal once it has shut down, so the process
        # would end with 128 + the signal's number; a drained gateway exits 0.
        self._captured_signals.clear()
        if self._loop is None or self._loop.is_closed():
            return
        if first:
            self._loop.call_soon_threadsafe(self._begin_drain)
        elif self.force_exit:
            self._loop.call_soon_threadsafe(self._forced.set)

    def _begin_drain(self) -> None:
        """Mark the requests accepted so far, make their replies close, then drain.

        In one loop callback, so a request is either accepted before the drain
        (and answered) or arrives after it (and is answered 503)."""
        if self._drain.started:
            return
        self._drain_began = time.monotonic()
        self._accepted = set(self.server_state.tasks)
        for connection in list(self.server_state.connections):
            if isinstance(connection, GatheringHttpProtocol):
                connection.close_after_response()
        self._drain.begin()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._begin_drain()
        await self._wait_accepted(self._drain_timeout_s)
        # At least the grace, shorter than the 503's Retry-After: a client told to come
        # back finds the listener closed (refused: nothing sent), not closing under it.
        await self._pause(self._drain_began + self._grace_s - time.monotonic())
        for server in self.servers:
            server.close()
        # A connection accepted just before the listener closed gets a moment to
        # deliver its request (answered 503) before idle connections are closed.
        await self._pause(LAST_ARRIVALS_S)
        await super().shutdown(sockets)

    async def _wait_accepted(self, timeout_s: float) -> None:
        """Until the requests accepted before the drain are answered, the timeout,
        or a second SIGINT (uvicorn's force-quit)."""
        if not self._accepted:
            return
        answered = asyncio.ensure_future(asyncio.wait(self._accepted))
        forced = asyncio.ensure_future(self._forced.wait())
        await asyncio.wait({answered, forced}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        answered.cancel()
        forced.cancel()

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless a second SIGINT asks to quit now."""
        if seconds > 0 and not self.force_exit:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forced.wait(), seconds)


def open_files_bound(settings: Settings, limit: int) -> int:
    """Descriptors the file engine's segment files may take at most under the
    descriptor `limit`: its bound, and half as much again while its writers sync
    (storage.embedded.openfiles)."""
    if settings.storage != "file":
        return 0
    return segment_file_bound(settings.max_open_files, settings.max_connections, limit) * 3 // 2


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`; OSError if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


async def _run(app: Starlette, server: _DrainingServer, sock: socket.socket) -> int:
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app.router.lifespan_context(app))
        except (StorageError, TenantError, OSError, ValueError) as exc:
            sock.close()
            print(f"tidegate: cannot start: {exc}", file=sys.stderr)
            return EXIT_STARTUP
        await server.serve(sockets=[sock])
    return EXIT_OK


def serve(settings: Settings) -> int:
    try:
        sock = listen(settings.host, settings.port)
    except OSError as exc:
        print(
            f"tidegate: cannot listen on {settings.host}:{settings.port}: {_reason(exc)}",
            file=sys.stderr,
        )
        return EXIT_STARTUP
    app = create_app(settings, own_process=True)
    limits = ConnectionLimits(
        head_timeout_s=settings.head_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        body_min_bytes_per_s=settings.body_min_bytes_per_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=raise_fd_limit(
            settings.max_connections, reserved=open_files_bound(settings, raise_soft_limit())
        ),
    )
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=limited_protocol(limits, app.state.metrics),
        ws=stream_websocket_protocol(settings.stream_send_buffer_bytes),
        ws_max_size=settings.stream_max_message_bytes,
        ws_per_message_deflate=settings.stream_compression,
        ws_ping_interval=settings.stream_ping_interval_s,
        ws_ping_timeout=settings.stream_ping_timeout_s,
        lifespan="off",  # driven by `_run`, so that its failures are one line
        log_level=settings.log_level,
        # The root handler (gateway.http.logs) writes uvicorn's records too, and the
        # app's own access log (`tidegate.access`) replaces uvicorn's.
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
    )
    # uvicorn configured its loggers in Config(); filter them before the first request.
    logredact.install("uvicorn.access", "uvicorn.error", "tidegate")
    server = _DrainingServer(
        config,
        app.state.drain,
        grace_s=settings.drain_grace_s,
        drain_timeout_s=settings.drain_timeout_s,
    )
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(_run(app, server, sock))
