"""Debian's Chromium driven by Playwright for Python, for browser tests.

The browser is the system's (`/usr/bin/chromium`, from the Makefile's
DEB_PACKAGES), never one Playwright downloads. One browser per test module
(`browser` fixture, module-scoped: starting Chromium costs about a second);
each test opens its own context, so storage and cookies never leak between
tests. Use it by importing the fixtures into the test module:

    from tests.support.browser import browser, console_watch  # noqa: F401

`ConsoleWatch` collects every console message of level error or warning and
every uncaught page error of the pages it watches. A page that works logs
nothing; the only messages a test may allow are Chromium's own reports of an
HTTP error status the test provoked on purpose ("Failed to load resource: the
server responded with a status of 422"), named by status and URL path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module's tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class ConsoleWatch:
    """What the watched pages said on their consoles, and which HTTP errors were expected."""

    messages: list[str] = field(default_factory=list)
    allowed: set[tuple[int, str]] = field(default_factory=set)

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("dialog", self._on_dialog)
        return page

    def allow_status(self, status: int, path: str) -> None:
        """The test provokes `status` from `path` (e.g. 422 from /v1/topics/t/records)."""
        self.allowed.add((status, path))

    def unexpected(self) -> list[str]:
        return list(self.messages)

    def assert_clean(self) -> None:
        found = self.unexpected()
        assert not found, "the pages logged:\n" + "\n".join(found)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        failed = FAILED_LOAD.match(message.text)
        url = message.location.get("url", "")
        if failed and any(
            int(failed.group(1)) == status and _path_of(url) == path
            for status, path in self.allowed
        ):
            return
        self.messages.append(f"{message.type}: {message.text} ({url})")

    def _on_page_error(self, error: Error) -> None:
        self.messages.append(f"page error: {error}")

    def _on_dialog(self, dialog: object) -> None:
        # No page of ours opens alert/confirm/prompt; one that appears ran someone's script.
        self.messages.append(f"unexpected dialog: {getattr(dialog, 'message', dialog)}")
        dismiss = getattr(dialog, "dismiss", None)
        if dismiss is not None:
            dismiss()


def _path_of(url: str) -> str:
    without_query = url.split("?", 1)[0]
    match = re.match(r"[a-z]+://[^/]+(/.*)?$", without_query)
    return (match.group(1) or "/") if match else without_query


@pytest.fixture
def console_watch() -> ConsoleWatch:
    return ConsoleWatch()
