"""The console's consumer-group pages in Chromium against a real gateway: the lag of a
group goes up on the page when records are produced and down when the group commits,
the chart follows, and an empty group's offsets are reset after a dry run."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.gateway.conftest import GatewayProcess
from tests.gateway.console.pages import nav, open_page, shot, sign_in
from tests.support.browser import ConsoleWatch


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def test_group_lag_rises_with_produce_falls_with_commits_and_resets_after_a_dry_run(
    browser: Browser, gateway: GatewayProcess, api: httpx.Client, console_watch: ConsoleWatch
) -> None:
    assert api.post("/v1/topics", json={"name": "events", "partitions": 2}).status_code == 201
    joined = api.post("/v1/groups/billing/members", json={"topics": ["events"]})
    assert joined.status_code == 200, joined.text
    member, generation = joined.json()["member_id"], joined.json()["generation"]

    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    nav(page, "Groups").click()
    row = page.get_by_role("row", name="billing")
    expect(row).to_contain_text("stable")
    page.get_by_role("link", name="billing").click()
    expect(page.get_by_role("heading", name="Groups / billing")).to_be_visible()
    total = page.get_by_role("region", name="Summary").locator("dd").nth(2)
    expect(total).to_have_text("0")

    records = [{"value": i, "partition": i % 2} for i in range(6)]
    assert api.post("/v1/topics/events/records", json={"records": records}).status_code == 200
    expect(total).to_have_text("6")
    chart = page.get_by_role("img", name="Total lag of the group")
    expect(chart).to_have_attribute("aria-label", re.compile(r"^Total lag of the group: 6 now,"))
    lag_rows = page.get_by_role("region", name="Partition lag").locator("tbody tr")
    expect(lag_rows).to_have_count(2)
    expect(lag_rows.first).to_contain_text(member)

    offsets = [{"topic": "events", "partition": p, "offset": 3} for p in (0, 1)]
    body = {"member_id": member, "generation": generation, "offsets": offsets}
    assert api.post("/v1/groups/billing/offsets", json=body).status_code == 204
    expect(total).to_have_text("0")
    expect(chart).to_have_attribute("aria-label", re.compile(r"^Total lag of the group: 0 now,"))
    assert page.locator("svg.chart path.line").count() == 1
    shot(page, "group")

    reset = page.get_by_role("form", name="Reset offsets")
    console_watch.allow_status(409, "/v1/groups/billing/offsets/reset")
    reset.get_by_role("button", name="Preview (dry run)").click()
    expect(reset.get_by_role("alert")).to_contain_text("(409)")  # members are active
    expect(reset.get_by_role("button", name="Apply reset")).to_be_disabled()

    assert api.delete(f"/v1/groups/billing/members/{member}").status_code == 204
    expect(page.get_by_role("region", name="Summary")).to_contain_text("empty")
    reset.get_by_label("Reset to").select_option("earliest")
    reset.get_by_role("button", name="Preview (dry run)").click()
    dry = reset.get_by_role("region", name="Dry run")
    expect(dry.locator("tbody tr")).to_have_count(2)
    expect(dry.locator("tbody tr").first).to_contain_text("-3")
    committed = api.get("/v1/groups/billing/offsets").json()["offsets"]
    assert {o["offset"] for o in committed} == {3}  # a dry run moves nothing
    reset.get_by_role("button", name="Apply reset").click()
    page.get_by_role("dialog").get_by_role("button", name="Apply reset").click()
    expect(reset.get_by_role("region", name="Reset applied")).to_be_visible()
    expect(total).to_have_text("6")
    committed = api.get("/v1/groups/billing/offsets").json()["offsets"]
    assert {o["offset"] for o in committed} == {0}
    shot(page, "group-reset")

    nav(page, "Groups").click()
    expect(page.get_by_role("row", name="billing")).to_contain_text("STOP")  # waiting, no members
    shot(page, "groups")
    console_watch.assert_clean()
