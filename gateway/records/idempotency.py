"""Idempotent produce: a retried request with the same `Idempotency-Key` appends once.

The key is claimed in the StateStore with `put_if_absent` before anything is
appended, so two concurrent duplicates cannot both append: the loser sees the
claim ("pending") and is told 409 + Retry-After. When the append finishes, the
reply replaces the claim and is kept for `ttl_s` (24 h by default), so a retry
gets the first reply, also after a restart or on another gateway sharing the
store. The same key with a different request (method, path, query,
content type, body) is refused with 422.

A claim expires after `pending_ttl_s` if its owner died mid-append; the outcome
of that one request is then unknown, and a retry appends again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import orjson

from storage.backend import StateStore

MAX_KEY_LENGTH = 255


class Verdict(Enum):
    """What a produce request with an Idempotency-Key must do."""

    PROCEED = "proceed"  # the key is ours now: append, then `complete`
    REPLAY = "replay"  # same request already done: answer `reply`
    IN_PROGRESS = "in-progress"  # same key being handled right now: 409
    MISMATCH = "mismatch"  # same key, another request: 422


@dataclass(frozen=True, slots=True)
class StoredReply:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    verdict: Verdict
    reply: StoredReply | None = None


def valid_key(key: str) -> bool:
    """1..255 printable ASCII characters (what the IETF draft and Stripe accept)."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(0x20 < ord(c) < 0x7F for c in key)


def fingerprint(method: str, path: str, query: str, content_type: str, body: bytes) -> str:
    """A hash of everything that makes two requests "the same request"."""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), content_type.encode()):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(body)
    return h.hexdigest()


def state_key(tenant: str, topic: str, key: str) -> str:
    """The StateStore key: namespaced by tenant and topic; hashed, so any key is safe."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idem/{tenant}/{topic}/{digest}"


class IdempotencyStore:
    """Claims, completes and releases Idempotency-Keys in a StateStore."""

    def __init__(self, state: StateStore, *, ttl_s: float, pending_ttl_s: float) -> None:
        self._state = state
        self._ttl_s = ttl_s
        self._pending_ttl_s = pending_ttl_s

    async def claim(self, key: str, fp: str) -> Claim:
        pending = orjson.dumps({"fp": fp, "state": "pending"})
        existing = await self._state.put_if_absent(key, pending, ttl_s=self._pending_ttl_s)
        if existing is None:
            return Claim(Verdict.PROCEED)
        try:
            entry = orjson.loads(existing)
            same = entry["fp"] == fp
            done = entry["state"] == "done"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            # An unreadable entry: treat as someone else's claim rather than guess.
            return Claim(Verdict.IN_PROGRESS)
        if not same:
            return Claim(Verdict.MISMATCH)
        if not done:
            return Claim(Verdict.IN_PROGRESS)
        return Claim(Verdict.REPLAY, StoredReply(int(entry["status"]), str(entry["body"]).encode()))

    async def complete(self, key: str, fp: str, status: int, body: bytes) -> None:
        """Remember the reply for `ttl_s`, replacing the claim."""
        entry = {"fp": fp, "state": "done", "status": status, "body": body.decode()}
        await self._state.put(key, orjson.dumps(entry), ttl_s=self._ttl_s)

    async def release(self, key: str) -> None:
        """Drop a claim whose request failed before appending, so a retry may proceed."""
        await self._state.delete(key)
