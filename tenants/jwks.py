"""A bounded, fail-static cache of one external issuer's JSON Web Key Set.

Design:

* Only the `https`/`http` URL from the gateway's configuration is ever fetched.
  Nothing a token carries (`jku`, `x5u`, `jwk`, `x5c` headers) can name a place to
  fetch from or a key to trust; the verifier never hands those to this module.
* Keys are cached for `ttl_s`. A token with an unknown `kid` (the issuer rotated)
  triggers a refetch, but at most once per `refetch_interval_s`, so a stream of
  tokens with made-up `kid`s cannot turn the gateway into a load generator
  against the issuer.
* When the issuer is down or answers garbage, the last good set keeps being used
  for up to `max_stale_s` past its expiry (an IdP blip must not log every client
  out); after that every lookup fails closed. Failed fetches are also retried at
  most once per `refetch_interval_s`, so a dead issuer does not add `timeout_s`
  to every request.
* A fetch is bounded in time (`timeout_s`, the whole exchange, not per read) and
  size (`max_bytes`, streamed, reading stops at the limit). Redirects are not
  followed: the configured URL is the trust anchor.
* Concurrent callers share one in-flight fetch through an `asyncio.Lock`; the
  ones that waited reuse its result instead of fetching again.
* Symmetric (`oct`) keys and keys marked for encryption are dropped: a JWKS is
  public, so an HMAC secret in it would let anyone mint tokens.

Every failure a caller sees is `InvalidToken` with a reason that is safe to show.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey

from tenants.errors import InvalidToken

__all__ = ["JwksCache", "StaticKeys"]

_PUBLIC_KEY_TYPES = (RSAKey, ECKey, OKPKey)


class _FetchFailed(Exception):
    """Internal: a fetch that did not produce a usable key set (never shown)."""


@dataclass(slots=True)
class _KeySet:
    keys: dict[str | None, Key]
    expires_at: float


class JwksCache:
    """The signing keys of one issuer, fetched from its configured JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        refetch_interval_s: float = 30.0,
        max_stale_s: float = 3600.0,
        max_bytes: int = 65536,
        timeout_s: float = 3.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            # Refuse at configuration time: file://, data: and friends would let the
            # JWKS come from somewhere other than the issuer.
            raise ValueError("a JWKS URL must be an absolute http(s) URL")
        if ttl_s <= 0 or refetch_interval_s < 0 or max_stale_s < 0:
            raise ValueError("ttl_s must be positive, the other intervals not negative")
        if max_bytes <= 0 or timeout_s <= 0:
            raise ValueError("max_bytes and timeout_s must be positive")
        self.url = url
        self._ttl_s = ttl_s
        self._refetch_interval_s = refetch_interval_s
        self._max_stale_s = max_stale_s
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._set: _KeySet | None = None
        self._last_attempt: float | None = None
        self._attempts = 0  # bumped per fetch, so lock waiters can see one happened

    async def close(self) -> None:
        """Close the HTTP client if this cache created it (a shared one is the owner's)."""
        if self._owns_client:
            await self._client.aclose()

    async def key(self, kid: str | None) -> Key:
        """The public key for `kid`; raises InvalidToken when there is none to trust.

        `kid` None is accepted only while the set holds exactly one key, so a token
        can never make us try keys until one fits.
        """
        now = self._clock()
        current = self._set
        if current is None or now >= current.expires_at:
            current = await self._refresh(force=False)
        found = self._find(current, kid)
        if found is not None:
            return found
        if kid is None:
            raise InvalidToken("the token names no key id")
        # Unknown kid: the issuer may have rotated. Refetch, but rate-limited.
        current = await self._refresh(force=True)
        found = self._find(current, kid)
        if found is None:
            raise InvalidToken("unknown key id")
        return found

    @staticmethod
    def _find(current: _KeySet, kid: str | None) -> Key | None:
        if kid is None:
            if len(current.keys) == 1:
                return next(iter(current.keys.values()))
            return None
        return current.keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._refetch_interval_s

    async def _refresh(self, *, force: bool) -> _KeySet:
        """Fetch if allowed and needed; return the set to use (fresh or stale).

        `force` means "fetch even though the set has not expired" (unknown kid).
        """
        seen_attempts = self._attempts
        async with self._lock:
            now = self._clock()
            needed = force or self._set is None or now >= self._set.expires_at
            if needed and self._attempts == seen_attempts and self._may_fetch(now):
                self._attempts += 1
                self._last_attempt = now
                try:
                    keys = await self._fetch()
                except _FetchFailed:
                    pass
                else:
                    self._set = _KeySet(keys, self._clock() + self._ttl_s)
            current = self._set
        if current is None:
            raise InvalidToken("the issuer's keys are unavailable")
        if self._clock() >= current.expires_at + self._max_stale_s:
            raise InvalidToken("the issuer's keys are unavailable")
        return current

    async def _fetch(self) -> dict[str | None, Key]:
        try:
            async with asyncio.timeout(self._timeout_s):
                body = await self._download()
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            raise _FetchFailed from exc
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError, deep nesting
            raise _FetchFailed from exc
        return self._parse(document)

    async def _download(self) -> bytes:
        async with self._client.stream(
            "GET",
            self.url,
            # identity + aiter_raw: the size limit counts the bytes we hold, so a
            # compressed body cannot expand past it.
            headers={
                "Accept": "application/json, application/jwk-set+json",
                "Accept-Encoding": "identity",
            },
            follow_redirects=False,
            timeout=self._timeout_s,
        ) as response:
            if response.status_code != 200:
                raise _FetchFailed
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                raise _FetchFailed
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_bytes:
                    raise _FetchFailed
                chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _parse(document: Any) -> dict[str | None, Key]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise _FetchFailed
        keys: dict[str | None, Key] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # RFC 7517 §5: skip what we do not understand; never oct
            if entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if kid is not None and not isinstance(kid, str):
                continue
            try:
                imported = JWKRegistry.import_key(entry)
                # Keep only the public half even if an issuer leaked a private key.
                public = JWKRegistry.import_key(imported.as_dict(private=False))
            except (JoseError, ValueError, TypeError, KeyError):
                continue
            if not isinstance(public, _PUBLIC_KEY_TYPES) or kid in keys:
                continue  # a duplicate kid is ambiguous: the first one wins
            keys[kid] = public
        if not keys:
            raise _FetchFailed
        return keys


class StaticKeys:
    """An issuer's keys given in the configuration (a JWKS document) instead of a URL:
    for issuers without a JWKS endpoint. Parsed once with the same rules as a fetch."""

    def __init__(self, document: Any) -> None:
        try:
            self._keys = _KeySet(JwksCache._parse(document), float("inf"))
        except _FetchFailed:
            raise ValueError("the static JWKS holds no usable public signing key") from None

    async def key(self, kid: str | None) -> Key:
        found = JwksCache._find(self._keys, kid)
        if found is None:
            raise InvalidToken("unknown key id" if kid is not None else "the token names no key id")
        return found

    async def close(self) -> None:
        """Nothing to release; present so it can stand where a JwksCache does."""
