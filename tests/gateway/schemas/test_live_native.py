"""The native registry API against a live gateway: round trips, compatibility, deletes,
scopes and tenant isolation."""

from __future__ import annotations

from typing import Any

from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA
from tests.gateway.conftest import GatewayProcess
from tests.gateway.schemas.conftest import client_for, key_of, new_tenant

PROBLEMS = "https://tidegate.dev/problems/"
USER_V1: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["id"],
}


def test_json_and_avro_round_trip(gateway: GatewayProcess) -> None:
    key = key_of(gateway, new_tenant(gateway, "rt"))
    with client_for(gateway, key) as api:
        r = api.post(
            "/v1/schemas/orders-value/versions", json={"schema_type": "JSON", "schema": JSON_SCHEMA}
        )
        assert r.status_code == 201, r.text
        assert r.json() == {"id": 1, "version": 1}
        # The same schema again, formatted otherwise: the existing version.
        spaced = '{ "type":"object" }'
        assert api.post(
            "/v1/schemas/orders-value/versions", json={"schema_type": "JSON", "schema": JSON_SCHEMA}
        ).json() == {"id": 1, "version": 1}
        r = api.post(
            "/v1/schemas/avro-value/versions", json={"schema_type": "AVRO", "schema": AVRO_SCHEMA}
        )
        assert r.json() == {"id": 2, "version": 1}
        r = api.post("/v1/schemas/other/versions", json={"schema_type": "JSON", "schema": spaced})
        assert r.json() == {"id": 3, "version": 1}
        assert api.post(
            "/v1/schemas/other2/versions",
            json={"schema_type": "JSON", "schema": {"type": "object"}},
        ).json() == {"id": 3, "version": 1}
        latest = api.get("/v1/schemas/avro-value/versions/latest").json()
        assert latest == {
            "subject": "avro-value",
            "version": 1,
            "id": 2,
            "schema_type": "AVRO",
            "schema": AVRO_SCHEMA,
        }
        assert api.get("/v1/schemas/orders-value/versions/1").json()["schema"] == JSON_SCHEMA
        assert api.get("/v1/schemas/ids/2").json()["schema"] == AVRO_SCHEMA
        assert api.get("/v1/schemas/orders-value/versions").json() == {"versions": [1]}
        assert api.get("/v1/schemas").json() == {
            "subjects": ["avro-value", "orders-value", "other", "other2"]
        }
        assert api.get("/v1/schemas/ids/99").status_code == 404
        r = api.get("/v1/schemas/nope/versions/latest")
        assert (r.status_code, r.json()["type"]) == (404, PROBLEMS + "subject-not-found")
        assert api.get("/v1/schemas/orders-value/versions/7").status_code == 404
        assert api.get("/v1/schemas/orders-value/versions/zero").status_code == 400


def test_an_incompatible_schema_gets_409_naming_each_incompatibility(
    gateway: GatewayProcess,
) -> None:
    key = key_of(gateway, new_tenant(gateway, "compat"))
    with client_for(gateway, key) as api:
        assert (
            api.post(
                "/v1/schemas/users/versions", json={"schema_type": "JSON", "schema": USER_V1}
            ).status_code
            == 201
        )
        breaking = {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "email": {"type": "string"}},
            "required": ["id", "email"],
        }
        dry = api.post(
            "/v1/schemas/users/compatibility", json={"schema_type": "JSON", "schema": breaking}
        )
        assert dry.status_code == 200
        assert dry.json()["compatible"] is False
        assert dry.json()["compatibility"] == "BACKWARD"
        r = api.post("/v1/schemas/users/versions", json={"schema_type": "JSON", "schema": breaking})
        assert r.status_code == 409
        body = r.json()
        assert body["type"] == PROBLEMS + "schema-incompatible"
        pointers = sorted(i["pointer"] for i in body["incompatibilities"])
        assert pointers == ["/properties/id/type", "/required"]
        assert all(
            i["version"] == 1 and i["direction"] == "backward" for i in body["incompatibilities"]
        )
        assert api.get("/v1/schemas/users/versions").json() == {"versions": [1]}
        # An optional property is a compatible change; so is anything under NONE.
        widened = dict(USER_V1, properties={**USER_V1["properties"], "email": {"type": "string"}})
        ok = api.post(
            "/v1/schemas/users/compatibility", json={"schema_type": "JSON", "schema": widened}
        )
        assert ok.json() == {
            "compatible": True,
            "compatibility": "BACKWARD",
            "incompatibilities": [],
        }
        assert api.put("/v1/schemas/users/config", json={"compatibility": "NONE"}).json() == {
            "compatibility": "NONE"
        }
        r = api.post("/v1/schemas/users/versions", json={"schema_type": "JSON", "schema": breaking})
        assert r.json() == {"id": 2, "version": 2}
        assert api.get("/v1/schemas/users/config").json() == {
            "compatibility": "NONE",
            "inherited": False,
        }
        r = api.put("/v1/schemas/users/config", json={"compatibility": "SIDEWAYS"})
        assert (r.status_code, r.json()["type"]) == (422, PROBLEMS + "invalid-compatibility")
        assert api.delete("/v1/schemas/users/config").json()["compatibility"] == "BACKWARD"


def test_invalid_schemas_are_refused_with_the_reason(gateway: GatewayProcess) -> None:
    key = key_of(gateway, new_tenant(gateway, "invalid"))
    with client_for(gateway, key) as api:
        for body in (
            {"schema_type": "JSON", "schema": {"type": "strin"}},
            {"schema_type": "AVRO", "schema": {"type": "record", "name": "R"}},
            {"schema_type": "JSON", "schema": "{not json"},
        ):
            r = api.post("/v1/schemas/s/versions", json=body)
            assert (r.status_code, r.json()["type"]) == (422, PROBLEMS + "invalid-schema"), body
        r = api.post("/v1/schemas/s/versions", json={"schema_type": "XML", "schema": {}})
        assert r.status_code == 422
        assert api.get("/v1/schemas").json() == {"subjects": []}


def test_soft_then_permanent_deletes(gateway: GatewayProcess) -> None:
    key = key_of(gateway, new_tenant(gateway, "del"))
    with client_for(gateway, key) as api:
        for t in ("string", "integer"):
            api.put("/v1/schemas/d/config", json={"compatibility": "NONE"})
            api.post("/v1/schemas/d/versions", json={"schema_type": "JSON", "schema": {"type": t}})
        assert (
            api.delete("/v1/schemas/d/versions/2", params={"permanent": "true"}).status_code == 409
        )
        assert api.delete("/v1/schemas/d/versions/2").json() == {"version": 2}
        assert api.get("/v1/schemas/d/versions").json() == {"versions": [1]}
        assert api.get("/v1/schemas/d/versions", params={"deleted": "true"}).json() == {
            "versions": [1, 2]
        }
        assert api.get("/v1/schemas/d/versions/2").status_code == 404
        assert api.get("/v1/schemas/d/versions/2", params={"deleted": "true"}).json()["deleted"]
        assert api.delete("/v1/schemas/d/versions/2", params={"permanent": "true"}).json() == {
            "version": 2
        }
        assert api.delete("/v1/schemas/d").json() == {"versions": [1]}
        assert api.get("/v1/schemas").json() == {"subjects": []}
        assert api.delete("/v1/schemas/d", params={"permanent": "true"}).json() == {"versions": [1]}
        assert api.get("/v1/schemas", params={"deleted": "true"}).json() == {"subjects": []}
        assert api.get("/v1/schemas/ids/1").status_code == 404


def test_scopes_reading_and_writing(gateway: GatewayProcess) -> None:
    tenant = new_tenant(gateway, "scopes")
    writer, reader = key_of(gateway, tenant), key_of(gateway, tenant, ["topics:read"])
    nothing = key_of(gateway, tenant, ["groups:read"])
    body = {"schema_type": "JSON", "schema": USER_V1}
    with client_for(gateway, reader) as api:
        assert api.post("/v1/schemas/u/versions", json=body).status_code == 403
    with client_for(gateway, writer) as api:
        assert api.post("/v1/schemas/u/versions", json=body).status_code == 201
    with client_for(gateway, reader) as api:
        assert api.get("/v1/schemas/u/versions/latest").status_code == 200
        assert api.put("/v1/schemas/u/config", json={"compatibility": "NONE"}).status_code == 403
        assert api.delete("/v1/schemas/u").status_code == 403
    with client_for(gateway, nothing) as api:
        assert api.get("/v1/schemas/u/versions/latest").status_code == 403


def test_tenants_never_see_each_others_subjects_or_ids(gateway: GatewayProcess) -> None:
    a, b = (
        key_of(gateway, new_tenant(gateway, "iso-a")),
        key_of(gateway, new_tenant(gateway, "iso-b")),
    )
    with client_for(gateway, a) as api:
        assert (
            api.post(
                "/v1/schemas/shared-name/versions", json={"schema_type": "JSON", "schema": USER_V1}
            ).status_code
            == 201
        )
    with client_for(gateway, b) as api:
        assert api.get("/v1/schemas").json() == {"subjects": []}
        assert api.get("/v1/schemas/shared-name/versions/latest").status_code == 404
        assert api.get("/v1/schemas/ids/1").status_code == 404
        assert api.delete("/v1/schemas/shared-name").status_code == 404
        # Its own registration under the same name is its own, with its own ids.
        r = api.post(
            "/v1/schemas/shared-name/versions",
            json={"schema_type": "JSON", "schema": {"type": "string"}},
        )
        assert r.json() == {"id": 1, "version": 1}
    with client_for(gateway, a) as api:
        assert api.get("/v1/schemas/ids/1").json()["schema"] == USER_V1
