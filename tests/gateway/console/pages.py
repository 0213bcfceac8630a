"""What the console's browser tests do on every page: open one, sign in, follow the
main navigation, photograph it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from tests.gateway.conftest import BOOTSTRAP_KEY, REPO, GatewayProcess
from tests.support.browser import LAPTOP, ConsoleWatch

SCREENSHOTS = REPO / "docs" / "img"
SHOTS_ELSEWHERE = Path(tempfile.gettempdir()) / "tidegate-console-screenshots"


def open_page(browser: Browser, watch: ConsoleWatch, viewport: dict[str, int] = LAPTOP) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return watch.watch(context.new_page())


def sign_in(page: Page, gateway: GatewayProcess, key: str = BOOTSTRAP_KEY) -> None:
    page.goto(f"{gateway.url}/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Topics", level=1, exact=True)).to_be_visible()


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def shot(page: Page, name: str) -> None:
    """Photograph the page as docs/img/console-<name>.png when that picture is missing or
    `make screenshots` asks (CONSOLE_SCREENSHOTS=update); otherwise into the test's own
    directory, so that a test run never leaves the tree changed (every run differs in
    timestamps and ids)."""
    target = SCREENSHOTS / f"console-{name}.png"
    if target.exists() and os.environ.get("CONSOLE_SCREENSHOTS") != "update":
        target = SHOTS_ELSEWHERE / target.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
