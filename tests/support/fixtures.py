"""Pytest fixtures for tests that need a real Redis.

Use them by importing them into the test module (pytest finds fixtures by
name in the module's namespace):

    from tests.support.fixtures import redis_server, redis_url  # noqa: F401

and mark a test or fixture that takes one as a parameter with `# noqa: F811`
(ruff sees the parameter as redefining the imported name):

    async def test_x(redis_url: str) -> None:  # noqa: F811

`redis_server` is session-scoped: one server for the whole run, because
starting one costs a few hundred milliseconds. `redis_url` empties it
(FLUSHALL) before each test, so tests cannot see each other's keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, stopped (and its directory removed) at the end."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, with the database emptied first."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
