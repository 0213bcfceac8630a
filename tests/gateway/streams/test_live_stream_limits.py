"""The bounds a WebSocket stream puts on its client, on a real server: a client that
stops reading is dropped after the stall timeout, and a client message too large,
counted after decompression (a permessage-deflate bomb), closes with 1009."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import GatewayProcess
from tests.support.streams import frame
from tests.support.waiting import poll_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {
        "TIDEGATE_STREAM_STALL_TIMEOUT_S": "1",
        "TIDEGATE_STREAM_COMPRESSION": "true",
        "TIDEGATE_STREAM_MAX_MESSAGE_BYTES": "65536",
    }
    server = GatewayProcess(tmp_path_factory.mktemp("limits") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


def open_streams(gateway: GatewayProcess) -> int:
    """The tenant's open streams, from its usage (-1 when the usage read is throttled)."""
    with gateway.client() as client:
        reply = client.get("/v1/usage")
        if reply.status_code != 200:
            return -1
        used: int = reply.json()["quotas"]["max_connections"]["used"]
        return used


async def test_a_client_that_stops_reading_is_dropped_after_the_stall_timeout(
    gateway: GatewayProcess,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers) as http:
        assert (await http.post("/v1/topics", json={"name": "stall"})).status_code == 201
        url = f"ws://127.0.0.1:{gateway.port}/v1/topics/stall/stream"
        stalled = await connect(
            url, additional_headers=gateway.headers, max_queue=1, max_size=None, compression=None
        )
        try:
            await frame(stalled)
            assert open_streams(gateway) == 1
            big = {"records": [{"value": {"pad": "x" * 100_000}}] * 10}
            for _ in range(60):  # 60 MB: far past every buffer between the two
                assert (await http.post("/v1/topics/stall/records", json=big)).status_code == 200
            # The server gave up on it: its connection no longer counts for the tenant.
            poll_until(
                lambda: open_streams(gateway),
                lambda n: n == 0,
                what="stalled client dropped",
                every_s=0.3,  # usage reads are bounded to a few a second
            )
        finally:
            stalled.transport.abort()


async def test_a_decompression_bomb_closes_with_1009(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers) as http:
        assert (await http.post("/v1/topics", json={"name": "bomb"})).status_code == 201
    url = f"ws://127.0.0.1:{gateway.port}/v1/topics/bomb/stream"
    async with connect(url, additional_headers=gateway.headers, compression="deflate") as ws:
        await frame(ws)
        assert ws.protocol.extensions, "permessage-deflate was negotiated"
        # 10 MB of zeros deflate to about 10 KB on the wire.
        await ws.send('{"type":"credit","records":1,"pad":"' + "0" * 10_000_000 + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            await frame(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
