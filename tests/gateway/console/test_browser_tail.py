"""The live tail of the topic page in Chromium against a real gateway: a record produced
from the form appears in the tail over the WebSocket; pausing stops it (no credit, so the
server sends nothing more) and resuming shows what was held; the key filter narrows the
rows; following from an offset starts there."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.gateway.conftest import GatewayProcess
from tests.gateway.console.pages import open_page, shot, sign_in
from tests.support.browser import ConsoleWatch


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def produce(api: httpx.Client, topic: str, *records: dict[str, object]) -> None:
    r = api.post(f"/v1/topics/{topic}/records", json={"records": list(records)})
    assert r.status_code == 200, r.text


def test_the_tail_shows_records_live_pauses_filters_and_jumps_to_an_offset(
    browser: Browser, gateway: GatewayProcess, api: httpx.Client, console_watch: ConsoleWatch
) -> None:
    assert api.post("/v1/topics", json={"name": "live", "partitions": 2}).status_code == 201
    produce(api, "live", {"key": "old", "value": "before", "partition": 0})
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    page.goto(f"{gateway.url}/console/#/topics/live")
    tail = page.get_by_role("form", name="Live tail")
    tail.get_by_role("button", name="Follow").click()
    expect(tail.get_by_role("status")).to_contain_text("Following partitions 0, 1")
    rows = tail.locator("tbody tr")

    produce_form = page.get_by_role("form", name="Produce")
    produce_form.get_by_label("Key").fill("k1")
    produce_form.get_by_label("Value", exact=True).fill('{"n": 1}')
    produce_form.get_by_role("button", name="Produce").click()
    expect(rows).to_have_count(1)  # from latest: not the record produced before
    expect(rows.first).to_contain_text('{"n":1}')

    tail.get_by_role("button", name="Pause").click()
    produce(api, "live", {"key": "k2", "value": {"n": 2}}, {"key": "k3", "value": {"n": 3}})
    expect(tail.get_by_role("status")).to_contain_text("2 record(s) arrived and are held")
    expect(rows).to_have_count(1)
    tail.get_by_role("button", name="Resume").click()
    expect(rows).to_have_count(3)
    expect(tail.locator("tbody")).to_contain_text("k2")
    expect(tail.locator("tbody")).to_contain_text("k3")

    tail.get_by_label("Key contains").fill("k2")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text('{"n":2}')
    tail.get_by_label("Key contains").fill("")
    shot(page, "tail")

    tail.get_by_label("From").select_option("offset")
    tail.get_by_label("Partition").select_option("0")
    tail.get_by_label("Offset").fill("0")
    tail.get_by_role("button", name="Restart").click()
    expect(tail.get_by_role("status")).to_contain_text("Following partitions 0 from 0:0")
    expect(rows.last).to_contain_text("before")  # the record from before the page opened
    console_watch.assert_clean()
