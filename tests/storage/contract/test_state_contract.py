"""What every StateStore promises, run against each engine through open_backend."""

from __future__ import annotations

import asyncio

import pytest

from storage.open import Backend

pytestmark = pytest.mark.anyio


async def test_get_put_delete(backend: Backend) -> None:
    state = backend.state
    assert await state.get("missing") is None
    await state.put("k", b"v1")
    assert await state.get("k") == b"v1"
    await state.put("k", b"v2")
    assert await state.get("k") == b"v2"
    await state.delete("k")
    assert await state.get("k") is None
    await state.delete("k")  # deleting an absent key is fine


async def test_put_if_absent(backend: Backend) -> None:
    state = backend.state
    assert await state.put_if_absent("k", b"first") is None
    assert await state.put_if_absent("k", b"second") == b"first"
    assert await state.get("k") == b"first"


async def test_put_if_absent_is_atomic_under_concurrency(backend: Backend) -> None:
    results = await asyncio.gather(
        *(backend.state.put_if_absent("race", b"%d" % i) for i in range(20))
    )
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert await backend.state.get("race") == b"%d" % winners[0]


async def test_values_expire(backend: Backend) -> None:
    state = backend.state
    await state.put("short", b"v", ttl_s=0.1)
    await state.put("long", b"v", ttl_s=60)
    assert await state.get("short") == b"v"
    await asyncio.sleep(0.2)
    assert await state.get("short") is None
    assert await state.get("long") == b"v"
    # An expired key counts as absent.
    assert await state.put_if_absent("short", b"new", ttl_s=60) is None
    assert await state.get("short") == b"new"
