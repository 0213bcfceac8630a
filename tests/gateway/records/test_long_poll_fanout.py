"""Many long-polls parked at one position: what each holds while it waits, and one wake-up.

The gateway runs in this process under uvicorn with its own protocol on a
loopback socket, so the test can count the event loop's tasks: a parked
fetch is its request's task and nothing more (it used to be four: the
request's, one waiting for the log, one for a disconnect and one for the
drain, and every wake-up paid for cancelling three).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.http.protocol import GatheringHttpProtocol
from gateway.http.settings import Settings

pytestmark = pytest.mark.anyio

KEY = "tg_fanout_test_key_0123456789abcdef"
WAITERS = 200


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[int]:
    """The gateway under uvicorn (its lifespan on) on a free loopback port, in this loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=GatheringHttpProtocol, lifespan="on", log_config=None, access_log=False
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


async def reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return int(head.split(b" ")[1]), await reader.readexactly(length)


async def wait_until(check: object, what: str) -> None:
    for _ in range(1000):  # bounded: 10 s
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_parked_long_polls_hold_one_task_each_and_wake_together(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bootstrap_key=KEY)  # type: ignore[arg-type]
    app = create_app(settings)
    metrics = app.state.metrics
    async with serving(app) as port:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=base, headers=auth) as api:
            r = await api.post("/v1/topics", json={"name": "fan", "partitions": 1})
            assert r.status_code == 201, r.text
            streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(WAITERS)]
            idle_tasks = len(asyncio.all_tasks())
            request = (
                "GET /v1/topics/fan/partitions/0/records?offset=0&max_wait_ms=20000 HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer {KEY}\r\n\r\n"
            ).encode()
            for _reader, writer in streams:
                writer.write(request)
            await wait_until(lambda: metrics.longpoll_waiters == WAITERS, "fetches did not park")
            parked_tasks = len(asyncio.all_tasks()) - idle_tasks
            assert parked_tasks <= WAITERS + 5, parked_tasks  # one task a parked fetch

            r = await api.post("/v1/topics/fan/records", json={"records": [{"value": "wake"}]})
            assert r.status_code == 200, r.text
            replies = await asyncio.wait_for(
                asyncio.gather(*(reply(reader) for reader, _writer in streams)), 20
            )
            assert {status for status, _body in replies} == {200}
            assert len({body for _status, body in replies}) == 1  # one read, the same bytes
            assert b'"value":"wake"' in replies[0][1]
            assert metrics.longpoll_waiters == 0

            # Gone while parked: each leaves at once and frees its waiter.
            for _reader, writer in streams:
                writer.write(request.replace(b"offset=0", b"offset=1"))
            await wait_until(lambda: metrics.longpoll_waiters == WAITERS, "fetches did not park")
            for _reader, writer in streams[: WAITERS // 2]:
                writer.close()
            await wait_until(
                lambda: metrics.longpoll_waiters == WAITERS - WAITERS // 2, "waiters leaked"
            )
            # The drain answers the rest at once, with no records.
            app.state.drain.begin()
            drained = await asyncio.wait_for(
                asyncio.gather(*(reply(reader) for reader, _writer in streams[WAITERS // 2 :])),
                20,
            )
            assert {status for status, _body in drained} == {200}
            assert all(b'"records":[]' in body for _status, body in drained)
            assert metrics.longpoll_waiters == 0
            for _reader, writer in streams[WAITERS // 2 :]:
                writer.close()
