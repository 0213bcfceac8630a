"""JWT access tokens: the gateway's own short-lived tokens and trusted external issuers'.

Design:

* `TokenSigner` holds the gateway's ES256 (P-256) signing keys in a JSON file that
  only the gateway user can read (0600, written atomically: temp file, fsync,
  `os.replace`, fsync of the directory). The newest key signs. A key older than
  `rotate_after_s` is replaced on load (or by `rotate()`); replaced keys stay in
  the file and in `jwks()` for `keep_s` after they stopped signing, so tokens they
  signed keep verifying until they expire. `sign` refuses a `ttl_s` longer than
  `keep_s` for that reason.
* `JwtVerifier` implements `tenants.directory.TokenVerifier`. It never trusts the
  token to choose how it is checked: the unverified `iss` only selects which
  issuer's configuration applies, and from then on only that issuer's pinned
  algorithms and that issuer's keys (the signer's, or its configured JWKS) are
  used, passed explicitly to joserfc. So `alg: none`, HS256 "signed" with an RSA
  public key, keys embedded in the header (`jwk`, `x5c`) and key URLs in the
  header (`jku`, `x5u`) all fail. Only access tokens are accepted. The gateway's
  own tokens carry `typ: at+jwt` and must. An external issuer's may carry
  `at+jwt`, `JWT` or no `typ`, because Keycloak, Auth0, Azure AD and Google sign
  their access tokens `typ: JWT` (RFC 9068's `at+jwt` is an option there, if at
  all); an issuer configured `require_at_jwt` must send `at+jwt`. What keeps an
  OpenID Connect ID token minted for some web app from being replayed here is
  that its audience is that app, not the gateway, and that it carries a `nonce`,
  which is refused.
* A gateway token names the API key it was minted from (claim `key_id`): the
  directory refuses it once that key is revoked or expired or its tenant is
  suspended, so a token never outlives its key.
  Its `jti` lets it be revoked on its own (RFC 7009), which the directory also
  checks.
* Claims: `exp` is required; `exp`/`nbf`/`iat` are checked with a leeway of at
  most 60 s; `iss` must match; `aud` must contain the configured audience; `sub`
  is required. The tenant comes only from the verified tenant claim; scopes the
  gateway does not know are dropped.
* Every failure is `InvalidToken` with a short fixed reason; token contents are
  never echoed back. Tokens over 8 KiB are refused before any parsing.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key
from joserfc.jws import JWSRegistry

from tenants.directory import TENANT_NAME
from tenants.errors import InvalidToken
from tenants.jwks import JwksCache, StaticKeys
from tenants.principal import Principal, Scope, TenantId

__all__ = ["MAX_TOKEN_BYTES", "IssuerConfig", "JwtVerifier", "TokenSigner"]

#: Larger credentials are refused before parsing (bounded CPU and memory per request).
MAX_TOKEN_BYTES = 8192
#: The ceiling for any clock-skew allowance; more would stretch every token's life.
MAX_LEEWAY_S = 60
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: What an external issuer's access token may say it is (compared lowercased).
EXTERNAL_TOKEN_TYPES = ACCESS_TOKEN_TYPES | {"jwt", "application/jwt"}
OWN_ALGORITHM = "ES256"
OWN_TYPE = "at+jwt"
_OWN_LEEWAY_S = 30
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KNOWN_SCOPES = frozenset(s.value for s in Scope)
_FILE_VERSION = 1


@dataclass(frozen=True)
class IssuerConfig:
    """A trusted external issuer. Its `algorithms` are pinned: a token may not pick
    any other, and only asymmetric ones are allowed (a JWKS is public, an HMAC
    secret in it would be everyone's)."""

    issuer: str
    jwks_url: str | None
    audience: str
    tenant_claim: str = "tenant"
    scope_claim: str = "scope"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: int = 60
    jwks: Mapping[str, Any] | None = None  # static keys, for an issuer without a JWKS URL
    require_at_jwt: bool = False  # True: only `typ: at+jwt` (RFC 9068), not JWT or none

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("an issuer needs a non-empty issuer and audience")
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("an issuer needs exactly one of jwks_url and jwks")
        if not self.algorithms or not set(self.algorithms) <= _ASYMMETRIC:
            raise ValueError(f"issuer algorithms must be among {sorted(_ASYMMETRIC)}")
        if not 0 <= self.leeway_s <= MAX_LEEWAY_S:
            raise ValueError(f"leeway_s must be between 0 and {MAX_LEEWAY_S}")


# -- the gateway's own keys ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SigningKey:
    kid: str
    created_s: float
    key: ECKey


class TokenSigner:
    """The gateway's ES256 signing keys, persisted in a 0600 JSON file.

    `keys` is ordered oldest first; the last one signs.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        keys: Sequence[_SigningKey],
        *,
        issuer: str = "tidegate",
        audience: str = "tidegate",
        rotate_after_s: float = 86400.0,
        keep_s: float = 86400.0,
    ) -> None:
        if rotate_after_s <= 0 or keep_s <= 0:
            raise ValueError("rotate_after_s and keep_s must be positive")
        self.path = Path(path)
        self.issuer = issuer
        self.audience = audience
        self.rotate_after_s = rotate_after_s
        self.keep_s = keep_s
        self._keys = list(keys)
        self._public: dict[str, ECKey] = {}
        self._reindex()

    def _reindex(self) -> None:
        """Cache the public halves: verification is on every request's path."""
        self._public = {k.kid: ECKey.import_key(k.key.as_dict(private=False)) for k in self._keys}

    @classmethod
    def load_or_create(
        cls,
        path: str | os.PathLike[str],
        *,
        issuer: str = "tidegate",
        audience: str = "tidegate",
        rotate_after_s: float = 86400.0,
        keep_s: float = 86400.0,
        now_s: float | None = None,
    ) -> TokenSigner:
        """Load the key file (creating it on first start), rotating if the newest key
        is older than `rotate_after_s` and dropping keys retired over `keep_s` ago."""
        now = time.time() if now_s is None else now_s
        file = Path(path)
        keys: list[_SigningKey] = []
        if file.exists():
            # The file holds private keys: tighten a copy that was left readable.
            if file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)
            keys = _read_keys(file)
        signer = cls(
            file,
            keys,
            issuer=issuer,
            audience=audience,
            rotate_after_s=rotate_after_s,
            keep_s=keep_s,
        )
        if not keys or now - keys[-1].created_s >= rotate_after_s:
            signer.rotate(now_s=now)
        elif signer._prune(now):
            signer._save()
        return signer

    @property
    def current_kid(self) -> str:
        return self._keys[-1].kid

    @property
    def kids(self) -> tuple[str, ...]:
        """Every published key id, oldest first."""
        return tuple(k.kid for k in self._keys)

    def needs_rotation(self, now_s: float) -> bool:
        """Whether the signing key is older than `rotate_after_s` (checked as tokens are
        minted, so a long-running gateway rotates without a restart)."""
        return now_s - self._keys[-1].created_s >= self.rotate_after_s

    def rotate(self, *, now_s: float | None = None) -> str:
        """Make a new signing key now (older ones stay published for `keep_s`);
        returns its kid."""
        now = time.time() if now_s is None else now_s
        kid = secrets.token_urlsafe(12)
        key = ECKey.generate_key("P-256", {"kid": kid, "use": "sig", "alg": OWN_ALGORITHM})
        self._keys.append(_SigningKey(kid, now, key))
        self._prune(now)
        self._save()
        return kid

    def _prune(self, now: float) -> bool:
        """Drop keys whose successor has signed for over `keep_s` (no valid token
        can still carry their signature). Returns whether anything was dropped."""
        kept = [
            k
            for k, successor in zip(self._keys, self._keys[1:], strict=False)
            if now - successor.created_s < self.keep_s
        ]
        kept.append(self._keys[-1])
        dropped = len(kept) != len(self._keys)
        self._keys = kept
        self._reindex()
        return dropped

    def jwks(self) -> dict[str, Any]:
        """The public JWKS to publish: public halves only, never `d`."""
        return {"keys": [dict(self._public[k.kid].as_dict(private=False)) for k in self._keys]}

    def verification_key(self, kid: str) -> ECKey | None:
        """The public key for `kid`, or None (private material never leaves here)."""
        return self._public.get(kid)

    def sign(
        self,
        *,
        tenant: str,
        key_id: str,
        subject: str,
        scopes: Iterable[str],
        topics: Iterable[str],
        ttl_s: int,
        now_s: float,
    ) -> str:
        """An ES256 access token (typ at+jwt) for `tenant`, valid `ttl_s` from `now_s`,
        standing only while the API key `key_id` it is minted from does."""
        if not 0 < ttl_s <= self.keep_s:
            # A longer life would outlast the key's publication after rotation.
            raise ValueError("ttl_s must be positive and at most keep_s")
        current = self._keys[-1]
        issued = int(now_s)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "tenant": tenant,
            "key_id": key_id,
            "scope": " ".join(dict.fromkeys(scopes)),
            "topics": list(topics),
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl_s),
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": OWN_ALGORITHM, "typ": OWN_TYPE, "kid": current.kid}
        return jwt.encode(header, claims, current.key, algorithms=[OWN_ALGORITHM])

    def _save(self) -> None:
        document = {
            "version": _FILE_VERSION,
            "keys": [
                {"created_s": k.created_s, "jwk": dict(k.key.as_dict(private=True))}
                for k in self._keys
            ],
        }
        _write_private_file(self.path, json.dumps(document, indent=1).encode())


def _read_keys(path: Path) -> list[_SigningKey]:
    try:
        document = json.loads(path.read_bytes())
        if document.get("version") != _FILE_VERSION:
            raise ValueError("unsupported key file version")
        keys = []
        for entry in document["keys"]:
            key = ECKey.import_key(entry["jwk"])
            if not key.is_private or key.kid is None:
                raise ValueError("every key needs a kid and its private half")
            keys.append(_SigningKey(key.kid, float(entry["created_s"]), key))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, JoseError) as exc:
        # Refuse to start rather than silently minting new keys over a damaged file.
        raise ValueError(f"cannot read the token signing key file {str(path)!r}") from exc
    keys.sort(key=lambda k: k.created_s)
    return keys


def _write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically with a 0600 file holding `data`, durably."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; be explicit about it
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself survive a crash
    finally:
        os.close(dir_fd)


# -- verification ----------------------------------------------------------------------


def _b64json(segment: str) -> dict[str, Any]:
    """Decode one base64url JSON segment without trusting it."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


def _time(value: Any) -> float | None:
    """A NumericDate as float, None if it is not a finite JSON number: json.loads
    accepts NaN and Infinity, which would make a token compare as never expiring."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    return None


@dataclass(frozen=True, slots=True)
class _Trust:
    """How one issuer's tokens are checked."""

    issuer: str
    audience: str
    algorithms: frozenset[str]
    leeway_s: int
    tenant_claim: str
    scope_claim: str
    types: frozenset[str]  # the `typ` values accepted, lowercased
    typ_optional: bool  # whether a token without `typ` is accepted
    cache: JwksCache | StaticKeys | None  # None: the gateway's own signer


class JwtVerifier:
    """Turns a JWT from the gateway's signer or a configured issuer into a Principal."""

    def __init__(
        self,
        issuers: Sequence[IssuerConfig],
        *,
        signer: TokenSigner | None,
        client: httpx.AsyncClient | None = None,
        jwks_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`jwks_options` are passed to each issuer's `JwksCache` (ttl_s, timeouts...)."""
        names = [cfg.issuer for cfg in issuers] + ([signer.issuer] if signer else [])
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"issuer {name!r} is configured twice")
        self._signer = signer
        self._owns_client = client is None and bool(issuers)
        self._client = client
        if self._owns_client:
            self._client = httpx.AsyncClient(follow_redirects=False)
        self._trust: dict[str, _Trust] = {}
        if signer is not None:
            self._trust[signer.issuer] = _Trust(
                issuer=signer.issuer,
                audience=signer.audience,
                algorithms=frozenset({OWN_ALGORITHM}),
                leeway_s=_OWN_LEEWAY_S,
                tenant_claim="tenant",
                scope_claim="scope",
                types=ACCESS_TOKEN_TYPES,
                typ_optional=False,
                cache=None,
            )
        for cfg in issuers:
            self._trust[cfg.issuer] = _Trust(
                issuer=cfg.issuer,
                audience=cfg.audience,
                algorithms=frozenset(cfg.algorithms),
                leeway_s=cfg.leeway_s,
                tenant_claim=cfg.tenant_claim,
                scope_claim=cfg.scope_claim,
                types=ACCESS_TOKEN_TYPES if cfg.require_at_jwt else EXTERNAL_TOKEN_TYPES,
                typ_optional=not cfg.require_at_jwt,
                cache=(
                    JwksCache(cfg.jwks_url, client=self._client, **dict(jwks_options or {}))
                    if cfg.jwks_url is not None
                    else StaticKeys(cfg.jwks)
                ),
            )

    async def close(self) -> None:
        """Release the HTTP client if this verifier created it."""
        for trust in self._trust.values():
            if trust.cache is not None:
                await trust.cache.close()
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def verify(self, token: str, *, now_ms: int) -> Principal:
        """The principal a JWT stands for; raises InvalidToken for any defect."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise InvalidToken("malformed or oversized token")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidToken("malformed token")
        header = _b64json(parts[0])
        unverified = _b64json(parts[1])

        # The unverified `iss` only selects a configuration; nothing else is trusted.
        issuer = unverified.get("iss")
        trust = self._trust.get(issuer) if isinstance(issuer, str) else None
        if trust is None:
            raise InvalidToken("untrusted issuer")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in trust.algorithms:
            raise InvalidToken("signature algorithm not allowed")
        typ = header.get("typ")
        if typ is None:
            if not trust.typ_optional:
                raise InvalidToken("not an access token")
        elif not isinstance(typ, str) or typ.lower() not in trust.types:
            raise InvalidToken("not an access token")
        if "crit" in header or "b64" in header:
            # No critical extensions are supported; unencoded payloads (RFC 7797)
            # would make the claims checked differ from the segment inspected above.
            raise InvalidToken("unsupported token header")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")

        key = await self._key(trust, kid)
        claims = self._verified_claims(token, key, alg)
        return self._principal(trust, claims, now_ms)

    async def _key(self, trust: _Trust, kid: str | None) -> Key:
        if trust.cache is not None:
            return await trust.cache.key(kid)
        assert self._signer is not None
        key = self._signer.verification_key(kid) if kid is not None else None
        if key is None:
            raise InvalidToken("unknown key id")
        return key

    @staticmethod
    def _verified_claims(token: str, key: Key, alg: str) -> dict[str, Any]:
        if key.alg is not None and key.alg != alg:
            raise InvalidToken("the key is not for this algorithm")
        # Only the one algorithm already checked against the pin; strict_check_header
        # off because issuers add harmless private header fields; `crit` still applies.
        registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
        try:
            obj = jws.deserialize_compact(token, key, registry=registry)
        except JoseError as exc:
            raise InvalidToken("bad token signature") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("malformed token") from exc
        try:
            claims = json.loads(obj.payload) if obj.payload is not None else None
        except (ValueError, RecursionError) as exc:
            raise InvalidToken("malformed token") from exc
        if not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        return claims

    @staticmethod
    def _principal(trust: _Trust, claims: dict[str, Any], now_ms: int) -> Principal:
        now = now_ms / 1000
        leeway = trust.leeway_s
        if claims.get("iss") != trust.issuer:
            raise InvalidToken("untrusted issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or trust.audience not in audiences:
            raise InvalidToken("the token is not for this gateway")
        if "nonce" in claims:
            raise InvalidToken("not an access token")  # an OpenID Connect ID token

        exp = _time(claims.get("exp"))
        if exp is None:
            raise InvalidToken("the token has no expiry")
        if now > exp + leeway:
            raise InvalidToken("the token has expired")
        for name in ("nbf", "iat"):
            if claims.get(name) is None:
                continue
            value = _time(claims[name])
            if value is None:
                raise InvalidToken("malformed token")
            if value > now + leeway:
                raise InvalidToken("the token is not yet valid")

        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token has no subject")
        tenant = claims.get(trust.tenant_claim)
        if not isinstance(tenant, str) or not TENANT_NAME.fullmatch(tenant):
            raise InvalidToken("the token names no valid tenant")

        raw_scopes = claims.get(trust.scope_claim, [])
        if isinstance(raw_scopes, str):
            raw_scopes = raw_scopes.split()
        if not isinstance(raw_scopes, list) or not all(isinstance(s, str) for s in raw_scopes):
            raise InvalidToken("malformed scope claim")
        topics = claims.get("topics", [])
        if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
            raise InvalidToken("malformed topics claim")

        known = _KNOWN_SCOPES
        minted_from: str | None = None
        if trust.cache is not None:
            # An external issuer speaks for its tenants, never for the operator.
            known = known - {Scope.ADMIN.value}
        else:
            minted_from = claims.get("key_id")
            if not isinstance(minted_from, str) or not minted_from:
                raise InvalidToken("the token names no key")
        token_id = claims.get("jti")
        issued = _time(claims.get("iat"))
        return Principal(
            tenant=TenantId(tenant),
            credential_id=f"jwt:{trust.issuer}:{subject}",
            scopes=frozenset(s for s in raw_scopes if s in known),
            topics=tuple(topics),
            expires_at_ms=int(exp * 1000),
            via="jwt",
            minted_from=minted_from,
            token_id=token_id if isinstance(token_id, str) and token_id else None,
            issued_at_ms=None if issued is None else int(issued * 1000),
        )
