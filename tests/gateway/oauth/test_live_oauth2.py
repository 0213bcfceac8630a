"""The OAuth2 endpoints through a real server, driven by authlib's own client and plain httpx:
client-credentials tokens used on data endpoints, narrowed scopes, revocation (of a key and of
one token), every RFC 6749 §5.2 error, metadata whose every URL answers, the throttle on failed
client authentication, and introspection that never crosses tenants."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_live_errors import assert_problem
from tests.support.waiting import poll_until

GRANT = {"grant_type": "client_credentials"}
EVERY = ["topics:read", "topics:write", "topics:admin"]
THROTTLE_BURST = 4
THROTTLE_PER_S = 0.5  # a throttled id regains an attempt every 2 s


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {
        "TIDEGATE_OAUTH_FAILED_AUTH_BURST": str(THROTTLE_BURST),
        "TIDEGATE_OAUTH_FAILED_AUTH_PER_S": str(THROTTLE_PER_S),
    }
    server = GatewayProcess(tmp_path_factory.mktemp("oauth2") / "data", env=env).start()
    with server.client() as api:
        for tenant in ("oa-acme", "oa-other"):
            assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    try:
        yield server
    finally:
        server.stop()


def new_key(api: httpx.Client, tenant: str = "oa-acme", scopes: list[str] = EVERY) -> Any:
    r = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()


def metadata(gateway: GatewayProcess) -> dict[str, Any]:
    r = httpx.get(f"{gateway.url}/.well-known/oauth-authorization-server")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def basic_token(gateway: GatewayProcess, key: Any, **form: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/oauth/token", data=GRANT | form, auth=(key["key_id"], key["key"])
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def round_trip(gateway: GatewayProcess, headers: dict[str, str], topic: str) -> None:
    """Create a topic, produce a record and fetch it back with `headers`."""
    with httpx.Client(base_url=gateway.url, headers=headers) as data:
        assert data.post("/v1/topics", json={"name": topic}).status_code == 201
        r = data.post(f"/v1/topics/{topic}/records", json={"records": [{"value": {"n": 1}}]})
        assert r.status_code == 200, r.text
        r = data.get(f"/v1/topics/{topic}/partitions/0/records", params={"offset": "earliest"})
        assert r.status_code == 200, r.text
        assert [rec["value"] for rec in r.json()["records"]] == [{"n": 1}]


def test_authlibs_client_configures_itself_from_the_metadata_and_uses_its_token(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key = new_key(api)
    endpoint = metadata(gateway)["token_endpoint"]
    with OAuth2Client(client_id=key["key_id"], client_secret=key["key"]) as client:
        token = client.fetch_token(endpoint, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 900
        assert token["scope"].split() == sorted(EVERY)
        # The client now sends `Authorization: Bearer <the token>` on its own.
        topic = "authlib-orders"
        assert client.post(f"{gateway.url}/v1/topics", json={"name": topic}).status_code == 201
        r = client.post(
            f"{gateway.url}/v1/topics/{topic}/records", json={"records": [{"value": "x"}]}
        )
        assert r.status_code == 200, r.text
        r = client.get(f"{gateway.url}/v1/topics/{topic}/partitions/0/records?offset=earliest")
        assert [rec["value"] for rec in r.json()["records"]] == ["x"]


def test_a_plain_form_post_gets_the_same_kind_of_token(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key = new_key(api)
    form = GRANT | {"client_id": key["key_id"], "client_secret": key["key"]}
    r = httpx.post(f"{gateway.url}/oauth/token", data=form)  # client_secret_post
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    round_trip(gateway, bearer(body["access_token"]), "plain-orders")
    # The same at+jwt POST /v1/tokens mints: verifiable with the published keys.
    header = httpx.get(f"{gateway.url}/.well-known/jwks.json").json()["keys"]
    assert header
    assert all("d" not in k for k in header)


def test_a_narrowed_scope_reads_but_cannot_write(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key = new_key(api)
    round_trip(gateway, bearer(key["key"]), "narrow-orders")
    r = basic_token(gateway, key, scope="topics:read")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "topics:read"
    headers = bearer(r.json()["access_token"])
    with httpx.Client(base_url=gateway.url, headers=headers) as data:
        fetched = data.get("/v1/topics/narrow-orders/partitions/0/records?offset=earliest")
        assert fetched.status_code == 200
        denied = data.post("/v1/topics/narrow-orders/records", json={"records": [{"value": 2}]})
        assert_problem(denied, 403, "forbidden")
    # ...and never wider than the key
    read_only = new_key(api, scopes=["topics:read"])
    r = basic_token(gateway, read_only, scope="topics:read topics:write")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


def introspect(gateway: GatewayProcess, caller: Any, token: str) -> dict[str, Any]:
    r = httpx.post(
        f"{gateway.url}/oauth/introspect",
        data={"token": token},
        auth=(caller["key_id"], caller["key"]),
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def test_a_revoked_keys_token_introspects_inactive_and_is_refused(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key = new_key(api)
    token = basic_token(gateway, key).json()["access_token"]
    claims = introspect(gateway, key, token)
    assert claims["active"] is True
    assert claims["client_id"] == claims["sub"] == key["key_id"]
    assert claims["tenant"] == "oa-acme"
    assert claims["token_type"] == "Bearer"
    assert claims["scope"].split() == sorted(EVERY)
    assert claims["exp"] - claims["iat"] == 900
    assert api.delete(f"/v1/admin/tenants/oa-acme/keys/{key['key_id']}").status_code == 204
    operator = {"key_id": "bootstrap", "key": gateway.bootstrap_key}
    assert introspect(gateway, operator, token) == {"active": False}
    assert_problem(
        httpx.get(f"{gateway.url}/v1/topics", headers=bearer(token)), 401, "unauthenticated"
    )


def test_a_revoked_token_is_refused_everywhere_and_its_siblings_are_not(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key = new_key(api)
    revoked, sibling = (basic_token(gateway, key).json()["access_token"] for _ in range(2))
    r = httpx.post(
        f"{gateway.url}/oauth/revoke",
        data={"token": revoked, "token_type_hint": "access_token"},
        auth=(key["key_id"], key["key"]),
    )
    assert (r.status_code, r.json()) == (200, {})
    assert_problem(
        httpx.get(f"{gateway.url}/v1/topics", headers=bearer(revoked)), 401, "unauthenticated"
    )
    assert introspect(gateway, key, revoked) == {"active": False}
    assert httpx.get(f"{gateway.url}/v1/topics", headers=bearer(sibling)).status_code == 200
    assert introspect(gateway, key, sibling)["active"] is True
    # Revoking again, or revoking garbage, is not an error (RFC 7009 §2.2).
    for token in (revoked, "not-a-token"):
        r = httpx.post(
            f"{gateway.url}/oauth/revoke", data={"token": token}, auth=(key["key_id"], key["key"])
        )
        assert (r.status_code, r.json()) == (200, {})
    # Another key of the tenant may not revoke this key's tokens.
    other = new_key(api)
    r = httpx.post(
        f"{gateway.url}/oauth/revoke",
        data={"token": sibling},
        auth=(other["key_id"], other["key"]),
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    assert httpx.get(f"{gateway.url}/v1/topics", headers=bearer(sibling)).status_code == 200


def test_introspection_and_revocation_never_cross_tenants(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    mine, same_tenant, foreign = new_key(api), new_key(api), new_key(api, "oa-other")
    token = basic_token(gateway, mine).json()["access_token"]
    assert introspect(gateway, same_tenant, token)["active"] is True
    operator = {"key_id": "bootstrap", "key": gateway.bootstrap_key}
    assert introspect(gateway, operator, token)["tenant"] == "oa-acme"
    seen = introspect(gateway, foreign, token)
    assert seen == {"active": False}  # exactly what garbage gets
    assert introspect(gateway, foreign, "garbage") == seen
    r = httpx.post(
        f"{gateway.url}/oauth/revoke",
        data={"token": token},
        auth=(foreign["key_id"], foreign["key"]),
    )
    assert (r.status_code, r.json()) == (200, {})
    assert "oa-acme" not in r.text
    assert mine["key_id"] not in r.text
    assert httpx.get(f"{gateway.url}/v1/topics", headers=bearer(token)).status_code == 200


def test_every_rfc6749_error_answers_its_json_and_status(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    key, wrong = new_key(api), new_key(api)
    suspended_tenant = "oa-suspended"
    assert api.post("/v1/admin/tenants", json={"name": suspended_tenant}).status_code == 201
    paused = new_key(api, suspended_tenant)
    r = api.patch(f"/v1/admin/tenants/{suspended_tenant}", json={"status": "suspended"})
    assert r.status_code == 200, r.text
    ident = (key["key_id"], key["key"])
    url = f"{gateway.url}/oauth/token"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("no grant_type", {"data": {}, "auth": ident}, 400, "invalid_request"),
        (
            "repeated",
            {"content": "grant_type=client_credentials&scope=a&scope=b"},
            400,
            "invalid_request",
        ),
        ("json body", {"json": GRANT, "auth": ident}, 400, "invalid_request"),
        (
            "two mechanisms",
            {"data": GRANT | {"client_id": ident[0], "client_secret": ident[1]}, "auth": ident},
            400,
            "invalid_request",
        ),
        ("no client", {"data": GRANT}, 401, "invalid_client"),
        (
            "wrong secret",
            {"data": GRANT, "auth": (key["key_id"], wrong["key"])},
            401,
            "invalid_client",
        ),
        (
            "unknown id",
            {"data": GRANT, "auth": ("aaaaaaaaaaaa", key["key"])},
            401,
            "invalid_client",
        ),
        (
            "post, wrong secret",
            {"data": GRANT | {"client_id": wrong["key_id"], "client_secret": "tg_nope"}},
            401,
            "invalid_client",
        ),
        (
            "password grant",
            {"data": {"grant_type": "password"}, "auth": ident},
            400,
            "unsupported_grant_type",
        ),
        (
            "code grant",
            {"data": {"grant_type": "authorization_code", "code": "x"}, "auth": ident},
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown scope",
            {"data": GRANT | {"scope": "topics:everything"}, "auth": ident},
            400,
            "invalid_scope",
        ),
        (
            "scope not held",
            {"data": GRANT | {"scope": "admin"}, "auth": ident},
            400,
            "invalid_scope",
        ),
        (
            "suspended tenant",
            {"data": GRANT, "auth": (paused["key_id"], paused["key"])},
            400,
            "unauthorized_client",
        ),
    ]
    for name, request, status, error in cases:
        headers = (
            {"Content-Type": "application/x-www-form-urlencoded"} if "content" in request else {}
        )
        r = httpx.post(url, headers=headers, **request)
        assert (r.status_code, r.headers["content-type"]) == (status, "application/json"), (
            name,
            r.text,
        )
        body = r.json()
        assert body["error"] == error, (name, body)
        assert set(body) <= {"error", "error_description", "error_uri"}, name
        assert (r.headers["cache-control"], r.headers["pragma"]) == ("no-store", "no-cache"), name
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Basic "), name
        assert key["key"] not in r.text, name
        assert wrong["key"] not in r.text, name
    # Introspection and revocation need the token parameter and a client too.
    for path in ("/oauth/introspect", "/oauth/revoke"):
        r = httpx.post(f"{gateway.url}{path}", data={}, auth=ident)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
        r = httpx.post(f"{gateway.url}{path}", data={"token": "x"})
        assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
        r = httpx.post(
            f"{gateway.url}{path}", data={"token": "x"}, auth=(paused["key_id"], paused["key"])
        )
        assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    r = httpx.post(
        f"{gateway.url}/oauth/revoke",
        data={"token": "x", "token_type_hint": "id_token"},
        auth=ident,
    )
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_token_type")


def test_the_metadata_lists_endpoints_that_exist(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    doc = metadata(gateway)
    checked = AuthorizationServerMetadata(doc)
    for field in (
        "issuer",
        "token_endpoint",
        "jwks_uri",
        "scopes_supported",
        "grant_types_supported",
    ):
        getattr(checked, f"validate_{field}")()  # authlib's own RFC 8414 checks
    assert doc["issuer"] == gateway.url
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert "admin" in doc["scopes_supported"]
    key = new_key(api)
    auth = (key["key_id"], key["key"])
    for which in ("token", "introspection", "revocation"):
        assert doc[f"{which}_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
        ]
    token = httpx.post(doc["token_endpoint"], data=GRANT, auth=auth)
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    assert httpx.post(doc["introspection_endpoint"], data={"token": access}, auth=auth).json()[
        "active"
    ]
    assert httpx.post(doc["revocation_endpoint"], data={"token": access}, auth=auth).json() == {}
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert keys
    assert all(k["kty"] == "EC" for k in keys)


def test_failed_client_authentication_is_throttled_per_key_id(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    target, bystander = new_key(api), new_key(api)
    wrong = (target["key_id"], bystander["key"])
    right = (target["key_id"], target["key"])

    def token_with(auth: tuple[str, str]) -> httpx.Response:
        return httpx.post(f"{gateway.url}/oauth/token", data=GRANT, auth=auth)

    # More than the burst of failures are each checked and answered invalid_client...
    answers: list[int] = []
    for _ in range(THROTTLE_BURST + 8):
        r = token_with(wrong)
        answers.append(r.status_code)
        if r.status_code != 401:
            break
        assert r.json()["error"] == "invalid_client"
    assert answers[-1] == 429, answers
    assert len(answers) >= THROTTLE_BURST + 2, answers  # never before the burst is spent
    # ...then the id is refused unchecked until its bucket has drained to the burst: one
    # more guess is checked then, and the id waits a whole 1 / per_s again.
    poll_until(
        lambda: token_with(wrong).status_code,
        lambda status: status == 401,
        what="one more guess checked once the bucket drained",
        timeout_s=1 / THROTTLE_PER_S + 2.0,
        every_s=0.1,
    )
    for r in (token_with(right), token_with(wrong)):  # the right secret is refused too
        body = assert_problem(r, 429, "too-many-requests")
        assert int(r.headers["retry-after"]) >= 1
        assert body["error"] == "temporarily_unavailable"
        assert body["limit"] == "client_auth_failures"
        assert 0 < body["retry_after_ms"] <= 1000 / THROTTLE_PER_S
    r = httpx.post(f"{gateway.url}/oauth/introspect", data={"token": "x"}, auth=wrong)
    assert r.status_code == 429  # one count per id, whichever endpoint
    # Another id is not affected, and the throttled one recovers by itself.
    assert basic_token(gateway, bystander).status_code == 200
    poll_until(
        lambda: basic_token(gateway, target).status_code,
        lambda status: status == 200,
        what="the throttled key id admitted again",
        timeout_s=1.5 / THROTTLE_PER_S + 2.0,
        every_s=0.2,
    )


def test_token_requests_count_against_the_tenants_request_rate(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    tenant = "oa-slow"
    assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    key = new_key(api, tenant)
    # One request in its bucket, refilled every 10 s: the second is refused however slow.
    r = api.put(f"/v1/admin/tenants/{tenant}/quotas", json={"requests_per_second": 0.1})
    assert r.status_code == 200, r.text
    assert basic_token(gateway, key).status_code == 200
    refused = basic_token(gateway, key)
    body = assert_problem(refused, 429, "too-many-requests")
    assert body["limit"] == "requests_per_second"
    assert body["error"] == "temporarily_unavailable"
    assert "retry-after" in refused.headers
    assert "access_token" not in refused.text  # the token minted meanwhile is never sent
