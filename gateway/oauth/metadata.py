"""The server metadata document (RFC 8414) and the base URL every absolute URL starts with.

Clients configure themselves from `GET /.well-known/oauth-authorization-server`:
where the token, introspection and revocation endpoints are, where the signing
keys are (`jwks_uri`, the existing `/.well-known/jwks.json`), and what is
supported. The URLs are absolute, so they start from `TIDEGATE_PUBLIC_URL`
(the URL clients reach the gateway on, e.g. `https://stream.example.com`
behind a TLS proxy); without it, from the request's own base URL (scheme,
`Host` header and port as the request came in): right on a laptop, but a
client-chosen `Host` would then be echoed back, so a deployment sets the
setting. The same base is the `issuer`, and the URI authlib checks for
transport security (https, or http only on loopback).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from starlette.requests import Request

from gateway.http.settings import Settings
from gateway.oauth.models import AUTH_METHODS, GRANT_TYPE
from tenants.principal import Scope

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path)
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"


def base_url(settings: Settings, request: Request) -> str:
    """`TIDEGATE_PUBLIC_URL`, else the request's base URL; no trailing slash."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def server_metadata(base: str) -> dict[str, Any]:
    """The RFC 8414 document for a gateway reached at `base`."""
    methods = list(AUTH_METHODS)
    return dict(
        AuthorizationServerMetadata(
            {
                "issuer": base,
                "token_endpoint": base + TOKEN_PATH,
                "jwks_uri": base + JWKS_PATH,
                "scopes_supported": [s.value for s in Scope],
                # Required by RFC 8414; without an authorization endpoint there is none.
                "response_types_supported": [],
                "grant_types_supported": [GRANT_TYPE],
                "token_endpoint_auth_methods_supported": methods,
                "introspection_endpoint": base + INTROSPECTION_PATH,
                "introspection_endpoint_auth_methods_supported": methods,
                "revocation_endpoint": base + REVOCATION_PATH,
                "revocation_endpoint_auth_methods_supported": methods,
            }
        )
    )
