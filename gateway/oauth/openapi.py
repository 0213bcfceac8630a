"""The OpenAPI paths and schemas of the OAuth2 endpoints (merged into `gateway.openapi`).

Their requests are forms (`application/x-www-form-urlencoded`, RFC 6749
Appendix B) and their errors the RFC 6749 §5.2 JSON; the answers the rest of
the API gives in its problem shape (413, 429, 503) keep it.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import PROBLEM, RATE_LIMITED, json_body, ref
from gateway.oauth.models import AUTH_METHODS, GRANT_TYPE
from tenants.principal import Scope

FORM = "application/x-www-form-urlencoded"
ERROR_CODES = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "insecure_transport",
]
NO_STORE = {
    "Cache-Control": {"schema": {"const": "no-store"}},
    "Pragma": {"schema": {"const": "no-cache"}},
}
CLIENT_SECURITY: list[dict[str, list[str]]] = [{"client": []}, {}]
SECURITY_SCHEMES: dict[str, Any] = {
    "client": {
        "type": "http",
        "scheme": "basic",
        "description": "client_secret_basic: an API key's id as the user, the key as the "
        "password (or both in the form: client_secret_post)",
    }
}


def _form(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {FORM: {"schema": ref(schema_name)}}}


def _errors(description: str) -> dict[str, Any]:
    return {"description": description, "headers": NO_STORE, **json_body(ref("OAuthError"))}


CLIENT_FIELDS: dict[str, Any] = {
    "client_id": {"type": "string", "description": "client_secret_post: the API key's id"},
    "client_secret": {"type": "string", "description": "client_secret_post: the API key"},
}

SCHEMAS: dict[str, Any] = {
    "OAuthTokenRequest": {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
            "scope": {
                "type": "string",
                "description": "space-separated; the key's scopes or fewer (default: all)",
            },
            **CLIENT_FIELDS,
        },
    },
    "OAuthToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string", "description": "an ES256 JWT, typ at+jwt"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "scope": {"type": "string"},
        },
    },
    "OAuthTokenParameter": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
            **CLIENT_FIELDS,
        },
    },
    "OAuthIntrospection": {
        "type": "object",
        "required": ["active"],
        "description": "only `active: false` for a token the caller may not see",
        "properties": {
            "active": {"type": "boolean"},
            "scope": {"type": "string"},
            "client_id": {"type": "string", "description": "the key the token was minted from"},
            "token_type": {"const": "Bearer"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "sub": {"type": "string"},
            "iss": {"type": "string"},
            "aud": {"type": "string"},
            "jti": {"type": "string"},
            "tenant": {"type": "string"},
            "topics": {"type": "array", "items": {"type": "string"}},
        },
    },
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"enum": ERROR_CODES},
            "error_description": {"type": "string"},
            "error_uri": {"type": "string"},
        },
    },
    "OAuthServerMetadata": {
        "type": "object",
        "required": ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"],
        "properties": {
            "issuer": {"type": "string", "format": "uri"},
            "token_endpoint": {"type": "string", "format": "uri"},
            "introspection_endpoint": {"type": "string", "format": "uri"},
            "revocation_endpoint": {"type": "string", "format": "uri"},
            "jwks_uri": {"type": "string", "format": "uri"},
            "scopes_supported": {"type": "array", "items": {"enum": [s.value for s in Scope]}},
            "response_types_supported": {"type": "array", "maxItems": 0},
            "grant_types_supported": {"type": "array", "items": {"const": GRANT_TYPE}},
            **{
                f"{which}_endpoint_auth_methods_supported": {
                    "type": "array",
                    "items": {"enum": list(AUTH_METHODS)},
                }
                for which in ("token", "introspection", "revocation")
            },
        },
    },
}

_SHARED = {"413": PROBLEM, "429": RATE_LIMITED}

PATHS: dict[str, Any] = {
    "/oauth/token": {
        "post": {
            "summary": "RFC 6749 client credentials: an API key for a short-lived token",
            "security": CLIENT_SECURITY,
            "requestBody": _form("OAuthTokenRequest"),
            "responses": {
                "200": {
                    "description": "the token",
                    "headers": NO_STORE,
                    **json_body(ref("OAuthToken")),
                },
                "400": _errors(
                    "invalid_request, unsupported_grant_type, invalid_scope, "
                    "unauthorized_client (a suspended tenant's key), insecure_transport"
                ),
                "401": _errors("invalid_client, with WWW-Authenticate: Basic"),
                **_SHARED,
            },
        }
    },
    "/oauth/introspect": {
        "post": {
            "summary": "RFC 7662: whether a token minted here is active, and its claims",
            "security": CLIENT_SECURITY,
            "requestBody": _form("OAuthTokenParameter"),
            "responses": {
                "200": {
                    "description": "the token's state",
                    "headers": NO_STORE,
                    **json_body(ref("OAuthIntrospection")),
                },
                "400": _errors("invalid_request, unauthorized_client, insecure_transport"),
                "401": _errors("invalid_client, with WWW-Authenticate: Basic"),
                **_SHARED,
            },
        }
    },
    "/oauth/revoke": {
        "post": {
            "summary": "RFC 7009: refuse a token minted here from now on, everywhere",
            "security": CLIENT_SECURITY,
            "requestBody": _form("OAuthTokenParameter"),
            "responses": {
                "200": {
                    "description": "revoked, or nothing to revoke (unknown to this client)",
                    "headers": NO_STORE,
                    **json_body({"type": "object", "maxProperties": 0}),
                },
                "400": _errors(
                    "invalid_request, invalid_grant (issued to another key of the tenant), "
                    "unsupported_token_type, unauthorized_client, insecure_transport"
                ),
                "401": _errors("invalid_client, with WWW-Authenticate: Basic"),
                **_SHARED,
            },
        }
    },
    "/.well-known/oauth-authorization-server": {
        "get": {
            "summary": "RFC 8414 server metadata: endpoints, keys, grant types, scopes",
            "security": [],
            "responses": {
                "200": {"description": "the metadata", **json_body(ref("OAuthServerMetadata"))}
            },
        }
    },
}
