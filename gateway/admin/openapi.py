"""The OpenAPI paths and schemas of tenants, keys, tokens and usage (merged into `openapi`).

Kept apart from the topic and record routes so each file stays readable; the
same route-table test covers both.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import json_body, problems, ref
from tenants.plans import LIMIT_NAMES
from tenants.principal import Scope


def _param(name: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"name": name, "in": "path", "required": True, "schema": schema}


TENANT = _param("tenant")
KEY_ID = _param("key_id")
SCOPES = {"type": "array", "items": {"enum": [s.value for s in Scope]}}
NULLABLE_NUMBER = {"type": ["number", "null"], "minimum": 0}
NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
PLAN_NAME = {"type": ["string", "null"], "maxLength": 100}
MAX_KEY_TTL_S = 10 * 365 * 24 * 3600  # gateway.admin.MAX_KEY_TTL_S
LIMITS = {
    "type": "object",
    "description": "each limit of the plan with the overrides applied; null is unlimited",
    "properties": {
        name: NULLABLE_NUMBER if name.endswith("_per_second") else NULLABLE_INT
        for name in LIMIT_NAMES
    },
}

JWK = {
    "type": "object",
    "description": "an ES256 public key (no private members)",
    "required": ["kty", "crv", "x", "y", "kid"],
    "properties": {
        "kty": {"const": "EC"},
        "crv": {"const": "P-256"},
        "x": {"type": "string"},
        "y": {"type": "string"},
        "kid": {"type": "string"},
        "use": {"const": "sig"},
        "alg": {"const": "ES256"},
    },
}

SCHEMAS: dict[str, Any] = {
    "Limits": LIMITS,
    "QuotaOverrides": {**LIMITS, "additionalProperties": False},
    "Tenant": {
        "type": "object",
        "required": ["name", "id", "plan", "status", "created_ms", "overrides", "limits"],
        "properties": {
            "name": {"type": "string"},
            "id": {
                "type": "string",
                "description": "the tenant's immutable id, never reused: a tenant created "
                "again under a deleted one's name gets another and none of its data",
            },
            "plan": {"type": "string"},
            "status": {"enum": ["active", "suspended"]},
            "created_ms": {"type": "integer"},
            "overrides": {
                "type": "object",
                "description": "the limits set for this tenant alone (null: unlimited)",
                "additionalProperties": {"type": ["number", "null"]},
            },
            "limits": ref("Limits"),
        },
    },
    "TenantCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
            "plan": {**PLAN_NAME, "description": "TIDEGATE_DEFAULT_PLAN by default"},
        },
    },
    "TenantPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "status": {"enum": ["active", "suspended", None]},
            "plan": PLAN_NAME,
        },
    },
    "KeyCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scopes"],
        "properties": {
            "scopes": {
                **SCOPES,
                "minItems": 1,
                "maxItems": 16,
                "description": "admin only for keys of the operator tenant",
            },
            "topics": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "string"},
                "description": "topic patterns such as orders*; none means every topic",
            },
            "expires_in_s": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_KEY_TTL_S},
        },
    },
    "Key": {
        "type": "object",
        "required": [
            "key_id",
            "tenant",
            "scopes",
            "topics",
            "created_ms",
            "expires_ms",
            "revoked",
            "last_used_ms",
        ],
        "properties": {
            "key_id": {"type": "string"},
            "tenant": {"type": "string"},
            "scopes": SCOPES,
            "topics": {"type": "array", "items": {"type": "string"}},
            "created_ms": {"type": "integer"},
            "expires_ms": {"type": ["integer", "null"]},
            "revoked": {"type": "boolean"},
            "last_used_ms": {"type": ["integer", "null"]},
            "key": {"type": "string", "description": "only in the reply that mints it"},
        },
    },
    "TokenRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "scopes": {
                **SCOPES,
                "type": ["array", "null"],
                "maxItems": 16,
                "description": "the key's scopes by default; no more than the key holds",
            },
            "topics": {
                "type": ["array", "null"],
                "maxItems": 100,
                "items": {"type": "string"},
                "description": "the key's topic patterns by default; none wider",
            },
            "ttl_seconds": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "TIDEGATE_TOKEN_TTL_S by default, at most TIDEGATE_TOKEN_MAX_TTL_S",
            },
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope", "topics"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string"},
            "topics": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["tenant", "plan", "quotas", "totals"],
        "properties": {
            "tenant": {"type": "string"},
            "plan": {"type": "string"},
            "quotas": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["limit", "used"],
                    "properties": {
                        "limit": {"type": ["number", "null"]},
                        "used": {"type": ["number", "null"]},
                    },
                },
            },
            "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
}

_TENANT_REPLY = {"description": "the tenant", **json_body(ref("Tenant"))}
_NO_CONTENT = {"description": "done"}

PATHS: dict[str, Any] = {
    "/v1/admin/tenants": {
        "post": {
            "summary": "Create a tenant (operator)",
            "requestBody": {"required": True, **json_body(ref("TenantCreate"))},
            "responses": {"201": _TENANT_REPLY, **problems(400, 401, 403, 409, 415, 422, 507)},
        },
        "get": {
            "summary": "List tenants (operator)",
            "responses": {
                "200": {
                    "description": "every tenant",
                    **json_body(
                        {
                            "type": "object",
                            "required": ["tenants"],
                            "properties": {"tenants": {"type": "array", "items": ref("Tenant")}},
                        }
                    ),
                },
                **problems(401, 403),
            },
        },
    },
    "/v1/admin/tenants/{tenant}": {
        "parameters": [TENANT],
        "get": {
            "summary": "Describe a tenant (operator)",
            "responses": {"200": _TENANT_REPLY, **problems(401, 403, 404)},
        },
        "patch": {
            "summary": "Suspend, resume or change the plan of a tenant (operator)",
            "requestBody": {"required": True, **json_body(ref("TenantPatch"))},
            "responses": {"200": _TENANT_REPLY, **problems(400, 401, 403, 404, 409, 415, 422, 507)},
        },
        "delete": {
            "summary": "Delete a tenant, its keys and its topics (operator)",
            "responses": {"204": _NO_CONTENT, **problems(401, 403, 404, 409, 507)},
        },
    },
    "/v1/admin/tenants/{tenant}/keys": {
        "parameters": [TENANT],
        "post": {
            "summary": "Mint an API key (operator); the key is shown only in this reply",
            "requestBody": {"required": True, **json_body(ref("KeyCreate"))},
            "responses": {
                "201": {"description": "the key", **json_body(ref("Key"))},
                **problems(400, 401, 403, 404, 415, 422, 507),
            },
        },
        "get": {
            "summary": "List a tenant's keys, without secrets (operator)",
            "responses": {
                "200": {
                    "description": "the keys",
                    **json_body(
                        {
                            "type": "object",
                            "required": ["keys"],
                            "properties": {"keys": {"type": "array", "items": ref("Key")}},
                        }
                    ),
                },
                **problems(401, 403, 404),
            },
        },
    },
    "/v1/admin/tenants/{tenant}/keys/{key_id}": {
        "parameters": [TENANT, KEY_ID],
        "delete": {
            "summary": "Revoke a key at once (operator)",
            "responses": {"204": _NO_CONTENT, **problems(401, 403, 404, 507)},
        },
    },
    "/v1/admin/tenants/{tenant}/quotas": {
        "parameters": [TENANT],
        "put": {
            "summary": "Replace the tenant's quota overrides (operator)",
            "requestBody": {"required": True, **json_body(ref("QuotaOverrides"))},
            "responses": {"200": _TENANT_REPLY, **problems(400, 401, 403, 404, 415, 422, 507)},
        },
        "get": {
            "summary": "The tenant's plan, overrides and effective limits (operator)",
            "responses": {"200": _TENANT_REPLY, **problems(401, 403, 404)},
        },
    },
    "/v1/tokens": {
        "post": {
            "summary": "Exchange an API key for a short-lived JWT with the same or fewer rights",
            "requestBody": {"required": False, **json_body(ref("TokenRequest"))},
            "responses": {
                "201": {"description": "the token", **json_body(ref("Token"))},
                **problems(400, 401, 403, 415, 422),
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {
            "summary": "The public keys that sign the gateway's tokens",
            "security": [],
            "responses": {
                "200": {
                    "description": "a JSON Web Key Set",
                    **json_body(
                        {
                            "type": "object",
                            "required": ["keys"],
                            "properties": {"keys": {"type": "array", "items": JWK}},
                        }
                    ),
                }
            },
        }
    },
    "/v1/usage": {
        "get": {
            "summary": "The caller's tenant: use against each limit of its plan",
            "responses": {
                "200": {"description": "usage", **json_body(ref("Usage"))},
                **problems(401, 403),
            },
        }
    },
}
