"""Shared fixtures: the async test backend."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
