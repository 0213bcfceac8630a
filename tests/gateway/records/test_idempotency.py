"""Idempotency-Key claims: replays, mismatches, and unfinished requests that proceed."""

from __future__ import annotations

import time

import pytest

from gateway.records.idempotency import (
    IdempotencyStore,
    Verdict,
    fingerprint,
    placement_start,
    request_identity,
    state_key,
    valid_key,
)
from storage.records import IDENTITY_BYTES


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
async def test_claim_replay_and_mismatch() -> None:
    store = IdempotencyStore(MemoryState(), ttl_s=3600, pending_ttl_s=60)
    fp = fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}")
    key = state_key("acme", "t", "k1")
    assert (await store.claim(key, fp)).verdict is Verdict.PROCEED
    # Unfinished (crashed, failed part-way or running): the retry proceeds, the log dedupes.
    assert (await store.claim(key, fp)).verdict is Verdict.PROCEED
    assert (await store.claim(key, "other")).verdict is Verdict.MISMATCH
    await store.complete(key, fp, 200, b'{"offsets": []}')
    replay = await store.claim(key, fp)
    assert replay.verdict is Verdict.REPLAY
    assert replay.reply is not None
    assert replay.reply.body == b'{"offsets": []}'
    assert (await store.claim(key, "other")).verdict is Verdict.MISMATCH


def test_identity_is_per_request_and_fixes_the_keyless_round() -> None:
    fp = fingerprint("POST", "/p", "", "application/json", b"{}")
    one = request_identity("acme", "t", "k", fp, 8)
    assert len(one) == IDENTITY_BYTES
    assert one == request_identity("acme", "t", "k", fp, 8)
    others = [
        request_identity("beta", "t", "k", fp, 8),
        request_identity("acme", "u", "k", fp, 8),
        request_identity("acme", "t", "k2", fp, 8),
        request_identity("acme", "t", "k", "other", 8),
        request_identity("acme", "t", "k", fp, 9),
    ]
    assert one not in others
    assert placement_start(one) == placement_start(request_identity("acme", "t", "k", fp, 8))


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
