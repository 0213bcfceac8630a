"""Idempotency-Key claims: one winner, replays, mismatches, in-progress duplicates."""

from __future__ import annotations

import time

import pytest

from gateway.records.idempotency import IdempotencyStore, Verdict, fingerprint, state_key, valid_key


class MemoryState:
    """A StateStore in a dict, with expiry; enough to test the claim protocol."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, float | None]] = {}

    async def get(self, key: str) -> bytes | None:
        item = self.data.get(key)
        if item is None or (item[1] is not None and item[1] < time.monotonic()):
            return None
        return item[0]

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self.data[key] = (value, None if ttl_s is None else time.monotonic() + ttl_s)

    async def put_if_absent(
        self, key: str, value: bytes, *, ttl_s: float | None = None
    ) -> bytes | None:
        existing = await self.get(key)
        if existing is not None:
            return existing
        await self.put(key, value, ttl_s=ttl_s)
        return None

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_claim_replay_mismatch_and_release() -> None:
    store = IdempotencyStore(MemoryState(), ttl_s=3600, pending_ttl_s=60)
    fp = fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}")
    key = state_key("acme", "t", "k1")
    assert (await store.claim(key, fp)).verdict is Verdict.PROCEED
    assert (await store.claim(key, fp)).verdict is Verdict.IN_PROGRESS
    assert (await store.claim(key, "other")).verdict is Verdict.MISMATCH
    await store.complete(key, fp, 200, b'{"offsets": []}')
    replay = await store.claim(key, fp)
    assert replay.verdict is Verdict.REPLAY
    assert replay.reply is not None
    assert replay.reply.body == b'{"offsets": []}'
    await store.release(key)
    assert (await store.claim(key, fp)).verdict is Verdict.PROCEED


def test_keys_are_namespaced_by_tenant_and_topic() -> None:
    assert state_key("a", "t", "k") != state_key("b", "t", "k")
    assert state_key("a", "t", "k") != state_key("a", "u", "k")


def test_fingerprint_covers_every_part_of_the_request() -> None:
    base = ("POST", "/p", "", "application/json", b"{}")
    variants = [
        ("PUT", "/p", "", "application/json", b"{}"),
        ("POST", "/q", "", "application/json", b"{}"),
        ("POST", "/p", "key=1", "application/json", b"{}"),
        ("POST", "/p", "", "text/plain", b"{}"),
        ("POST", "/p", "", "application/json", b"[]"),
    ]
    assert all(fingerprint(*v) != fingerprint(*base) for v in variants)


def test_valid_keys() -> None:
    assert valid_key("order-42")
    assert not valid_key("")
    assert not valid_key("a b")
    assert not valid_key("x" * 256)
