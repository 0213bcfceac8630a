"""Many long-polls parked at one position: what each holds while it waits, and one wake-up.

The gateway runs in this process under uvicorn with its own protocol on a
loopback socket, so the test can count the event loop's tasks: a parked
fetch is its request's task and nothing more (it used to be four: the
request's, one waiting for the log, one for a disconnect and one for the
drain, and every wake-up paid for cancelling three).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.http.settings import Settings
from tests.support.inloop_server import read_response, serving, status_of
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

KEY = "tg_fanout_test_key_0123456789abcdef"
WAITERS = 200


async def reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head, body = await read_response(reader)
    return status_of(head), body


async def test_parked_long_polls_hold_one_task_each_and_wake_together(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bootstrap_key=KEY)  # type: ignore[arg-type]
    app = create_app(settings)
    metrics = app.state.metrics
    async with serving(app, lifespan="on") as port:
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
