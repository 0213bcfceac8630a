"""`tidegate_streams_open` counts the live WebSocket and SSE streams while they are open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import aconnect_sse
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.gateway.conftest import GatewayProcess
from tests.support.streams import frame
from tests.support.waiting import poll_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    server = GatewayProcess(tmp_path_factory.mktemp("streams-metric") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def streams_open(server: GatewayProcess) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10.0).text
    for family in text_string_to_metric_families(text):
        if family.name == "tidegate_streams_open":
            return {s.labels["kind"]: s.value for s in family.samples}
    raise AssertionError("no tidegate_streams_open")


async def test_open_streams_are_counted_by_kind(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers, timeout=30) as http:
        created = await http.post("/v1/topics", json={"name": "watched", "partitions": 1})
        assert created.status_code == 201
        assert streams_open(gateway) == {"websocket": 0, "sse": 0}
        url = f"ws://127.0.0.1:{gateway.port}/v1/topics/watched/stream"
        async with connect(url, additional_headers=gateway.headers) as ws:
            assert (await frame(ws))["type"] == "subscribed"
            assert streams_open(gateway)["websocket"] == 1
            async with aconnect_sse(http, "GET", "/v1/topics/watched/events") as source:
                first = await anext(source.aiter_sse())
                assert first.event == "subscribed"
                assert streams_open(gateway) == {"websocket": 1, "sse": 1}
        poll_until(
            lambda: streams_open(gateway),
            lambda now: now == {"websocket": 0, "sse": 0},
            what="closed streams no longer counted",
        )
