"""A real browser (Debian's chromium, driven by Playwright) follows a topic on the
gateway's viewer page over WebSocket and EventSource with a short-lived token, and
EventSource resumes without loss when its connection is cut mid-stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess
from tests.support.streams import produce
from tests.support.tcpproxy import cuttable_proxy

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.anyio
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    server = GatewayProcess(tmp_path_factory.mktemp("browser") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed (make deps installs it)")
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_a_browser_follows_live_and_eventsource_resumes_after_a_cut(
    gateway: GatewayProcess, browser: Any, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers, timeout=30) as http:
        assert (await http.post("/v1/topics", json={"name": "live"})).status_code == 201
        body = {"scopes": ["topics:read"], "topics": ["live"], "ttl_seconds": 300}
        token = (await http.post("/v1/tokens", json=body)).json()["access_token"]
        async with cuttable_proxy(gateway.port) as proxy:
            # The page's CSP forbids eval, which the test's own probes use.
            page = await browser.new_page(bypass_csp=True)
            await page.goto(
                f"http://127.0.0.1:{proxy.port}/streams/viewer#topic=live&token={token}"
            )
            await page.wait_for_function(
                "window.tidegate.wsOpen && window.tidegate.sseOpens === 1", timeout=10_000
            )
            await produce(http, "live", [{"n": i} for i in range(30)], batch=5)
            await page.wait_for_function(
                "window.tidegate.ws.length >= 30 && window.tidegate.sse.length >= 30",
                timeout=10_000,
            )
            assert proxy.cut() >= 2  # the page's WebSocket and EventSource connections
            await produce(http, "live", [{"n": i} for i in range(30, 60)], batch=5)
            await page.wait_for_function(
                "window.tidegate.sseOpens === 2 && window.tidegate.sse.length >= 60",
                timeout=15_000,
            )
            seen = await page.evaluate("window.tidegate")
            await page.screenshot(path=str(tmp_path / "viewer.png"))
    assert [r["offset"] for r in seen["sse"]] == list(range(60))  # no loss, no repeat
    assert [r["value"]["n"] for r in seen["sse"]] == list(range(60))
    assert [r["offset"] for r in seen["ws"][:30]] == list(range(30))
    assert seen["gaps"] == []
    listed = await page.locator("#sse li").count() if not page.is_closed() else 60
    assert listed == 60
