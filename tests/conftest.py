"""Shared fixtures: the async test backend; the hypothesis profiles."""

import pytest
from hypothesis import settings

# `make sanitize` runs the fast path properties under ASan, where every example
# costs several times more: half the examples (`--hypothesis-profile=sanitize`).
settings.register_profile("sanitize", max_examples=50)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
