"""A server whose disk is really full (a small tmpfs): every write path answers 507
disk-full with Retry-After, reads keep working, nothing is left stuck, and the same
requests succeed once space is freed, without a restart."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gateway.conftest import GatewayProcess
from tests.support.small_fs import fill, free, small_filesystem


def assert_disk_full(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.json()["type"] == "https://tidegate.dev/problems/disk-full"
    assert int(response.headers["Retry-After"]) >= 1


def test_every_write_on_a_full_disk_is_507_and_succeeds_once_space_returns(
    tmp_path: Path,
) -> None:
    with small_filesystem("16m") as root:
        server = GatewayProcess(root / "data", env={"TIDEGATE_LOG_LEVEL": "error"})
        server.log_path = tmp_path / "gateway.log"  # off the full disk
        server.start()
        try:
            with server.client() as api:
                r = api.post("/v1/topics", json={"name": "kept", "partitions": 2})
                assert r.status_code == 201
                produce = {"records": [{"value": "x" * 2000, "partition": 1}]}
                assert api.post("/v1/topics/kept/records", json=produce).status_code == 200
                fill(root)

                create_topic = {"name": "orders", "partitions": 4}
                assert_disk_full(api.post("/v1/topics", json=create_topic))
                assert_disk_full(api.post("/v1/admin/tenants", json={"name": "acme"}))
                idem = {"Idempotency-Key": "retry-1"}
                assert_disk_full(api.post("/v1/topics/kept/records", json=produce, headers=idem))
                assert_disk_full(api.post("/v1/topics/kept/records", json=produce))
                assert_disk_full(api.patch("/v1/topics/kept", json={"partitions": 6}))
                # Reads keep working; the failed create left nothing visible behind.
                r = api.get("/v1/topics/kept/partitions/1/records", params={"offset": 0})
                assert r.status_code == 200
                assert len(r.json()["records"]) == 1
                names = [t["name"] for t in api.get("/v1/topics").json()["topics"]]
                assert names == ["kept"]
                assert api.get("/v1/topics/kept").json()["partitions"][1]["end_offset"] == 1

                free(root)
                assert api.post("/v1/topics", json=create_topic).status_code == 201
                assert api.post("/v1/admin/tenants", json={"name": "acme"}).status_code == 201
                r = api.post("/v1/topics/kept/records", json=produce, headers=idem)
                assert r.status_code == 200, r.text
                again = api.post("/v1/topics/kept/records", json=produce, headers=idem)
                assert again.json() == r.json()  # the retry is answered, not appended
                assert api.patch("/v1/topics/kept", json={"partitions": 6}).status_code == 200
                r = api.get("/v1/topics/kept/partitions/1/records", params={"offset": 0})
                assert len(r.json()["records"]) == 2
        finally:
            server.stop()
