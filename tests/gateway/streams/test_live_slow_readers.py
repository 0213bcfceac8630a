"""Readers that never read cannot make the server hold the backlog: they fall behind in
offsets while the server's memory stays bounded, and other readers keep up.

In the suite: 20 stalled WebSockets while 100 MB is produced. The full figure
(200 stalled connections, 200 MB) is the `slow` test below; both print what
they measured."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.gateway.conftest import BOOTSTRAP_KEY, GatewayProcess
from tests.support.streams import frame

pytestmark = pytest.mark.anyio
HEADERS = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
RECORD = {"value": {"pad": "x" * 100_000}}  # about 100 KB a record

# The server's bounded caches may fill with what was produced: the decoded-batch LRU
# (64 MiB of stored batches, each held twice: its checked bytes and its records) and
# the rendered frames (TIDEGATE_FETCH_RENDER_CACHE_BYTES, 1 MiB here). Past them, each
# stalled connection may hold its send buffer (64 KiB) and one frame (about
# TIDEGATE_STREAM_FRAME_BYTES, 256 KiB) plus its own objects; and the allocator keeps
# some of what request bodies used.
CACHES_MB = 2 * 64 + 1
SLACK_MB = 16
PER_CONNECTION_MB = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """The highest RSS of a process, sampled every 20 ms on a thread (bounded by `stop`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


async def stalled_readers_hold_bounded_memory(
    tmp_path: Path, connections: int, produce_mb: int
) -> tuple[float, float, float]:
    env = {
        "TIDEGATE_MAX_CONNECTIONS": str(connections + 100),
        "TIDEGATE_FETCH_RENDER_CACHE_BYTES": str(1 << 20),
    }
    server = GatewayProcess(tmp_path / "data", env=env).start()
    assert server.proc is not None
    url = f"ws://127.0.0.1:{server.port}/v1/topics/slow/stream"
    stalled: list[ClientConnection] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=60) as http:
            body = {"name": "slow", "config": {"durability": "none"}}
            assert (await http.post("/v1/topics", json=body)).status_code == 201
            # Warm up: the same path once, so start-up allocations are in the baseline.
            warm = {"records": [RECORD] * 10}
            assert (await http.post("/v1/topics/slow/records", json=warm)).status_code == 200
            baseline = rss_mb(server.proc.pid)
            for _ in range(connections):
                # max_queue=1: the client stops reading its socket after one message.
                ws = await connect(url, additional_headers=HEADERS, max_queue=1, max_size=None)
                stalled.append(ws)
            live = await connect(url, additional_headers=HEADERS, max_size=None)
            await frame(live)
            peak = PeakRss(server.proc.pid)
            worst_lag = 0.0
            batches = produce_mb * 10 // 10  # 10 records of 100 KB a request: 1 MB each
            for _ in range(batches):
                sent = time.monotonic()
                batch = {"records": [RECORD] * 10}
                assert (await http.post("/v1/topics/slow/records", json=batch)).status_code == 200
                got = 0
                while got < 10:  # the live reader gets each batch while the others stall
                    document = await frame(live, timeout_s=10)
                    got += len(document.get("records", []))
                worst_lag = max(worst_lag, time.monotonic() - sent)
            highest = peak.stop()
            await live.close()
        return baseline, highest, worst_lag
    finally:
        for ws in stalled:
            ws.transport.abort()
        server.stop()


async def check(tmp_path: Path, connections: int, produce_mb: int) -> None:
    baseline, highest, lag = await stalled_readers_hold_bounded_memory(
        tmp_path, connections, produce_mb
    )
    bound = CACHES_MB + SLACK_MB + connections * PER_CONNECTION_MB
    print(
        f"\n{connections} stalled WebSockets, {produce_mb} MB produced: server RSS "
        f"{baseline:.0f} MB -> peak {highest:.0f} MB (+{highest - baseline:.0f} MB, "
        f"bound +{bound:.0f} MB); a live reader's slowest batch {lag * 1000:.0f} ms"
    )
    assert highest - baseline < bound
    assert lag < 5.0


async def test_stalled_readers_cannot_make_the_server_buffer_their_backlog(
    tmp_path: Path,
) -> None:
    await check(tmp_path, connections=20, produce_mb=100)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_200_stalled_readers_while_200_mb_is_produced(tmp_path: Path) -> None:
    await check(tmp_path, connections=200, produce_mb=200)
