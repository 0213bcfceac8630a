"""The console's schema pages in Chromium against a real gateway: subjects and their
mode, a new version checked before it can be registered (an incompatible one is shown
and cannot be saved), versions side by side with their diff, and a topic bound to the
subject whose produce form shows the schema's 422 under the value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.gateway.conftest import GatewayProcess
from tests.gateway.console.pages import nav, open_page, shot, sign_in
from tests.support.browser import ConsoleWatch

ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "total": {"type": "integer"}},
    "required": ["id"],
}


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def schema_text(schema: dict[str, Any]) -> str:
    import json

    return json.dumps(schema, indent=2)


def test_register_after_the_check_compare_versions_and_see_a_schema_422_in_the_form(
    browser: Browser, gateway: GatewayProcess, api: httpx.Client, console_watch: ConsoleWatch
) -> None:
    r = api.post("/v1/schemas/orders-value/versions", json={"schema_type": "JSON", "schema": ORDER})
    assert r.status_code == 201, r.text
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    nav(page, "Schemas").click()
    expect(page.get_by_role("row", name="orders-value")).to_contain_text("BACKWARD")
    page.get_by_role("link", name="orders-value").click()
    expect(page.get_by_role("heading", name="Schemas / orders-value")).to_be_visible()

    form = page.get_by_role("form", name="Register a version")
    stricter = dict(ORDER, required=["id", "email"])
    form.get_by_label("Schema").fill(schema_text(stricter))
    form.get_by_role("button", name="Check compatibility").click()
    verdict = form.get_by_role("status")
    expect(verdict).to_contain_text("Not compatible under BACKWARD")
    expect(verdict).to_contain_text("version 1 · backward · /required")
    expect(form.get_by_role("button", name="Register version")).to_be_disabled()
    shot(page, "schema-check")

    wider = dict(ORDER, properties={**ORDER["properties"], "note": {"type": "string"}})
    form.get_by_label("Schema").fill(schema_text(wider))
    form.get_by_role("button", name="Check compatibility").click()
    expect(verdict).to_contain_text("Compatible under BACKWARD")
    form.get_by_role("button", name="Register version").click()
    versions = page.get_by_role("region", name="Versions side by side")
    expect(versions).to_be_visible()
    expect(page.get_by_role("region", name="Versions", exact=True)).to_contain_text("version 2")
    assert api.get("/v1/schemas/orders-value/versions").json()["versions"] == [1, 2]
    expect(versions.locator("td.diff-added")).not_to_have_count(0)
    expect(versions.locator("td.diff-added")).to_contain_text(['"note"'])
    shot(page, "schema")

    mode = page.get_by_role("form", name="Compatibility mode")
    mode.get_by_label("Compatibility").select_option("FULL")
    mode.get_by_role("button", name="Save mode").click()
    expect(mode.get_by_role("status")).to_have_text("Saved: FULL.")
    assert api.get("/v1/schemas/orders-value/config").json()["compatibility"] == "FULL"

    topic = {"name": "checked-orders", "config": {"value_schema": "orders-value"}}
    assert api.post("/v1/topics", json=topic).status_code == 201
    page.goto(f"{gateway.url}/console/#/topics/checked-orders")
    expect(page.get_by_role("link", name="orders-value")).to_be_visible()
    console_watch.allow_status(422, "/v1/topics/checked-orders/records")
    produce = page.get_by_role("form", name="Produce")
    produce.get_by_label("Value", exact=True).fill('{"id": 7}')
    produce.get_by_role("button", name="Produce").click()
    expect(produce.get_by_label("Value", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(produce.get_by_role("alert")).to_contain_text("record 0 · /records/0/value/id")
    shot(page, "produce-schema-422")
    produce.get_by_label("Value", exact=True).fill('{"id": "o-7", "total": 3}')
    produce.get_by_role("button", name="Produce").click()
    expect(produce.get_by_role("status")).to_contain_text("at offset 0")
    console_watch.assert_clean()
