"""The browser fixtures (tests/support/browser.py) for every console test module."""

from tests.support.browser import browser, console_watch

__all__ = ["browser", "console_watch"]
