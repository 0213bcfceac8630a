"""Introspection (RFC 7662) and revocation (RFC 7009) on authlib's endpoint classes.

Who may ask about what: the caller authenticates as a client (an API key, as at
the token endpoint). The operator's keys may introspect and revoke any token
minted here; any other key sees only its own tenant's tokens, and may revoke
only the tokens minted from itself. A token of another tenant is, to that
caller, a token that does not exist: introspection says `{"active": false}`
and revocation answers 200 having done nothing, exactly as for garbage, an
expired token, a revoked one or one from an outside issuer. A suspended
tenant's key is refused (`unauthorized_client`).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    TokenEndpoint,
    UnauthorizedClientError,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from gateway.oauth.models import AUTH_METHODS, IssuedToken, KeyClient
from gateway.oauth.requests import FormRequest

#: Hints RFC 7009/7662 define; none is needed (there is one kind of token here).
TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


class UnsupportedTokenTypeHint(UnsupportedTokenTypeError):  # type: ignore[misc]
    """RFC 7009 §2.2.1's `unsupported_token_type` with the status of §5.2 (400);
    authlib's carries 401, which would need a challenge it does not send."""

    status_code = 400


class _KeyClientEndpoint(TokenEndpoint):  # type: ignore[misc]  # authlib is untyped
    """What both endpoints share: API keys as clients (Basic or the form), a suspended
    tenant's key refused, and the token the request server verified beforehand."""

    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def authenticate_endpoint_client(self, request: FormRequest) -> KeyClient:
        client: KeyClient = super().authenticate_endpoint_client(request)
        if client.suspended:
            raise UnauthorizedClientError("the client's tenant is suspended")
        return client

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        issued: IssuedToken | None = self.server.issued
        return issued


def _require_token(request: FormRequest) -> None:
    if not request.form.get("token"):
        raise InvalidRequestError("the token parameter is required")


class TokenIntrospection(_KeyClientEndpoint, IntrospectionEndpoint):  # type: ignore[misc]
    def check_params(self, request: FormRequest, client: KeyClient) -> None:
        _require_token(request)
        # An unknown token_type_hint is ignored (RFC 7662 §2.1: the search goes on).

    def check_permission(self, token: IssuedToken, client: KeyClient, request: Any) -> bool:
        return token.visible_to(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        principal = token.principal
        issued_ms = principal.issued_at_ms
        expires_ms = principal.expires_at_ms
        return {
            "active": True,
            "scope": token.get_scope(),
            "client_id": token.key_id,
            "token_type": "Bearer",
            "exp": None if expires_ms is None else expires_ms // 1000,
            "iat": None if issued_ms is None else issued_ms // 1000,
            "sub": token.key_id,
            "iss": self.server.issuer,
            "aud": self.server.audience,
            "jti": principal.token_id,
            "tenant": principal.tenant,
            "topics": list(principal.topics),
        }


class TokenRevocation(_KeyClientEndpoint, RevocationEndpoint):  # type: ignore[misc]
    def check_params(self, request: FormRequest, client: KeyClient) -> None:
        _require_token(request)
        hint = request.form.get("token_type_hint")
        if hint and hint not in TOKEN_TYPE_HINTS:
            raise UnsupportedTokenTypeHint(f"unknown token_type_hint {hint!r}")

    def authenticate_token(self, request: FormRequest, client: KeyClient) -> IssuedToken | None:
        """authlib's, except that a token the client may not see is no token at all."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is None or not token.visible_to(client):
            return None
        if not token.check_client(client):
            raise InvalidGrantError("the token was issued to another client")
        return token

    def revoke_token(self, token: IssuedToken, request: FormRequest) -> None:
        # authlib is synchronous: the store write happens once it has answered.
        self.server.to_revoke = token
