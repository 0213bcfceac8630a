"""The one grant: client credentials (RFC 6749 §4.4), an API key trading itself for a token.

authlib's `ClientCredentialsGrant` authenticates the client (HTTP Basic or the
form, `client_secret_basic` / `client_secret_post`), refuses a client not
allowed the grant (`unauthorized_client`: a suspended tenant's key) and asks
us only which scope to grant: `scope` may name fewer scopes than the key holds,
never more (`invalid_scope`), and without it the token gets all of the key's.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientCredentialsGrant, InvalidScopeError, scope_to_list

from gateway.oauth.models import AUTH_METHODS, KeyClient
from tenants.errors import InvalidScopes, ScopesNotHeld
from tenants.minting import narrowed_scopes


class KeyCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]  # authlib is untyped
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        client: KeyClient = self.request.client
        assert client.principal is not None  # authenticated, and not suspended
        scope = self.request.payload.scope
        requested = scope_to_list(scope) if scope else None  # absent or empty: the key's
        try:
            client.granted_scopes = narrowed_scopes(client.principal, requested)
        except InvalidScopes as exc:
            raise InvalidScopeError(f"unknown scopes: {' '.join(exc.scopes)}") from None
        except ScopesNotHeld as exc:
            raise InvalidScopeError(
                f"the key does not hold the scopes: {' '.join(sorted(set(exc.scopes)))}"
            ) from None
