"""Topics bound to a schema subject, against a live gateway on the fast and the reference
paths: valid batches stored with their schema id, one bad record rejects the whole
batch, a schema change applies to the next request, versions pinned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from tests.gateway.conftest import GatewayProcess
from tests.gateway.schemas.conftest import client_for, key_of, new_tenant

PROBLEMS = "https://tidegate.dev/problems/"


@pytest.fixture(scope="module")
def gateway(gateway_on_both_paths: GatewayProcess) -> GatewayProcess:
    return gateway_on_both_paths


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with client_for(gateway, key_of(gateway, new_tenant(gateway, "bind"))) as client:
        yield client


def bound_topic(api: httpx.Client, topic: str, subject: str, kind: str, schema: Any) -> int:
    r = api.post(f"/v1/schemas/{subject}/versions", json={"schema_type": kind, "schema": schema})
    assert r.status_code in (200, 201), r.text
    r = api.post("/v1/topics", json={"name": topic, "config": {"value_schema": subject}})
    assert r.status_code == 201, r.text
    schema_id: int = api.get(f"/v1/schemas/{subject}/versions/latest").json()["id"]
    return schema_id


def produce(api: httpx.Client, topic: str, values: list[Any], **kw: Any) -> httpx.Response:
    return api.post(
        f"/v1/topics/{topic}/records", json={"records": [{"value": v} for v in values]}, **kw
    )


def fetched(api: httpx.Client, topic: str) -> list[dict[str, Any]]:
    r = api.get(
        f"/v1/topics/{topic}/partitions/0/records",
        params={"offset": "earliest", "max_records": 1000},
    )
    records: list[dict[str, Any]] = r.json()["records"]
    return records


@pytest.mark.parametrize(("kind", "schema"), [("JSON", JSON_SCHEMA), ("AVRO", AVRO_SCHEMA)])
def test_a_valid_batch_is_stored_with_its_schema_id(
    api: httpx.Client, kind: str, schema: Any
) -> None:
    schema_id = bound_topic(api, f"orders-{kind}", f"orders-{kind}-value", kind, schema)
    values = [order(i) for i in range(100)]
    r = produce(api, f"orders-{kind}", values)
    assert r.status_code == 200, r.text
    records = fetched(api, f"orders-{kind}")
    assert [rec["value"] for rec in records] == values
    assert all(rec["headers"] == [["tidegate-schema-id", str(schema_id)]] for rec in records)


def test_one_bad_record_among_100_rejects_all_and_appends_nothing(api: httpx.Client) -> None:
    bound_topic(api, "strict", "strict-value", "JSON", JSON_SCHEMA)
    values = [order(i) for i in range(100)]
    values[42]["total_cents"] = -5
    r = produce(api, "strict", values)
    assert r.status_code == 422
    body = r.json()
    assert body["type"] == PROBLEMS + "invalid-records"
    assert [(e["record"], e["pointer"]) for e in body["errors"]] == [
        (42, "/records/42/value/total_cents")
    ]
    assert "minimum" in body["errors"][0]["message"] or "less than" in body["errors"][0]["message"]
    assert fetched(api, "strict") == []
    # NDJSON and a raw body are checked the same way.
    lines = b"\n".join(httpx.Request("POST", "/", json={"value": v}).content for v in values[40:45])
    r = api.post(
        "/v1/topics/strict/records", content=lines, headers={"Content-Type": "application/x-ndjson"}
    )
    assert (r.status_code, r.json()["errors"][0]["record"]) == (422, 2)
    r = api.post(
        "/v1/topics/strict/records",
        content=b'{"order_id": 1}',
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 422
    assert fetched(api, "strict") == []


def test_a_schema_change_applies_to_the_next_request_and_versions_can_be_pinned(
    api: httpx.Client,
) -> None:
    v1 = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    v2 = {"type": "object", "properties": {"n": {"type": "string"}}, "required": ["n"]}
    first = bound_topic(api, "evolving", "evolving-value", "JSON", v1)
    assert produce(api, "evolving", [{"n": 1}]).status_code == 200
    api.put("/v1/schemas/evolving-value/config", json={"compatibility": "NONE"})
    second = api.post(
        "/v1/schemas/evolving-value/versions", json={"schema_type": "JSON", "schema": v2}
    ).json()["id"]
    assert produce(api, "evolving", [{"n": 2}]).status_code == 422
    assert produce(api, "evolving", [{"n": "two"}]).status_code == 200
    r = produce(api, "evolving", [{"n": 3}], headers={"Tidegate-Schema-Version": "1"})
    assert r.status_code == 200, r.text
    r = api.post(
        "/v1/topics/evolving/records",
        json={"records": [{"value": {"n": 4}, "schema_version": 1}, {"value": {"n": "four"}}]},
    )
    assert r.status_code == 200, r.text
    ids = [rec["headers"][0][1] for rec in fetched(api, "evolving")]
    assert ids == [str(first), str(second), str(first), str(first), str(second)]
    # A delete applies to the next request too: version 1 is the latest again.
    assert api.delete("/v1/schemas/evolving-value/versions/2").status_code == 200
    assert produce(api, "evolving", [{"n": 6}]).status_code == 200
    assert produce(api, "evolving", [{"n": "six"}]).status_code == 422
    r = produce(api, "evolving", [{"n": 5}], headers={"Tidegate-Schema-Version": "9"})
    assert (r.status_code, r.json()["type"]) == (404, PROBLEMS + "schema-version-not-found")


def test_the_binding_is_checked_when_the_topic_is_configured(api: httpx.Client) -> None:
    r = api.post("/v1/topics", json={"name": "unbound", "config": {"value_schema": "nothing"}})
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/config/value_schema")
    api.post("/v1/schemas/s-value/versions", json={"schema_type": "JSON", "schema": {}})
    r = api.post(
        "/v1/topics",
        json={"name": "strings", "config": {"value_schema": "s-value", "value_format": "string"}},
    )
    assert r.status_code == 422
    assert api.post("/v1/topics", json={"name": "later"}).status_code == 201
    r = api.patch("/v1/topics/later", json={"config": {"value_schema": "s-value"}})
    assert r.json()["config"]["value_schema"] == "s-value"
    # A record may pin a version only on a schema-bound topic.
    assert api.post("/v1/topics", json={"name": "plain"}).status_code == 201
    r = api.post("/v1/topics/plain/records", json={"records": [{"value": 1, "schema_version": 1}]})
    assert r.status_code == 422
