"""Waiting on a condition in live tests: poll it with a deadline, never sleep a guess."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout_s: float = 5.0,
    every_s: float = 0.05,
) -> T:
    """Call `probe` until `done` holds for its result, and return that result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s (last: {result!r})")
        time.sleep(every_s)


async def wait_until(
    check: Callable[[], bool], what: str, *, timeout_s: float = 10.0, every_s: float = 0.01
) -> None:
    """`poll_until` for a test on the event loop: look at `check` until it holds,
    giving the loop `every_s` between looks, and fail naming `what` past the deadline."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(every_s)
