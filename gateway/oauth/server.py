"""authlib's `AuthorizationServer` for one request: loaded ahead, run synchronously, settled.

authlib's server classes are synchronous, and Tidegate's store is not. So each
request to `/oauth/*` gets its own small server (a few dicts, built in
microseconds) that works in three steps:

1. `load` (async): the clients the request names are loaded from the tenant
   directory (after the throttle of failed authentications admitted each id),
   and, for introspection and revocation, the token is verified by the
   directory exactly as a data endpoint would (signature, expiry, its key
   standing, not revoked).
2. `respond` (sync): authlib authenticates the client, runs the grant or the
   endpoint and renders the answer or the RFC 6749 §5.2 error, with
   `Cache-Control: no-store` and `Pragma: no-cache`.
3. `settle` (async): a failed client authentication is charged to that client
   id's throttle; an authenticated request is counted and charged to its
   tenant's request rate (429 refuses the answer: a minted token is then never
   sent, a revocation never written), its key's use noted, and a revocation
   written to the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Error
from starlette.responses import Response

from gateway.http.runtime import Runtime
from gateway.oauth.endpoints import TokenIntrospection, TokenRevocation
from gateway.oauth.grants import KeyCredentialsGrant
from gateway.oauth.models import IssuedToken, KeyClient, is_key_id
from gateway.oauth.requests import FormRequest
from tenants.errors import TenantSuspended, Unauthenticated
from tenants.minting import mint_access_token, token_lifetime
from tenants.principal import Scope

TOKEN = "token"  # noqa: S105 (an endpoint name)
INTROSPECTION = TokenIntrospection.ENDPOINT_NAME
REVOCATION = TokenRevocation.ENDPOINT_NAME


class RequestServer(AuthorizationServer):  # type: ignore[misc]  # authlib is untyped
    """The authorization server as one request sees it (see the module docstring)."""

    def __init__(self, runtime: Runtime, now_ms: int) -> None:
        super().__init__(scopes_supported=[s.value for s in Scope])
        self.runtime = runtime
        self.now_ms = now_ms
        self.issuer = runtime.signer.issuer
        self.audience = runtime.signer.audience
        self.clients: dict[str, KeyClient] = {}
        self.issued: IssuedToken | None = None
        self.to_revoke: IssuedToken | None = None
        self.register_token_generator("default", self._generate)
        self.register_grant(KeyCredentialsGrant)
        self.register_endpoint(TokenIntrospection)
        self.register_endpoint(TokenRevocation)

    # -- 1. load -----------------------------------------------------------------------

    async def load(self, client_ids: Iterable[str | None], token: str | None = None) -> None:
        """Load each named client (ClientAuthThrottled, before anything is checked, for
        an id that failed too often) and verify `token`, if given."""
        for client_id in dict.fromkeys(c for c in client_ids if c):
            if client_id in self.clients:
                continue
            if is_key_id(client_id):
                await self.runtime.auth_throttle.admit(client_id)
            self.clients[client_id] = await KeyClient.load(
                client_id, self.runtime.directory, self.now_ms
            )
        if token is not None:
            self.issued = await self._verified(token)

    async def _verified(self, token: str) -> IssuedToken | None:
        """The token as the directory verifies it for data endpoints; None for anything
        that is not a standing token minted here."""
        if token.count(".") != 2:
            return None  # API keys and garbage are no tokens of ours
        try:
            principal = await self.runtime.directory.authenticate(token, now_ms=self.now_ms)
        except (Unauthenticated, TenantSuspended):
            return None
        if principal.minted_from is None:
            return None  # an outside issuer's token: not for us to describe or revoke
        return IssuedToken(principal, self.now_ms)

    # -- 2. respond (authlib) ------------------------------------------------------------

    def respond(self, endpoint: str, request: FormRequest) -> Response:
        if endpoint == TOKEN:
            response: Response = self.create_token_response(request)
        else:
            response = self.create_endpoint_response(endpoint, request)
        return response

    def query_client(self, client_id: str) -> KeyClient:
        client = self.clients.get(client_id)
        if client is None:  # not named where `load` looked: a client no secret opens
            client = self.clients[client_id] = KeyClient(
                client_id, None, self.runtime.directory, self.now_ms
            )
        return client

    def _generate(
        self,
        grant_type: str,
        client: KeyClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        """The gateway's own at+jwt, as `POST /v1/tokens` mints it; no refresh token
        (RFC 6749 §4.4.3: a client asks again with its credentials)."""
        principal = client.principal
        assert principal is not None
        now_s = self.now_ms // 1000
        ttl = token_lifetime(principal, self.runtime.settings.token_ttl_s, now_s=now_s)
        token = mint_access_token(
            self.runtime.signer,
            principal,
            scopes=client.granted_scopes,
            topics=principal.topics,
            ttl_s=ttl,
            now_s=now_s,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(client.granted_scopes),
        }

    def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
        """Nothing to keep: the token is a signed JWT, and revocation is its own row."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: what happened is read off the clients in `settle`."""

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return Response(orjson.dumps(body), status_code=status, headers=dict(headers))

    def error_response(self, error: OAuth2Error) -> Response:
        """An RFC 6749 §5.2 error found before authlib ran (the form, the transport)."""
        response: Response = self.handle_error_response(None, error)
        return response

    # -- 3. settle -----------------------------------------------------------------------

    async def settle(self) -> None:
        runtime = self.runtime
        for client in self.clients.values():
            if client.failed and is_key_id(client.client_id):
                await runtime.auth_throttle.failed(client.client_id)
        for client in self.clients.values():
            if client.principal is None or client.loaded is None:
                continue
            await runtime.charge_request(client.principal)
            await runtime.directory.record_use(client.loaded, now_ms=self.now_ms)
        if self.to_revoke is not None:
            await runtime.directory.revoke_token(self.to_revoke.principal, now_ms=self.now_ms)
