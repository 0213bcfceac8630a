"""The Confluent Schema Registry API, driven by the real `confluent-kafka` client and its
serializers against a live gateway, with HTTP Basic (the key as the password) and bearer auth."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from tests.gateway.conftest import GatewayProcess
from tests.gateway.schemas.conftest import key_and_id, new_tenant

MEDIA = "application/vnd.schemaregistry.v1+json"
USER_V1 = {
    "type": "record",
    "name": "User",
    "fields": [{"name": "id", "type": "string"}],
}
USER_V2_OK = dict(
    USER_V1, fields=[*USER_V1["fields"], {"name": "age", "type": "int", "default": 0}]
)
USER_V2_BAD = dict(USER_V1, fields=[*USER_V1["fields"], {"name": "age", "type": "int"}])


def registry_client(gateway: GatewayProcess, key_id: str, key: str) -> SchemaRegistryClient:
    return SchemaRegistryClient(
        {"url": f"{gateway.url}/schema-registry", "basic.auth.user.info": f"{key_id}:{key}"}
    )


@pytest.fixture
def tenant_client(gateway: GatewayProcess) -> Iterator[SchemaRegistryClient]:
    key_id, key = key_and_id(gateway, new_tenant(gateway, "ck"))
    client = registry_client(gateway, key_id, key)
    try:
        yield client
    finally:
        client.close()


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


def test_register_look_up_fetch_list_configure_test_and_delete(
    tenant_client: SchemaRegistryClient,
) -> None:
    client = tenant_client
    schema_id = client.register_schema("users-value", avro(USER_V1))
    assert schema_id == 1
    assert client.register_schema("users-value", avro(USER_V1)) == 1
    found = client.lookup_schema("users-value", avro(USER_V1))
    assert (found.schema_id, found.version, found.subject) == (1, 1, "users-value")
    assert json.loads(client.get_schema(schema_id).schema_str or "") == USER_V1
    assert client.get_subjects() == ["users-value"]
    assert client.get_versions("users-value") == [1]
    latest = client.get_latest_version("users-value")
    assert (latest.version, latest.schema_id, latest.schema.schema_type) == (1, 1, "AVRO")
    assert sorted(client.get_schema_types()) == ["AVRO", "JSON"]

    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility("users-value", "FULL")
    assert client.get_compatibility("users-value") == "FULL"
    assert client.test_compatibility("users-value", avro(USER_V2_OK)) is True
    assert client.test_compatibility("users-value", avro(USER_V2_BAD)) is False
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("users-value", avro(USER_V2_BAD))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    assert "age" in refused.value.error_message
    assert client.register_schema("users-value", avro(USER_V2_OK)) == 2
    assert client.get_version("users-value", 2).schema_id == 2

    assert client.delete_version("users-value", 2) == 2
    assert client.get_versions("users-value") == [1]
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_version("users-value", 2)
    assert gone.value.error_code == 40402
    assert client.delete_subject("users-value") == [1]
    assert client.get_subjects() == []
    assert client.delete_subject("users-value", permanent=True) == [1, 2]
    client.clear_caches()  # type: ignore[no-untyped-call]  # the client keeps what it read; ask the registry again
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version("users-value")
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as no_id:
        client.get_schema(99)
    assert no_id.value.error_code == 40403


def test_serializers_write_the_registry_id_and_read_back(
    tenant_client: SchemaRegistryClient,
) -> None:
    client = tenant_client
    value = order(7)
    ctx = SerializationContext("orders", MessageField.VALUE)
    avro_bytes = AvroSerializer(client, json.dumps(AVRO_SCHEMA))(value, ctx)
    assert avro_bytes is not None
    avro_id = client.get_latest_version("orders-value").schema_id
    assert avro_bytes[0] == 0
    assert struct.unpack(">I", avro_bytes[1:5])[0] == avro_id
    assert AvroDeserializer(client)(avro_bytes, ctx) == value

    json_ctx = SerializationContext("orders-json", MessageField.VALUE)
    json_bytes = JSONSerializer(json.dumps(JSON_SCHEMA), client)(value, json_ctx)
    assert json_bytes is not None
    json_id = client.get_latest_version("orders-json-value").schema_id
    assert json_id != avro_id
    assert struct.unpack(">bI", json_bytes[:5]) == (0, json_id)
    assert json.loads(json_bytes[5:]) == value
    assert JSONDeserializer(json.dumps(JSON_SCHEMA))(json_bytes, json_ctx) == value


def test_bearer_auth_and_tenant_isolation(gateway: GatewayProcess) -> None:
    _a_id, a_key = key_and_id(gateway, new_tenant(gateway, "ck-a"))
    b_id, b_key = key_and_id(gateway, new_tenant(gateway, "ck-b"))
    bearer = SchemaRegistryClient(
        {
            "url": f"{gateway.url}/schema-registry",
            "bearer.auth.credentials.source": "STATIC_TOKEN",
            "bearer.auth.token": a_key,
            "bearer.auth.logical.cluster": "unused",
        }
    )
    other = registry_client(gateway, b_id, b_key)
    try:
        schema_id = bearer.register_schema("secret-value", avro(USER_V1))
        assert other.get_subjects() == []
        with pytest.raises(SchemaRegistryError) as hidden:
            other.get_latest_version("secret-value")
        assert hidden.value.error_code == 40401
        with pytest.raises(SchemaRegistryError) as by_id:
            other.get_schema(schema_id)
        assert by_id.value.error_code == 40403
        # The native API sees the same registry, for the same tenant only.
        native = httpx.get(
            f"{gateway.url}/v1/schemas", headers={"Authorization": f"Bearer {a_key}"}
        )
        assert native.json() == {"subjects": ["secret-value"]}
    finally:
        bearer.close()
        other.close()


def test_errors_and_media_type_as_that_api_has_them(gateway: GatewayProcess) -> None:
    key_id, key = key_and_id(gateway, new_tenant(gateway, "ck-raw"))
    base = f"{gateway.url}/schema-registry"
    with httpx.Client(base_url=base, auth=(key_id, key)) as api:
        r = api.get("/subjects")
        assert (r.status_code, r.headers["content-type"], r.json()) == (200, MEDIA, [])
        r = api.get("/subjects/nope/versions/latest")
        assert r.json() == {"error_code": 40401, "message": "Subject 'nope' not found."}
        r = api.get("/subjects/nope/versions/zero")
        assert (r.status_code, r.json()["error_code"]) == (422, 42202)
        r = api.post("/subjects/s/versions", json={"schema": '{"type": "nope"}'})
        assert (r.status_code, r.json()["error_code"]) == (422, 42201)
        r = api.put("/config/s", json={"compatibility": "SIDEWAYS"})
        assert (r.status_code, r.json()["error_code"]) == (422, 42203)
        r = api.get("/config/s")
        assert (r.status_code, r.json()["error_code"]) == (404, 40408)
        assert api.get("/config/s", params={"defaultToGlobal": "true"}).json() == {
            "compatibilityLevel": "BACKWARD"
        }
        assert api.put("/config", json={"compatibility": "FORWARD"}).json() == {
            "compatibility": "FORWARD"
        }
        assert api.delete("/config").json() == {"compatibilityLevel": "FORWARD"}
        assert api.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
        api.post("/subjects/s/versions", json={"schema": '"string"'})
        assert api.get("/subjects/s/versions/-1").json()["version"] == 1
        r = api.delete("/subjects/s", params={"permanent": "true"})
        assert (r.status_code, r.json()["error_code"]) == (404, 40405)
    r = httpx.get(f"{base}/subjects")
    assert (r.status_code, r.json()["error_code"]) == (401, 40101)
    assert "Basic" in r.headers["www-authenticate"]
    r = httpx.get(f"{base}/subjects", auth=("x", "tg_wrong_key"))
    assert (r.status_code, r.json()["error_code"]) == (401, 40101)
