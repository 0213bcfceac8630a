"""Streams through each way the gateway is served (tidegate serve's own protocols, plain
uvicorn), their end at a graceful shutdown, and tokens in URLs kept out of the logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import BOOTSTRAP_KEY, REPO, GatewayProcess, free_port
from tests.support.streams import frame, in_order_once, produce, sse_records, ws_records
from tests.support.waiting import poll_until

pytestmark = pytest.mark.anyio
HEADERS = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


@pytest.fixture
def plain_uvicorn(tmp_path: Path) -> Iterator[str]:
    """The app under stock uvicorn (its httptools and websockets-sansio protocols)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env |= {"TIDEGATE_BOOTSTRAP_KEY": BOOTSTRAP_KEY, "TIDEGATE_DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gateway.app:app_from_environment",
            "--http",
            "httptools",
            "--ws",
            "websockets-sansio",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> int:
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code
        except httpx.TransportError:
            return 0

    try:
        poll_until(ready, lambda s: s == 200, what="uvicorn ready", timeout_s=20)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def follow_both(url: str, topic: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as http:
        assert (
            await http.post("/v1/topics", json={"name": topic, "partitions": 2})
        ).status_code == 201
        ws_url = url.replace("http://", "ws://") + f"/v1/topics/{topic}/stream"
        async with connect(ws_url, additional_headers=HEADERS) as ws:
            assert (await frame(ws))["type"] == "subscribed"
            async with aconnect_sse(http, "GET", f"/v1/topics/{topic}/events") as source:
                events = source.aiter_sse()
                assert (await anext(events)).event == "subscribed"
                await produce(http, topic, list(range(200)))
                over_ws = await ws_records(ws, 200)
                over_sse, _ = await sse_records(events, 200)
    for seen in (over_ws, over_sse):
        assert sorted(v for _p, _o, v in seen) == list(range(200))
        assert in_order_once(seen)


async def test_streams_work_under_plain_uvicorn(plain_uvicorn: str) -> None:
    await follow_both(plain_uvicorn, "plain")


async def test_streams_work_under_tidegate_serve(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        await follow_both(server.url, "served")
    finally:
        server.stop()


async def test_shutdown_closes_every_stream_with_1001_and_where_to_resume(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
            assert (await http.post("/v1/topics", json={"name": "t"})).status_code == 201
            await produce(http, "t", list(range(20)))
            url = f"ws://127.0.0.1:{server.port}/v1/topics/t/stream?from=earliest"
            async with connect(url, additional_headers=HEADERS) as ws:
                await frame(ws)
                await ws_records(ws, 20)
                params = {"from": "earliest"}
                async with aconnect_sse(http, "GET", "/v1/topics/t/events", params=params) as sse:
                    events = sse.aiter_sse()
                    _seen, last_id = await sse_records(events, 20)
                    assert server.proc is not None
                    server.proc.send_signal(signal.SIGTERM)
                    closing = await frame(ws)
                    with pytest.raises(ConnectionClosed) as closed:
                        await frame(ws)
                    rest = [e async for e in events]  # the event stream ends
        assert closing == {
            "type": "closing",
            "code": 1001,
            "reason": "server shutting down",
            "from": "0:20",
        }
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        assert closed.value.rcvd.reason == "server shutting down; resume from=0:20"
        assert (last_id, [e.event for e in rest]) == ("0:20", [])
        assert server.proc.wait(15) == 0
    finally:
        server.stop()


async def test_tokens_in_urls_never_reach_the_logs(tmp_path: Path) -> None:
    env = {"TIDEGATE_LOG_LEVEL": "info", "TIDEGATE_ACCESS_LOG": "true"}
    server = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
            assert (await http.post("/v1/topics", json={"name": "t"})).status_code == 201
            body = {"scopes": ["topics:read"]}
            token = (await http.post("/v1/tokens", json=body)).json()["access_token"]
            url = f"ws://127.0.0.1:{server.port}/v1/topics/t/stream?access_token={token}"
            async with connect(url) as ws:
                assert (await frame(ws))["type"] == "subscribed"
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
                params = {"access_token": token}
                path = "/v1/topics/t/events"
                async with aconnect_sse(anonymous, "GET", path, params=params) as source:
                    assert (await anext(source.aiter_sse())).event == "subscribed"
                # A refused one is logged too.
                assert (
                    await anonymous.get(path, params={"access_token": "x" + token})
                ).status_code == 401
    finally:
        server.stop()
    logged = server.output()
    assert "access_token=[redacted]" in logged
    assert token not in logged
    assert token.split(".")[2] not in logged  # not even the signature
    # The lines that would have held it are there (the test saw the real log).
    assert logged.count("/v1/topics/t/") >= 3, logged
