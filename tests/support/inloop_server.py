"""uvicorn serving an app on a free loopback port inside the test's own event loop.

For tests that must see the server's side while clients talk to it over a
real socket (the tasks a parked fetch holds, the writes a connection makes).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn

from gateway.http.protocol import GatheringHttpProtocol


@asynccontextmanager
async def serving(
    app: Any,
    protocol: type[GatheringHttpProtocol] = GatheringHttpProtocol,
    *,
    lifespan: Literal["on", "off"] = "off",
) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http=protocol,
        ws="websockets-sansio",
        lifespan=lifespan,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):  # bounded: 10 s
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        sock.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response with a Content-Length: its head and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


def status_of(head: bytes) -> int:
    return int(head.split(b" ")[1])
