"""API key format, parsing and hashing: pure functions, no storage.

A minted key reads `tg_<id>_<secret>_<check>`:

- `tg_` makes leaked keys easy to scan for;
- `<id>` (12 lowercase base32 characters) is public and names the stored record;
- `<secret>` (43 URL-safe characters, 256 bits) is never stored, only its
  peppered HMAC;
- `<check>` (6 hex characters of SHA-256 over the rest) lets a typo or a
  truncated paste be refused before any lookup.

Operator-chosen bootstrap keys (any `tg_` string of at least 32 characters)
carry no structure; they are stored under the fixed id `bootstrap`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "tg_"
BOOTSTRAP_KEY_ID = "bootstrap"
MIN_BOOTSTRAP_LENGTH = 32
_KEY = re.compile(r"^tg_([a-z2-7]{12})_([A-Za-z0-9_-]{43})_([0-9a-f]{6})$")
#: The shape of a minted key's id (the public part, also an OAuth2 client id).
KEY_ID = re.compile(r"[a-z2-7]{12}")


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:6]


def mint_key() -> tuple[str, str]:
    """A fresh (key_id, key); the key is shown once and never stored."""
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:12]
    secret = secrets.token_urlsafe(32)[:43].ljust(43, "A")
    body = f"{PREFIX}{key_id}_{secret}"
    return key_id, f"{body}_{_checksum(body)}"


def is_bootstrap_key(key: str) -> bool:
    """True for an operator-chosen key accepted as given (API.md's bootstrap rule)."""
    return key.startswith(PREFIX) and len(key) >= MIN_BOOTSTRAP_LENGTH and not _KEY.fullmatch(key)


def parse_key(key: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed minted key; None for anything else.

    The checksum is verified here, so malformed keys never reach the store.
    """
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    key_id, secret, check = match.groups()
    if not hmac.compare_digest(check, _checksum(f"{PREFIX}{key_id}_{secret}")):
        return None
    return key_id, secret


def hash_secret(secret: str, pepper: bytes) -> str:
    """The stored form of a secret: HMAC-SHA256 under the server's pepper."""
    return hmac.digest(pepper, secret.encode(), "sha256").hex()  # one call into OpenSSL


def secret_matches(secret: str, stored_hash: str, pepper: bytes) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    return hmac.compare_digest(hash_secret(secret, pepper), stored_hash)
