"""Idempotent produce: a retried request with the same `Idempotency-Key` appends once.

What makes it exactly-once is the log, not this module: the request's
`identity` (a hash of tenant, topic, key, the request's fingerprint and the
topic's partition count) goes into every batch the request writes, and each
partition answers a batch whose identity it already holds (also after a crash:
it rebuilds that memory from its own log) with the original offsets instead
of appending it. So a retry after a crash or a partial failure appends only
the partitions that lack it and gets the reply of the first success, and two
concurrent duplicates cannot both append. Keyless records are placed from the
identity, not the round-robin counter, so a retry puts them where the first
attempt did.

The StateStore entry is a cache and a guard beside that: the key's
fingerprint is recorded before anything is appended ("pending", for
`pending_ttl_s`), so the same key with a different request (method, path,
query, content type, body) is refused with 422; once a reply exists it
replaces the claim for `ttl_s` and a retry is answered from it without
touching the log. Nothing here ever makes a retry wait.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import orjson

from storage.backend import StateStore
from storage.records import IDENTITY_BYTES

MAX_KEY_LENGTH = 255


class Verdict(Enum):
    """What a produce request with an Idempotency-Key must do."""

    PROCEED = "proceed"  # append with the request's identity (the log dedupes), then `complete`
    REPLAY = "replay"  # same request already answered: answer `reply`
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


def fingerprint(
    method: str,
    path: str,
    query: str,
    content_type: str,
    body: bytes,
    schema_version: str | None = None,
) -> str:
    """A hash of everything that makes two requests "the same request": with the
    `Tidegate-Schema-Version` header when one was sent (it decides what is stored)."""
    h = hashlib.sha256()
    parts = [method.encode(), path.encode(), query.encode(), content_type.encode()]
    if schema_version is not None:
        parts.append(b"schema-version:" + schema_version.encode())
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(body)
    return h.hexdigest()


def request_identity(tenant: str, topic: str, key: str, fp: str, partitions: int) -> bytes:
    """The identity the request's batches carry (`IDENTITY_BYTES`). The partition
    count is part of it because placement depends on it: a retry after the topic
    changed its count is a new request."""
    h = hashlib.sha256(b"tidegate-produce-identity\x00")
    for part in (tenant, topic, key, fp, str(partitions)):
        raw = part.encode()
        h.update(len(raw).to_bytes(4, "big"))
        h.update(raw)
    return h.digest()[:IDENTITY_BYTES]


def placement_start(identity: bytes) -> int:
    """Where the request's keyless records start their round: from the identity, so
    a retry places them as the first attempt did (and requests still spread)."""
    return int.from_bytes(identity[:4], "big")


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
            reply = StoredReply(int(entry["status"]), str(entry["body"]).encode()) if done else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # Unreadable: appending is still safe (the identity holds the fingerprint).
            return Claim(Verdict.PROCEED)
        if not same:
            return Claim(Verdict.MISMATCH)
        if reply is None:
            # Unfinished: crashed, failed part-way, or running now. The partitions
            # know what they hold, so the append is retried, never waited for.
            return Claim(Verdict.PROCEED)
        return Claim(Verdict.REPLAY, reply)

    async def complete(self, key: str, fp: str, status: int, body: bytes) -> None:
        """Remember the reply for `ttl_s`, replacing the claim."""
        entry = {"fp": fp, "state": "done", "status": status, "body": body.decode()}
        await self._state.put(key, orjson.dumps(entry), ttl_s=self._ttl_s)
