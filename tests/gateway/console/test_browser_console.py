"""The console in Debian's Chromium against a real gateway process.

One gateway (its rate buckets in a Redis of its own, so that a quota can be
hit for real and the backend can then be taken away) and one browser serve the
module. Each test opens a fresh browser context, signs in through the form and
works only through the page. Every page is photographed into docs/img/ under a
fixed name (the README shows them), and every test ends with no console
message and no page error beyond the HTTP errors it provoked on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.gateway.conftest import BOOTSTRAP_KEY, GatewayProcess
from tests.gateway.console.pages import nav, open_page, shot, sign_in
from tests.support.browser import PHONE, ConsoleWatch
from tests.support.redis_server import RedisServer

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def redis_for_quotas() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, redis_for_quotas: RedisServer
) -> Iterator[GatewayProcess]:
    env = {"TIDEGATE_REDIS_URL": redis_for_quotas.url, "TIDEGATE_RATE_LIMITER": "redis"}
    server = GatewayProcess(tmp_path_factory.mktemp("console") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def tenant_key(api: httpx.Client, tenant: str, scopes: list[str] | None = None) -> str:
    assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    scopes = scopes or ["topics:read", "topics:write", "topics:admin"]
    r = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": scopes})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def test_sign_in_create_a_topic_produce_and_see_the_record_as_text(
    browser: Browser,
    gateway: GatewayProcess,
    console_watch: ConsoleWatch,
) -> None:
    page = open_page(browser, console_watch)
    page.goto(f"{gateway.url}/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    console_watch.allow_status(401, "/v1/tokens")
    page.get_by_label("API key").fill("tg_not_a_key_the_gateway_knows_0000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The gateway does not accept this key")).to_be_visible()
    shot(page, "signin")

    page.get_by_label("API key").fill(BOOTSTRAP_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Topics", level=1, exact=True)).to_be_visible()
    expect(page.get_by_text("No topics yet.")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tidegate.key')") == BOOTSTRAP_KEY

    page.get_by_role("button", name="Create topic").click()
    form = page.get_by_role("form", name="Create a topic")
    form.get_by_label("Name").fill("orders")
    form.get_by_label("Partitions").fill("3")
    form.get_by_role("button", name="Create topic").click()
    expect(page.get_by_role("heading", name="Topics / orders")).to_be_visible()
    expect(page.get_by_role("region", name="Partitions").locator("tbody tr")).to_have_count(3)

    produce = page.get_by_role("form", name="Produce")
    produce.get_by_label("Key").fill("user-1")
    produce.get_by_label("Value", exact=True).fill('{"id": 1, "note": "first"}')
    produce.get_by_label("Headers").fill('[["trace", "abc"]]')
    produce.get_by_role("button", name="Produce").click()
    expect(produce.get_by_role("status")).to_contain_text("at offset 0")
    records = page.get_by_role("region", name="Records of partition")
    expect(records).to_contain_text('{"id":1,"note":"first"}')
    expect(records).to_contain_text("user-1")
    expect(records).to_contain_text("trace: abc")

    produce.get_by_label("Key").fill("user-1")  # the same partition as the first
    produce.get_by_label("Value", exact=True).fill(f'"{XSS}"')
    produce.get_by_label("Headers").fill("")
    produce.get_by_role("button", name="Produce").click()
    expect(produce.get_by_role("status")).to_contain_text("at offset 1")
    value_cell = records.locator("pre.value").first
    expect(value_cell).to_have_text(f'"{XSS}"')
    assert page.locator("main img").count() == 0  # shown as text, never made an element
    shot(page, "topic")

    nav(page, "Topics").click()
    row = page.get_by_role("row", name="orders")
    expect(row).to_contain_text("3")  # partitions
    expect(row.locator("td").nth(2)).to_have_text("2")  # records
    shot(page, "topics")
    console_watch.assert_clean()


def test_the_produce_form_shows_the_apis_validation_errors_where_they_point(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    console_watch: ConsoleWatch,
) -> None:
    assert api.post("/v1/topics", json={"name": "checked", "partitions": 2}).status_code == 201
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    page.goto(f"{gateway.url}/console/#/topics/checked")
    console_watch.allow_status(422, "/v1/topics/checked/records")
    produce = page.get_by_role("form", name="Produce")
    produce.get_by_label("Value", exact=True).fill("1")
    produce.get_by_label("Partition").fill("7")
    produce.get_by_role("button", name="Produce").click()
    # The API's message, under the field its pointer names, and in the list with the index.
    expect(produce.locator(".field-error:visible")).to_have_text(
        "partition must be an integer in 0..1"
    )
    expect(produce.get_by_label("Partition")).to_have_attribute("aria-invalid", "true")
    expect(produce.get_by_role("alert")).to_contain_text("record 0 · /records/0/partition")

    produce.get_by_label("Send").select_option("body")
    produce.get_by_label("Body").fill(
        '{"records": [{"value": 1}, {"value": 2, "headers": [["only-a-name"]]}]}'
    )
    produce.get_by_role("button", name="Produce").click()
    alert = produce.get_by_role("alert")
    expect(alert).to_contain_text("Invalid records (422)")
    expect(alert).to_contain_text("record 1 · /records/1/headers/0")
    expect(alert).to_contain_text("each header must be a [name, value] pair")
    shot(page, "produce-422")
    r = api.get("/v1/topics/checked")
    assert [p["end_offset"] for p in r.json()["partitions"]] == [0, 0]  # nothing appended
    console_watch.assert_clean()


def test_change_config_then_delete_with_confirmation(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    console_watch: ConsoleWatch,
) -> None:
    assert api.post("/v1/topics", json={"name": "scratch"}).status_code == 201
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    page.goto(f"{gateway.url}/console/#/topics/scratch")
    config = page.get_by_role("form", name="Topic config")
    config.get_by_label("Retention (hours)").fill("2")
    config.get_by_label("Partitions").fill("4")
    config.get_by_role("button", name="Save config").click()
    expect(config.get_by_role("status")).to_have_text("Saved.")
    topic = api.get("/v1/topics/scratch").json()
    assert (topic["config"]["retention_ms"], len(topic["partitions"])) == (7_200_000, 4)
    expect(page.get_by_role("region", name="Partitions").locator("tbody tr")).to_have_count(4)

    page.get_by_role("button", name="Delete topic").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Delete topic")
    expect(confirm).to_be_disabled()  # until the name is typed
    dialog.get_by_role("button", name="Cancel").click()
    assert api.get("/v1/topics/scratch").status_code == 200

    page.get_by_role("button", name="Delete topic").click()
    dialog.get_by_label("Type “scratch” to confirm").fill("scratch")
    confirm.click()
    expect(page.get_by_role("heading", name="Topics", level=1, exact=True)).to_be_visible()
    assert api.get("/v1/topics/scratch").status_code == 404
    console_watch.assert_clean()


def test_usage_bars_and_operator_keys_shown_once_and_revoked_after_confirmation(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    console_watch: ConsoleWatch,
) -> None:
    assert api.post("/v1/admin/tenants", json={"name": "acme", "plan": "free"}).status_code == 201
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    nav(page, "Usage").click()
    expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    topics_bar = page.get_by_role("meter", name="Topics")
    expect(topics_bar).to_have_attribute(
        "aria-valuenow", str(len(api.get("/v1/topics").json()["topics"]))
    )
    shot(page, "usage")

    nav(page, "Tenants").click()
    page.get_by_role("link", name="acme").click()
    expect(page.get_by_role("heading", name="Tenants / acme")).to_be_visible()
    form = page.get_by_role("form", name="Create an API key")
    form.get_by_label("topics:admin").uncheck()
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("code.secret")
    expect(secret).to_be_visible()
    key = secret.inner_text()
    assert key.startswith("tg_")
    shot(page, "tenant-key")
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/topics").status_code == 200
    page.get_by_role("button", name="I have stored the key").click()
    expect(secret).to_have_count(0)  # shown once: gone from the page
    assert key not in page.content()

    rows = page.get_by_role("region", name="API keys").locator("tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/topics").status_code == 200
    rows.first.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(rows.first).to_contain_text("revoked")
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/topics").status_code == 401
    nav(page, "Tenants").click()
    expect(page.get_by_role("row", name="acme")).to_contain_text("free")
    shot(page, "tenants")
    console_watch.assert_clean()


def test_a_revoked_key_sends_the_page_back_to_sign_in(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    console_watch: ConsoleWatch,
) -> None:
    key = tenant_key(api, "revoked-co")
    key_id = api.get("/v1/admin/tenants/revoked-co/keys").json()["keys"][0]["key_id"]
    page = open_page(browser, console_watch)
    sign_in(page, gateway, key)
    expect(nav(page, "Tenants")).to_be_hidden()  # no admin scope
    assert api.delete(f"/v1/admin/tenants/revoked-co/keys/{key_id}").status_code == 204
    console_watch.allow_status(401, "/v1/usage")
    nav(page, "Usage").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("The gateway refused the key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tidegate.key')") is None
    console_watch.assert_clean()


def test_sign_out_forgets_the_key(
    browser: Browser,
    gateway: GatewayProcess,
    console_watch: ConsoleWatch,
) -> None:
    page = open_page(browser, console_watch)
    sign_in(page, gateway)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(f"{gateway.url}/console/#/topics")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    console_watch.assert_clean()


def test_keyboard_reaches_the_form_with_a_visible_focus_ring(
    browser: Browser,
    gateway: GatewayProcess,
    console_watch: ConsoleWatch,
) -> None:
    page = open_page(browser, console_watch)
    page.goto(f"{gateway.url}/console/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(BOOTSTRAP_KEY)
    page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_focused()
    outline = button.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Topics", level=1, exact=True)).to_be_visible()
    for _ in range(40):  # Tab on through the page (and round) until the nav link has focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Usage":
            break
    expect(nav(page, "Usage")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    console_watch.assert_clean()


def test_at_phone_width_nothing_overflows_the_screen(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    console_watch: ConsoleWatch,
) -> None:
    assert api.post("/v1/topics", json={"name": "phone", "partitions": 2}).status_code == 201
    records = {"records": [{"key": "k", "value": {"long": "x" * 300}}]}
    assert api.post("/v1/topics/phone/records", json=records).status_code == 200
    page = open_page(browser, console_watch, PHONE)
    sign_in(page, gateway)
    for view, heading in [
        ("topics", "Topics"),
        ("topics/phone", "Topics / phone"),
        ("usage", "Usage"),
    ]:
        page.goto(f"{gateway.url}/console/#/{view}")
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        if view == "topics/phone":
            page.get_by_role("form", name="Browse records").get_by_role(
                "button", name="Fetch"
            ).click()
            expect(page.locator("pre.value")).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], view
    shot(page, "phone-usage")
    page.goto(f"{gateway.url}/console/#/topics/phone")
    expect(page.get_by_role("heading", name="Topics / phone")).to_be_visible()
    shot(page, "phone-topic")
    console_watch.assert_clean()


def test_429_shows_when_to_retry_and_503_says_the_backend_is_unavailable(
    browser: Browser,
    gateway: GatewayProcess,
    api: httpx.Client,
    redis_for_quotas: RedisServer,
    console_watch: ConsoleWatch,
) -> None:
    """Last in the module: it takes the gateway's Redis away."""
    key = tenant_key(api, "throttled")
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as c:
        for name in ("a", "b", "c", "d"):
            assert c.post("/v1/topics", json={"name": name}).status_code == 201
    r = api.put("/v1/admin/tenants/throttled/quotas", json={"requests_per_second": 1})
    assert r.status_code == 200, r.text
    page = open_page(browser, console_watch)
    for path in ["/v1/topics", "/v1/usage", *(f"/v1/topics/{n}" for n in "abcd")]:
        console_watch.allow_status(429, path)
        console_watch.allow_status(503, path)
    page.goto(f"{gateway.url}/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("Rate limited")
    expect(notice).to_contain_text(re.compile(r"Retry in \d+ s|You can retry now"))
    shot(page, "429")

    redis_for_quotas.stop()
    page.reload()
    expect(notice).to_contain_text("The backend is unavailable", timeout=15_000)
    console_watch.assert_clean()
