"""The isolation matrix: tenant A's credentials against every documented path, every verb,
aimed at tenant B's resources. A must never read, list, count, change or delete anything
of B's, and must learn nothing of it: B's topic answers 404 exactly like a missing one."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import orjson

from gateway.openapi import document
from tests.gateway.conftest import GatewayProcess

VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
B_TOPIC = "b-private"
SHARED = "same-name"
B_MARK = "B-SECRET-VALUE"
B_GROUP = "b-group"
B_MEMBER = "b-member-secret"
B_SUBJECT = "b-subject"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def body_for(path: str, verb: str) -> Any:
    """A request body each route would accept from its own tenant."""
    if path.endswith("/records") and verb == "POST":
        return {"records": [{"key": "k", "value": "from-A"}]}
    if path == "/v1/topics" and verb == "POST":
        return {"name": "a-own-topic", "partitions": 1}
    if path.startswith("/v1/topics/{topic}") and verb in ("PATCH", "PUT"):
        return {"config": {"retention_ms": 1000}}
    if path == "/v1/admin/tenants" and verb == "POST":
        return {"name": "a-made-this"}
    if path.endswith("/keys") and verb == "POST":
        return {"scopes": ["topics:read"]}
    if path.endswith("/quotas"):
        return {"max_topics": 0}
    if path == "/v1/admin/tenants/{tenant}":
        return {"status": "suspended"}
    if path == "/v1/tokens":
        return {"scopes": ["topics:read"]}
    if path.endswith("/members") and verb == "POST":
        return {"topics": [SHARED], "member_id": B_MEMBER}
    if path.endswith("/offsets") and verb == "POST":
        return {
            "member_id": B_MEMBER,
            "generation": 1,
            "offsets": [{"topic": SHARED, "partition": 0, "offset": 0}],
        }
    if path.endswith("/reset"):
        return {"to": "latest"}
    if path.startswith("/v1/schemas/{subject}") and verb == "POST":
        return {"schema_type": "JSON", "schema": {"type": "string"}}
    if path.startswith("/v1/schemas/{subject}") and verb == "PUT":
        return {"compatibility": "NONE"}
    if path.startswith("/schema-registry") and verb == "POST":
        return {"schema": '{"type": "string"}', "schemaType": "JSON"}
    if path.startswith("/schema-registry/config") and verb == "PUT":
        return {"compatibility": "NONE"}
    return None


def setup_tenants(api: httpx.Client) -> dict[str, Any]:
    every = [
        "topics:read",
        "topics:write",
        "topics:admin",
        "groups:read",
        "groups:write",
        "schemas:write",
    ]
    made: dict[str, Any] = {}
    for who in ("iso-a", "iso-b"):
        assert (
            api.post("/v1/admin/tenants", json={"name": who, "plan": "unlimited"}).status_code
            == 201
        )
        key = api.post(f"/v1/admin/tenants/{who}/keys", json={"scopes": every}).json()
        made[who] = key
    b = bearer(made["iso-b"]["key"])
    a = bearer(made["iso-a"]["key"])
    assert (
        api.post("/v1/topics", json={"name": B_TOPIC, "partitions": 2}, headers=b).status_code
        == 201
    )
    api.post(f"/v1/topics/{B_TOPIC}/records", json={"records": [{"value": B_MARK}] * 3}, headers=b)
    for headers, value in ((b, B_MARK), (a, "a-value")):
        assert api.post("/v1/topics", json={"name": SHARED}, headers=headers).status_code == 201
        api.post(
            f"/v1/topics/{SHARED}/records", json={"records": [{"value": value}]}, headers=headers
        )
    joined = api.post(
        f"/v1/groups/{B_GROUP}/members",
        json={"topics": [SHARED], "member_id": B_MEMBER},
        headers=b,
    )
    assert joined.status_code == 200, joined.text
    schema = {"schema_type": "JSON", "schema": {"type": "string", "description": B_MARK}}
    assert api.post(f"/v1/schemas/{B_SUBJECT}/versions", json=schema, headers=b).status_code == 201
    token = api.post("/v1/tokens", json={}, headers=a).json()["access_token"]
    made["a-token"] = token
    return made


def b_group(api: httpx.Client, b: dict[str, str]) -> Any:
    """B's group as far as A could change it (not the clock-driven figures)."""
    seen = api.get(f"/v1/groups/{B_GROUP}", headers=b).json()
    members = [(m["member_id"], m["generation"]) for m in seen["members"]]
    rows = [(r["partition"], r["committed"], r["lag"]) for r in seen["partitions"]]
    offsets = api.get(f"/v1/groups/{B_GROUP}/offsets", headers=b).json()
    return seen["state"], seen["generation"], members, rows, offsets


def b_state(api: httpx.Client, b_key: str) -> Any:
    """Everything of B's that A might have touched."""
    b = bearer(b_key)
    topics = api.get("/v1/topics", headers=b).json()
    described = [api.get(f"/v1/topics/{t}", headers=b).json() for t in (B_TOPIC, SHARED)]
    records = [
        api.get(f"/v1/topics/{t}/partitions/0/records?offset=earliest", headers=b).json()["records"]
        for t in (B_TOPIC, SHARED)
    ]
    tenant = api.get("/v1/admin/tenants/iso-b").json()
    keys = api.get("/v1/admin/tenants/iso-b/keys").json()
    schemas = api.get("/v1/schemas", headers=b).json()
    versions = api.get(f"/v1/schemas/{B_SUBJECT}/versions", headers=b).json()
    config = api.get(f"/v1/schemas/{B_SUBJECT}/config", headers=b).json()
    default = api.get("/schema-registry/config", headers=b).json()
    return (
        topics,
        described,
        records,
        tenant,
        keys,
        b_group(api, b),
        schemas,
        versions,
        config,
        default,
    )


def test_no_cross_tenant_access_on_any_endpoint_or_verb(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    made = setup_tenants(api)
    b_key_id = made["iso-b"]["key_id"]
    before = b_state(api, made["iso-b"]["key"])
    paths = list(orjson.loads(document())["paths"])
    credentials = {"api key": made["iso-a"]["key"], "token": made["a-token"]}
    attempts = 0
    violations: list[str] = []
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        for path, verb, (kind, credential), topic in itertools.product(
            paths, VERBS, credentials.items(), (B_TOPIC, SHARED)
        ):
            if "{topic}" not in path and topic == SHARED:
                continue  # the topic variant only matters where a topic is named
            url = (
                path.replace("{topic}", topic)
                .replace("{partition}", "0")
                .replace("{tenant}", "iso-b")
                .replace("{key_id}", b_key_id)
                .replace("{group}", B_GROUP)
                .replace("{member_id}", B_MEMBER)
                .replace("{subject}", B_SUBJECT)
                .replace("{version}", "1")
                .replace("{id}", "1")
            )
            body = body_for(path, verb)
            r = client.request(
                verb,
                url,
                headers=bearer(credential) | ({"Content-Type": "application/json"} if body else {}),
                content=orjson.dumps(body) if body is not None else None,
                params={"offset": "earliest", "member_id": B_MEMBER}
                if url.endswith("/records") and verb == "GET"
                else None,
            )
            attempts += 1
            where = f"{kind} {verb} {url} -> {r.status_code}"
            text = r.text.replace(url, "")  # the request's own path may be echoed back
            if B_MARK in text or "iso-b" in text or b_key_id in text:
                violations.append(f"{where}: B's data in the reply")
            if topic == B_TOPIC and "{topic}" in path and r.status_code not in (404, 405):
                # Anything but "no such topic" either reached it or revealed that it exists.
                violations.append(f"{where}: B's topic reached or revealed")
            if path.startswith("/v1/admin") and r.status_code < 400:
                violations.append(f"{where}: operator route served")
            if path == "/v1/topics" and verb == "GET" and B_TOPIC in text:
                violations.append(f"{where}: B's topic listed")
    after = b_state(api, made["iso-b"]["key"])
    if after != before:
        violations.append("B's topics, records, tenant or keys changed")
    print(f"\nsuccessful cross-tenant accesses: {len(violations)} of {attempts}")
    assert attempts > 100
    assert not violations, violations
