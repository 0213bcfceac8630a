"""Tenants, keys, quotas and tokens through a real server: what an operator and a tenant see."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_live_errors import assert_problem
from tests.support.waiting import poll_until

_names = iter(range(1_000_000))


JSON_TYPE = {"Content-Type": "application/json"}


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_tenant(
    api: httpx.Client, *, plan: str = "standard", scopes: list[str] | None = None
) -> tuple[str, str]:
    """A tenant with one key holding `scopes` (every tenant scope by default)."""
    name = fresh("t")
    r = api.post("/v1/admin/tenants", json={"name": name, "plan": plan})
    assert r.status_code == 201, r.text
    body = {
        "scopes": scopes
        or [
            "topics:read",
            "topics:write",
            "topics:admin",
            "groups:read",
            "groups:write",
            "schemas:write",
        ]
    }
    r = api.post(f"/v1/admin/tenants/{name}/keys", json=body)
    assert r.status_code == 201, r.text
    return name, r.json()["key"]


@pytest.fixture
def tenant_client(gateway: GatewayProcess, api: httpx.Client) -> Iterator[tuple[str, httpx.Client]]:
    name, key = new_tenant(api)
    with httpx.Client(base_url=gateway.url, headers=bearer(key), timeout=30.0) as client:
        yield name, client


# -- operator routes ------------------------------------------------------------------


def test_operator_creates_lists_and_describes_tenants(api: httpx.Client) -> None:
    name = fresh("acme")
    r = api.post("/v1/admin/tenants", json={"name": name, "plan": "free"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == name
    assert body["plan"] == "free"
    assert body["status"] == "active"
    assert body["limits"]["max_topics"] == 10
    assert_problem(api.post("/v1/admin/tenants", json={"name": name}), 409, "tenant-exists")
    assert_problem(
        api.post("/v1/admin/tenants", json={"name": "Bad Name"}), 400, "invalid-tenant-name"
    )
    assert_problem(
        api.post("/v1/admin/tenants", json={"name": fresh("x"), "plan": "gold"}),
        422,
        "unknown-plan",
    )
    listed = [t["name"] for t in api.get("/v1/admin/tenants").json()["tenants"]]
    assert name in listed
    assert "default" in listed
    assert api.get(f"/v1/admin/tenants/{name}").json()["name"] == name
    assert_problem(api.get("/v1/admin/tenants/nobody-here"), 404, "tenant-not-found")


def test_tenant_keys_cannot_reach_admin_routes(tenant_client: tuple[str, httpx.Client]) -> None:
    name, client = tenant_client
    assert_problem(client.get("/v1/admin/tenants"), 403, "forbidden")
    assert_problem(client.post("/v1/admin/tenants", json={"name": fresh("y")}), 403, "forbidden")
    assert_problem(client.put(f"/v1/admin/tenants/{name}/quotas", json={}), 403, "forbidden")


def test_the_operator_scope_is_not_given_to_tenant_keys(api: httpx.Client) -> None:
    name, _ = new_tenant(api)
    r = api.post(f"/v1/admin/tenants/{name}/keys", json={"scopes": ["admin"]})
    assert "only for keys of tenant 'default'" in assert_problem(r, 422, "invalid-scopes")["detail"]
    r = api.post(f"/v1/admin/tenants/{name}/keys", json={"scopes": ["topics:fly"]})
    assert_problem(r, 422, "invalid-scopes")


def test_key_scopes_and_topic_patterns_are_enforced(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    name, key = new_tenant(api)
    r = api.post(
        f"/v1/admin/tenants/{name}/keys",
        json={"scopes": ["topics:read"], "topics": ["orders*"]},
    )
    reader = r.json()["key"]
    assert "key" not in api.get(f"/v1/admin/tenants/{name}/keys").json()["keys"][0]
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        assert (
            c.post("/v1/topics", json={"name": "orders-1"}, headers=bearer(key)).status_code == 201
        )
        assert c.post("/v1/topics", json={"name": "other"}, headers=bearer(key)).status_code == 201
        assert c.get("/v1/topics/orders-1", headers=bearer(reader)).status_code == 200
        assert_problem(c.get("/v1/topics/other", headers=bearer(reader)), 403, "forbidden")
        r = c.post(
            "/v1/topics/orders-1/records", json={"records": [{"value": 1}]}, headers=bearer(reader)
        )
        assert_problem(r, 403, "forbidden")
        listed = [t["name"] for t in c.get("/v1/topics", headers=bearer(reader)).json()["topics"]]
        assert listed == ["orders-1"]


def test_revocation_suspension_and_deletion_take_effect_at_once(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    name, key = new_tenant(api)
    second = api.post(f"/v1/admin/tenants/{name}/keys", json={"scopes": ["topics:read"]}).json()
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        assert c.post("/v1/topics", json={"name": "doomed"}, headers=bearer(key)).status_code == 201
        assert c.get("/v1/topics", headers=bearer(second["key"])).status_code == 200
        assert api.delete(f"/v1/admin/tenants/{name}/keys/{second['key_id']}").status_code == 204
        assert_problem(c.get("/v1/topics", headers=bearer(second["key"])), 401, "unauthenticated")
        assert_problem(api.delete(f"/v1/admin/tenants/{name}/keys/nope"), 404, "key-not-found")

        assert (
            api.patch(f"/v1/admin/tenants/{name}", json={"status": "suspended"}).status_code == 200
        )
        assert_problem(c.get("/v1/topics", headers=bearer(key)), 403, "tenant-suspended")
        assert api.patch(f"/v1/admin/tenants/{name}", json={"status": "active"}).status_code == 200
        assert c.get("/v1/topics", headers=bearer(key)).status_code == 200

        assert api.delete(f"/v1/admin/tenants/{name}").status_code == 204
        assert_problem(c.get("/v1/topics", headers=bearer(key)), 401, "unauthenticated")
    # Its topics went with it: a new tenant of the same name starts empty.
    again, key2 = name, None
    assert api.post("/v1/admin/tenants", json={"name": again}).status_code == 201
    key2 = api.post(f"/v1/admin/tenants/{again}/keys", json={"scopes": ["topics:read"]}).json()[
        "key"
    ]
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        assert c.get("/v1/topics", headers=bearer(key2)).json() == {"topics": []}


def test_the_operator_tenant_cannot_be_suspended_or_deleted(api: httpx.Client) -> None:
    assert_problem(
        api.patch("/v1/admin/tenants/default", json={"status": "suspended"}), 409, "conflict"
    )
    assert_problem(api.delete("/v1/admin/tenants/default"), 409, "conflict")


def test_expired_key_is_refused(gateway: GatewayProcess, api: httpx.Client) -> None:
    name, _ = new_tenant(api)
    r = api.post(
        f"/v1/admin/tenants/{name}/keys", json={"scopes": ["topics:read"], "expires_in_s": 1}
    )
    key = r.json()["key"]
    with httpx.Client(base_url=gateway.url, headers=bearer(key), timeout=10.0) as c:
        assert c.get("/v1/topics").status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and c.get("/v1/topics").status_code == 200:
            time.sleep(0.1)
        assert_problem(c.get("/v1/topics"), 401, "unauthenticated")


# -- quotas ---------------------------------------------------------------------------


def test_quota_overrides_are_validated(api: httpx.Client) -> None:
    name, _ = new_tenant(api)
    for bad in ({"max_topicz": 1}, {"max_topics": -1}, {"max_topics": 1.5}, {"max_topics": True}):
        assert_problem(api.put(f"/v1/admin/tenants/{name}/quotas", json=bad), 422, "invalid-quota")
    r = api.put(
        f"/v1/admin/tenants/{name}/quotas", json={"max_topics": 2, "requests_per_second": None}
    )
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["max_topics"] == 2
    assert r.json()["limits"]["requests_per_second"] is None


def test_count_limits_name_the_limit_use_and_plan_value(
    api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"max_topics": 2, "max_partitions": 5})
    assert client.post("/v1/topics", json={"name": "a", "partitions": 2}).status_code == 201
    body = assert_problem(
        client.post("/v1/topics", json={"name": "b", "partitions": 4}), 403, "limit-reached"
    )
    assert (body["limit"], body["current"], body["allowed"]) == ("max_partitions", 2, 5)
    assert client.post("/v1/topics", json={"name": "b", "partitions": 3}).status_code == 201
    body = assert_problem(client.post("/v1/topics", json={"name": "c"}), 403, "limit-reached")
    assert (body["limit"], body["current"], body["allowed"]) == ("max_topics", 2, 2)


def test_plan_bounds_topic_config(
    api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    api.put(
        f"/v1/admin/tenants/{name}/quotas",
        json={"max_retention_ms": 60_000, "max_record_bytes": 100},
    )
    r = client.post("/v1/topics", json={"name": "long", "config": {"retention_ms": 120_000}})
    body = assert_problem(r, 422, "invalid-config")
    assert body["limit"] == "max_retention_ms"
    r = client.post("/v1/topics", json={"name": "fits"})
    assert r.status_code == 201
    assert r.json()["config"]["retention_ms"] == 60_000
    assert r.json()["config"]["max_record_bytes"] == 100
    r = client.post("/v1/topics/fits/records", json={"records": [{"value": "x" * 200}]})
    assert_problem(r, 413, "record-too-large")


def test_storage_limit_refuses_appends_with_the_figures(
    api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"max_storage_bytes": 20_000})
    client.post("/v1/topics", json={"name": "fill"})
    batch = {"records": [{"value": "v" * 1000} for _ in range(10)]}
    refused = None
    for _ in range(20):
        r = client.post("/v1/topics/fill/records", json=batch)
        if r.status_code != 200:
            refused = r
            break
        time.sleep(1.1)  # stored bytes are re-read at most once a second
    assert refused is not None, "the storage limit never applied"
    body = assert_problem(refused, 403, "limit-reached")
    assert body["limit"] == "max_storage_bytes"
    assert body["allowed"] == 20_000
    assert body["current"] > 0


def test_request_rate_gives_429_with_headers_and_spares_other_tenants(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    slow, slow_key = new_tenant(api)
    _, other_key = new_tenant(api)
    api.put(f"/v1/admin/tenants/{slow}/quotas", json={"requests_per_second": 5})
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        c.post("/v1/topics", json={"name": "q"}, headers=bearer(slow_key))
        before = c.get("/v1/topics/q", headers=bearer(slow_key)).json()
        statuses: list[int] = []
        throttled: httpx.Response | None = None
        for _ in range(30):
            r = c.post(
                "/v1/topics/q/records", json={"records": [{"value": 1}]}, headers=bearer(slow_key)
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                throttled = r
            other = c.get("/v1/topics", headers=bearer(other_key))
            assert other.status_code == 200  # the other tenant is not affected
        assert throttled is not None, statuses
        body = assert_problem(throttled, 429, "too-many-requests")
        assert body["limit"] == "requests_per_second"
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.headers["RateLimit-Policy"] == '"requests_per_second";q=5;w=1'
        assert throttled.headers["RateLimit"].startswith('"requests_per_second";r=0;t=')
        after = poll_until(
            lambda: c.get("/v1/topics/q", headers=bearer(slow_key)),
            lambda r: r.status_code == 200,
            what="the bucket refilled",
        ).json()
        appended = after["partitions"][0]["end_offset"] - before["partitions"][0]["end_offset"]
        assert appended == statuses.count(200)  # a throttled produce appended nothing


def test_a_request_refused_for_its_scope_is_counted_and_charged(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    """Probing with a credential that lacks the scope costs what a request costs."""
    name, key = new_tenant(api, scopes=["topics:read"])
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"requests_per_second": 5})
    with httpx.Client(base_url=gateway.url, headers=bearer(key), timeout=10.0) as c:
        statuses = [c.post("/v1/topics", json={"name": "nope"}).status_code for _ in range(20)]
        assert set(statuses) == {403, 429}, statuses
        assert statuses.count(403) <= 10  # the burst, and what refills meanwhile
        usage = poll_until(
            lambda: c.get("/v1/usage"),
            lambda r: r.status_code == 200 and r.json()["totals"]["requests"] >= 20,
            what="the refused requests counted",
            every_s=0.25,  # usage has its own bound of 5 reads a second
        )
        assert usage.json()["totals"]["requests"] == 20


def test_a_throttled_tenant_can_read_its_usage_which_has_its_own_bound(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    name, key = new_tenant(api)
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"requests_per_second": 2})
    with httpx.Client(base_url=gateway.url, headers=bearer(key), timeout=10.0) as c:
        for _ in range(10):  # bounded: until throttled
            if c.get("/v1/topics").status_code == 429:
                break
        else:
            pytest.fail("the request rate never throttled")
        usage = c.get("/v1/usage")
        assert usage.status_code == 200
        assert usage.json()["quotas"]["requests_per_second"]["limit"] == 2
        assert c.get("/v1/topics").status_code == 429  # reading usage refilled nothing
        reads = [c.get("/v1/usage") for _ in range(15)]
        refused = [r for r in reads if r.status_code == 429]
        assert refused, [r.status_code for r in reads]
        assert assert_problem(refused[0], 429, "too-many-requests")["limit"] == (
            "usage_reads_per_second"
        )
        assert c.get("/v1/usage", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_usage_shows_use_against_each_limit(
    api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"max_topics": 7})
    client.post("/v1/topics", json={"name": "u", "partitions": 3})
    client.post("/v1/topics/u/records", json={"records": [{"value": "abc"}]})
    body = client.get("/v1/usage").json()
    assert body["tenant"] == name
    assert body["plan"] == "standard"
    quotas: dict[str, Any] = body["quotas"]
    assert quotas["max_topics"] == {"limit": 7, "used": 1}
    assert quotas["max_partitions"]["used"] == 3
    assert quotas["max_storage_bytes"]["used"] > 0
    assert set(quotas) >= {
        "requests_per_second",
        "produce_bytes_per_second",
        "consume_bytes_per_second",
        "max_connections",
        "max_record_bytes",
    }
    assert body["totals"]["produced_records"] == 1


def test_long_polls_count_against_max_connections(
    gateway: GatewayProcess, api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    api.put(f"/v1/admin/tenants/{name}/quotas", json={"max_connections": 1})
    client.post("/v1/topics", json={"name": "lp"})
    url = "/v1/topics/lp/partitions/0/records?offset=latest&max_wait_ms=10000"
    with httpx.Client(base_url=gateway.url, headers=client.headers, timeout=20.0) as other:
        results: list[int] = []
        waiter = threading.Thread(target=lambda: results.append(other.get(url).status_code))
        waiter.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the server holds the waiting fetch
            usage = client.get("/v1/usage")  # at most 5 reads a second (429 past that)
            if usage.status_code == 200 and usage.json()["quotas"]["max_connections"]["used"]:
                break
            time.sleep(0.1)
        body = assert_problem(client.get(url), 403, "limit-reached")
        assert body["limit"] == "max_connections"
        client.post("/v1/topics/lp/records", json={"records": [{"value": 1}]})
        waiter.join(10)
        assert results == [200]


def test_tenant_metrics_need_the_operator(
    gateway: GatewayProcess, api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    client.get("/v1/topics")
    with httpx.Client(base_url=gateway.url, timeout=10.0) as anonymous:
        assert "tidegate_tenant_" not in anonymous.get("/metrics").text
    assert_problem(client.get("/metrics"), 403, "forbidden")
    text = api.get("/metrics").text
    assert f'tidegate_tenant_requests_total{{tenant="{name}"}}' in text


# -- tokens ---------------------------------------------------------------------------


def test_a_token_is_refused_once_its_key_is_revoked_or_its_tenant_suspended(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    name, _ = new_tenant(api)
    created = api.post(f"/v1/admin/tenants/{name}/keys", json={"scopes": ["topics:read"]}).json()
    key, key_id = created["key"], created["key_id"]
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        token = c.post("/v1/tokens", headers=bearer(key)).json()["access_token"]
        assert c.get("/v1/topics", headers=bearer(token)).status_code == 200
        suspend = api.patch(f"/v1/admin/tenants/{name}", json={"status": "suspended"})
        assert suspend.status_code == 200
        assert_problem(c.get("/v1/topics", headers=bearer(token)), 403, "tenant-suspended")
        resume = api.patch(f"/v1/admin/tenants/{name}", json={"status": "active"})
        assert resume.status_code == 200
        assert c.get("/v1/topics", headers=bearer(token)).status_code == 200
        assert api.delete(f"/v1/admin/tenants/{name}/keys/{key_id}").status_code == 204
        assert_problem(c.get("/v1/topics", headers=bearer(key)), 401, "unauthenticated")
        refused = assert_problem(c.get("/v1/topics", headers=bearer(token)), 401, "unauthenticated")
        assert token not in str(refused)


def test_a_key_is_exchanged_for_a_narrower_short_lived_token(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    name, _ = new_tenant(api)
    key = api.post(
        f"/v1/admin/tenants/{name}/keys",
        json={"scopes": ["topics:read", "topics:write", "topics:admin"], "topics": ["feed*"]},
    ).json()["key"]
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        assert c.post("/v1/topics", json={"name": "feed-1"}, headers=bearer(key)).status_code == 201
        c.post(
            "/v1/topics/feed-1/records", json={"records": [{"value": "hi"}]}, headers=bearer(key)
        )
        r = c.post(
            "/v1/tokens",
            json={"scopes": ["topics:read"], "topics": ["feed-1"], "ttl_seconds": 60},
            headers=bearer(key),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 60
        assert r.headers["Cache-Control"] == "no-store"
        token = body["access_token"]
        assert token.count(".") == 2
        got = c.get("/v1/topics/feed-1/partitions/0/records", headers=bearer(token))
        assert got.status_code == 200
        assert got.json()["records"][0]["value"] == "hi"
        # narrower: no writing, no other topic, no new token from a token
        r = c.post(
            "/v1/topics/feed-1/records", json={"records": [{"value": 1}]}, headers=bearer(token)
        )
        assert_problem(r, 403, "forbidden")
        assert_problem(c.get("/v1/topics/feed-2", headers=bearer(token)), 403, "forbidden")
        assert_problem(c.post("/v1/tokens", json={}, headers=bearer(token)), 403, "forbidden")
        # never wider than the key
        wider = c.post("/v1/tokens", json={"scopes": ["groups:write"]}, headers=bearer(key))
        assert_problem(wider, 403, "forbidden")
        outside = c.post("/v1/tokens", json={"topics": ["other*"]}, headers=bearer(key))
        assert_problem(outside, 403, "forbidden")
        too_long = c.post("/v1/tokens", json={"ttl_seconds": 10**6}, headers=bearer(key))
        assert_problem(too_long, 422, "invalid-body")
        # the request body is bounded before it is read whole, and must say JSON
        huge = b'{"topics": ["' + b"x" * 20_000 + b'"]}'
        big = c.post("/v1/tokens", content=huge, headers={**bearer(key), **JSON_TYPE})
        assert_problem(big, 413, "body-too-large")
        form = c.post("/v1/tokens", content=b"a=b", headers=bearer(key))
        assert_problem(form, 415, "unsupported-media-type")
        plain = c.post("/v1/tokens", headers=bearer(key))  # no body: the defaults
        assert plain.status_code == 201, plain.text
        # a token in the query string is not accepted on data endpoints
        r = c.get(f"/v1/topics/feed-1/partitions/0/records?access_token={token}")
        assert_problem(r, 401, "unauthenticated")
        # the tenant's suspension stops its tokens too
        api.patch(f"/v1/admin/tenants/{name}", json={"status": "suspended"})
        got = c.get("/v1/topics/feed-1/partitions/0/records", headers=bearer(token))
        assert_problem(got, 403, "tenant-suspended")
        api.patch(f"/v1/admin/tenants/{name}", json={"status": "active"})


def test_jwks_publishes_public_keys_only(gateway: GatewayProcess) -> None:
    r = httpx.get(f"{gateway.url}/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert keys
    for jwk in keys:
        assert jwk["kty"] == "EC"
        assert "d" not in jwk
        assert jwk["kid"]
    key_file = gateway.data_dir / "token-keys.json"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_access_log_never_holds_a_query_token() -> None:
    from gateway.http.logredact import redact

    line = "GET /v1/topics/t/stream?from=earliest&access_token=eyJa.eyJb.sig HTTP/1.1"
    assert "eyJ" not in redact(line)
    assert "access_token=[redacted]" in redact(line)
    assert redact("a\r\nforged") == "a\\r\\nforged"


def test_byte_rates_throttle_produce_before_and_fetch_after(
    api: httpx.Client, tenant_client: tuple[str, httpx.Client]
) -> None:
    name, client = tenant_client
    client.post("/v1/topics", json={"name": "bytes"})
    api.put(
        f"/v1/admin/tenants/{name}/quotas",
        json={"produce_bytes_per_second": 3000, "consume_bytes_per_second": 1000},
    )
    batch = {"records": [{"value": "p" * 400} for _ in range(5)]}  # about 2.1 KB of body
    assert client.post("/v1/topics/bytes/records", json=batch).status_code == 200
    refused = client.post("/v1/topics/bytes/records", json=batch)
    body = assert_problem(refused, 429, "too-many-requests")
    assert body["limit"] == "produce_bytes_per_second"
    assert refused.headers["RateLimit-Policy"] == '"produce_bytes_per_second";q=3000;w=1'
    described = client.get("/v1/topics/bytes").json()
    assert described["partitions"][0]["end_offset"] == 5  # the refused batch appended nothing
    # a fetch is served in full and charged afterwards; the next one waits for the debt
    url = "/v1/topics/bytes/partitions/0/records?offset=earliest"
    assert len(client.get(url).json()["records"]) == 5
    body = assert_problem(client.get(url), 429, "too-many-requests")
    assert body["limit"] == "consume_bytes_per_second"
    assert body["retry_after_ms"] > 500  # about 2 KB over a 1 KB/s bucket


def test_the_access_log_redacts_tokens_in_urls(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        tmp_path / "data", env={"TIDEGATE_ACCESS_LOG": "true", "TIDEGATE_LOG_LEVEL": "info"}
    ).start()
    try:
        secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        r = httpx.get(f"{gateway.url}/v1/topics?access_token={secret}&x=1")
        assert r.status_code == 401
        httpx.get(f"{gateway.url}/healthz")  # the access log line of the first is written
    finally:
        gateway.stop()
    log = gateway.output()
    assert '"GET /v1/topics" 401' in log  # the request is logged, its query string never
    assert secret not in log
    assert "access_token" not in log
