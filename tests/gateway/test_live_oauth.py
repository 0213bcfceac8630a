"""An external OAuth2 issuer through a real server: its JWKS served on loopback, its tokens
accepted for their tenant, every bad token answered 401 problem+json, and never `admin`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_live_errors import assert_problem
from tests.tenants.test_tokens import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    b64json,
    claims,
    make_token,
    public,
    rsa_key,
)

KEY = rsa_key("idp-1")
STRICT = "https://strict.example"


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    server = JwksServer()
    server.state.keys = [public(KEY)]
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def oauth_gateway(
    tmp_path_factory: pytest.TempPathFactory, idp: JwksServer
) -> Iterator[GatewayProcess]:
    issuers = [
        {"issuer": ISSUER, "jwks_url": idp.url(), "audience": AUDIENCE, "algorithms": ["RS256"]},
        {"issuer": STRICT, "jwks_url": idp.url(), "audience": AUDIENCE, "require_at_jwt": True},
    ]
    data: Path = tmp_path_factory.mktemp("oauth") / "data"
    gateway = GatewayProcess(data, env={"TIDEGATE_OAUTH_ISSUERS": json.dumps(issuers)}).start()
    with gateway.client() as api:
        assert api.post("/v1/admin/tenants", json={"name": "acme"}).status_code == 201
        key = api.post(
            "/v1/admin/tenants/acme/keys", json={"scopes": ["topics:admin", "topics:write"]}
        )
        headers = {"Authorization": f"Bearer {key.json()['key']}"}
        assert api.post("/v1/topics", json={"name": "orders-1"}, headers=headers).status_code == 201
    try:
        yield gateway
    finally:
        gateway.stop()


def get(gateway: GatewayProcess, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_acts_in_its_tenant_within_its_scopes(oauth_gateway: GatewayProcess) -> None:
    token = make_token(KEY, claims(scope="topics:read admin"))
    r = get(oauth_gateway, "/v1/topics", token)
    assert r.status_code == 200, r.text
    assert [t["name"] for t in r.json()["topics"]] == ["orders-1"]
    assert get(oauth_gateway, "/v1/topics/orders-1", token).status_code == 200
    # `billing` is not among its topics; the operator scope is never taken from an IdP
    assert_problem(get(oauth_gateway, "/v1/topics/billing-x", token), 403, "forbidden")
    assert_problem(get(oauth_gateway, "/v1/admin/tenants", token), 403, "forbidden")


def test_access_tokens_typed_jwt_or_untyped_are_accepted_unless_the_issuer_requires_at_jwt(
    oauth_gateway: GatewayProcess,
) -> None:
    """Keycloak, Auth0, Azure AD and Google sign their access tokens `typ: JWT`."""
    for typ in ("JWT", "at+jwt", None):
        r = get(oauth_gateway, "/v1/topics", make_token(KEY, typ=typ))
        assert r.status_code == 200, (typ, r.text)
    strict = claims(iss=STRICT)
    assert get(oauth_gateway, "/v1/topics", make_token(KEY, strict, typ="at+jwt")).is_success
    for typ in ("JWT", None):
        r = get(oauth_gateway, "/v1/topics", make_token(KEY, strict, typ=typ))
        assert_problem(r, 401, "unauthenticated")
    id_token = make_token(KEY, claims(nonce="n-0S6_WzA2Mj"), typ="JWT")
    assert_problem(get(oauth_gateway, "/v1/topics", id_token), 401, "unauthenticated")


def test_bad_tokens_are_refused_with_401(oauth_gateway: GatewayProcess) -> None:
    other = rsa_key("idp-1")  # same kid, another key
    header_none = b64json({"alg": "none", "typ": "at+jwt", "kid": "idp-1"})
    good = make_token(KEY)
    head, payload, sig = good.split(".")
    tampered_payload = b64json(claims(tenant="default"))
    cases = {
        "expired": make_token(KEY, claims(exp=1_000_000_000, iat=999_999_000, nbf=999_999_000)),
        "wrong audience": make_token(KEY, claims(aud="someone-else")),
        "wrong issuer": make_token(KEY, claims(iss="https://evil.example")),
        "wrong key": make_token(other),
        "alg none": f"{header_none}.{payload}.",
        "tampered": f"{head}.{tampered_payload}.{sig}",
        "unknown tenant": make_token(KEY, claims(tenant="nobody")),
    }
    for name, token in cases.items():
        r = get(oauth_gateway, "/v1/topics", token)
        body = assert_problem(r, 401, "unauthenticated")
        assert "WWW-Authenticate" in r.headers, name
        assert token not in json.dumps(body)
