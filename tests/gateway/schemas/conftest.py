"""Tenants with keys of chosen scopes, made through the admin API of a live gateway."""

from __future__ import annotations

import itertools

import httpx

from tests.gateway.conftest import GatewayProcess

_names = itertools.count(1)
ALL = ["topics:read", "topics:write", "topics:admin", "schemas:write"]


def new_tenant(gateway: GatewayProcess, prefix: str) -> str:
    name = f"{prefix}-{next(_names)}"
    with gateway.client() as api:
        r = api.post("/v1/admin/tenants", json={"name": name})
        assert r.status_code == 201, r.text
    return name


def key_of(gateway: GatewayProcess, tenant: str, scopes: list[str] | None = None) -> str:
    return key_and_id(gateway, tenant, scopes)[1]


def key_and_id(
    gateway: GatewayProcess, tenant: str, scopes: list[str] | None = None
) -> tuple[str, str]:
    """(key id, key) of a new key of the tenant."""
    with gateway.client() as api:
        r = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": scopes or ALL})
        assert r.status_code == 201, r.text
        return str(r.json()["key_id"]), str(r.json()["key"])


def client_for(gateway: GatewayProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )
