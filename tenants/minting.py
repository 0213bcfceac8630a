"""Minting the gateway's own access tokens from a verified API key: one rule for every door.

`POST /v1/tokens` and the OAuth2 token endpoint (`POST /oauth/token`) hand out
the same token: an ES256 `at+jwt` from `TokenSigner`, with the same or fewer
scopes than the key, never living past the key's own expiry, naming the key
(`key_id`) so that it dies with it. What differs between the two doors is only
how the request is spelled; what may be granted is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable

from tenants.directory import check_scopes
from tenants.errors import ScopesNotHeld, Unauthenticated
from tenants.principal import Principal, Scope
from tenants.tokens import TokenSigner


def narrowed_scopes(principal: Principal, requested: Iterable[str] | None) -> tuple[str, ...]:
    """The scopes a token may carry: all of the key's (None asked), or those asked if the
    key holds each of them. Unknown scopes raise InvalidScopes; scopes the key lacks
    (`admin` included, which no other scope implies) raise ScopesNotHeld."""
    if requested is None:
        return tuple(sorted(principal.scopes))
    scopes = check_scopes(requested)
    extra = [s for s in scopes if not principal.allows(s)]
    if Scope.ADMIN.value in scopes and Scope.ADMIN.value not in principal.scopes:
        extra.append(Scope.ADMIN.value)
    if extra:
        raise ScopesNotHeld(extra)
    return scopes


def token_lifetime(principal: Principal, ttl_s: int, *, now_s: int) -> int:
    """`ttl_s`, cut so that the token expires no later than the key; Unauthenticated
    when the key has already expired."""
    if principal.expires_at_ms is None:
        return ttl_s
    ttl = min(ttl_s, principal.expires_at_ms // 1000 - now_s)
    if ttl <= 0:
        raise Unauthenticated("the key has expired")
    return ttl


def mint_access_token(
    signer: TokenSigner,
    principal: Principal,
    *,
    scopes: Iterable[str],
    topics: Iterable[str],
    ttl_s: int,
    now_s: int,
) -> str:
    """A token for the key `principal` verified, with `scopes` and `topics` already
    narrowed and `ttl_s` already bounded (`token_lifetime`)."""
    if principal.via != "key":
        raise ValueError("tokens are minted from an API key")
    if signer.needs_rotation(now_s):
        # On the loop on purpose: a key and its published half change together, so no
        # token is signed by a key that is not yet published. A few ms, once a day.
        signer.rotate(now_s=now_s)
    return signer.sign(
        tenant=principal.tenant,
        key_id=principal.credential_id,
        subject=principal.credential_id,
        scopes=scopes,
        topics=topics,
        ttl_s=ttl_s,
        now_s=now_s,
    )
