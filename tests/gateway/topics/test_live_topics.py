"""Topics through a real server: the longest names, partition growth, recreated names,
all across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.records.partitioner import partition_for_key
from tests.gateway.conftest import GatewayProcess

LONG_TENANT = "t" * 63


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def values(client: httpx.Client, topic: str, partition: int, **headers: str) -> list[Any]:
    r = client.get(
        f"/v1/topics/{topic}/partitions/{partition}/records",
        params={"offset": "earliest"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return [rec["value"] for rec in r.json()["records"]]


def tenant_key(api: httpx.Client, tenant: str) -> str:
    assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    scopes = ["topics:read", "topics:write", "topics:admin"]
    r = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": scopes})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def test_the_longest_names_work_through_create_produce_fetch_restart_and_delete(
    tmp_path: Path,
) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            key = tenant_key(api, LONG_TENANT)
            long_topic, default_topic = "x" * 192, "y" * 249
            cases = [(long_topic, bearer(key)), (default_topic, server.headers)]
            for topic, auth in cases:
                r = api.post("/v1/topics", json={"name": topic, "partitions": 2}, headers=auth)
                assert r.status_code == 201, r.text
                assert r.headers["Location"] == f"/v1/topics/{topic}"
                records = {"records": [{"value": topic[:5], "partition": 1}]}
                r = api.post(f"/v1/topics/{topic}/records", json=records, headers=auth)
                assert r.status_code == 200, r.text
                assert values(api, topic, 1, **auth) == [topic[:5]]
        server.stop()
        server.start()
        with server.client() as api:
            for topic, auth in cases:
                assert values(api, topic, 1, **auth) == [topic[:5]]
                assert api.delete(f"/v1/topics/{topic}", headers=auth).status_code == 204
        server.stop()
        server.start()
        with server.client() as api:
            for topic, auth in cases:
                assert api.get(f"/v1/topics/{topic}", headers=auth).status_code == 404
    finally:
        server.stop()


def test_partitions_grow_never_shrink_and_keys_map_to_the_new_count(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            created = api.post("/v1/topics", json={"name": "grow", "partitions": 2}).json()
            r = api.patch("/v1/topics/grow", json={"partitions": 5})
            assert r.status_code == 200, r.text
            assert (r.json()["partitions"], r.json()["id"]) == (5, created["id"])
            keyed = [{"key": f"k{i}", "value": i} for i in range(20)]
            r = api.post("/v1/topics/grow/records", json={"records": keyed})
            assert r.status_code == 200, r.text
            for i, placed in enumerate(r.json()["offsets"]):
                assert placed["partition"] == partition_for_key(f"k{i}".encode(), 5)
            assert {o["partition"] for o in r.json()["offsets"]} & {2, 3, 4}
            shrink = api.patch("/v1/topics/grow", json={"partitions": 3})
            assert shrink.status_code == 422
            assert shrink.json()["partitions"] == 5
            assert shrink.json()["errors"][0]["pointer"] == "/partitions"
            # Config and partitions in one request; the same count changes nothing.
            r = api.patch(
                "/v1/topics/grow", json={"partitions": 5, "config": {"retention_ms": 60_000}}
            )
            assert (r.json()["partitions"], r.json()["config"]["retention_ms"]) == (5, 60_000)
        server.stop()
        server.start()
        with server.client() as api:
            described = api.get("/v1/topics/grow").json()
            assert len(described["partitions"]) == 5
            for p in range(5):
                expected = [i for i in range(20) if partition_for_key(f"k{i}".encode(), 5) == p]
                assert values(api, "grow", p) == expected
    finally:
        server.stop()


def test_a_topic_created_again_under_its_name_has_none_of_the_old_records(
    tmp_path: Path,
) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            first = api.post("/v1/topics", json={"name": "again"}).json()
            api.post("/v1/topics/again/records", json={"records": [{"value": "old"}]})
            assert api.delete("/v1/topics/again").status_code == 204
            second = api.post("/v1/topics", json={"name": "again"}).json()
            assert second["id"] != first["id"]
            assert values(api, "again", 0) == []
        server.stop()
        server.start()
        with server.client() as api:
            assert values(api, "again", 0) == []
    finally:
        server.stop()


def test_an_idempotent_retry_on_a_topic_created_again_appends_to_the_new_one(
    tmp_path: Path,
) -> None:
    """The reply remembered for an Idempotency-Key belongs to the topic it was
    given for, not to its name: the new topic gets the records."""
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            body = {"records": [{"value": "once"}]}
            headers = {"Idempotency-Key": "same-key"}
            api.post("/v1/topics", json={"name": "again"})
            assert api.post("/v1/topics/again/records", json=body, headers=headers).is_success
            assert api.delete("/v1/topics/again").status_code == 204
            api.post("/v1/topics", json={"name": "again"})
            r = api.post("/v1/topics/again/records", json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert values(api, "again", 0) == ["once"]
    finally:
        server.stop()
