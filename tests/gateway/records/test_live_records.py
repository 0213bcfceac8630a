"""Produce and fetch against a real server: formats, partitioning, offsets, long-poll."""

from __future__ import annotations

import base64
import time
from typing import Any

import anyio
import httpx
import pytest

from gateway.records.partitioner import partition_for_key
from tests.gateway.conftest import GatewayProcess


@pytest.fixture(scope="module")
def gateway(gateway_on_both_paths: GatewayProcess) -> GatewayProcess:
    """Every test here runs with the C fast paths and with the reference paths only."""
    return gateway_on_both_paths


def create(api: httpx.Client, name: str, partitions: int = 1, **config: Any) -> dict[str, Any]:
    r = api.post("/v1/topics", json={"name": name, "partitions": partitions, "config": config})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def fetch(api: httpx.Client, name: str, partition: int = 0, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/topics/{name}/partitions/{partition}/records", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_json_values_round_trip(api: httpx.Client, topic_name: str) -> None:
    create(api, topic_name)
    values = [{"a": [1, 2, {"b": None}]}, 1.5, "text", None, True, [], {"ü": "✓"}]
    records = [
        {"key": f"k{i}", "value": v, "headers": [["h", "1"], ["h", "2"]], "timestamp": 1000 + i}
        for i, v in enumerate(values)
    ]
    r = api.post(f"/v1/topics/{topic_name}/records", json={"records": records})
    assert r.status_code == 200, r.text
    assert r.json()["offsets"] == [{"partition": 0, "offset": i} for i in range(len(values))]
    got = fetch(api, topic_name, offset="earliest")
    assert [rec["value"] for rec in got["records"]] == values
    assert [rec["timestamp"] for rec in got["records"]] == [1000 + i for i in range(len(values))]
    assert got["records"][0]["headers"] == [["h", "1"], ["h", "2"]]
    assert got["records"][0]["key"] == "k0"
    assert (got["next_offset"], got["end_offset"]) == (len(values), len(values))


def test_string_and_binary_values_round_trip(api: httpx.Client, topic_name: str) -> None:
    create(api, f"{topic_name}-s", value_format="string")
    create(api, f"{topic_name}-b", value_format="binary")
    text = "plain ✓ text"
    blob = bytes(range(256))
    encoded = base64.b64encode(blob).decode()
    assert api.post(
        f"/v1/topics/{topic_name}-s/records", json={"records": [{"value": text}]}
    ).is_success
    assert api.post(
        f"/v1/topics/{topic_name}-b/records", json={"records": [{"value": encoded}]}
    ).is_success
    # Raw bodies: text/plain for strings, octet-stream for bytes, key from the query.
    r = api.post(
        f"/v1/topics/{topic_name}-b/records",
        params={"key": "raw"},
        content=blob,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    r = api.post(
        f"/v1/topics/{topic_name}-s/records",
        content=text.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    strings = fetch(api, f"{topic_name}-s")["records"]
    assert [s["value"] for s in strings] == [text, text]
    blobs = fetch(api, f"{topic_name}-b")["records"]
    assert [b["value"] for b in blobs] == [encoded, encoded]
    assert blobs[1]["key"] == "raw"


def test_ndjson_produce(api: httpx.Client, topic_name: str) -> None:
    create(api, topic_name)
    body = b'{"value": 1}\n\n{"value": {"x": 2}, "key": "k"}\r\n'
    r = api.post(
        f"/v1/topics/{topic_name}/records",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    assert [o["offset"] for o in r.json()["offsets"]] == [0, 1]
    assert [x["value"] for x in fetch(api, topic_name)["records"]] == [1, {"x": 2}]


def test_keys_land_on_their_murmur2_partition(api: httpx.Client, topic_name: str) -> None:
    create(api, topic_name, partitions=7)
    keys = ["21", "foobar", "abc", *(f"user-{i}" for i in range(40))]
    r = api.post(
        f"/v1/topics/{topic_name}/records",
        json={"records": [{"key": k, "value": i} for i, k in enumerate(keys)]},
    )
    assert r.status_code == 200, r.text
    placed = [o["partition"] for o in r.json()["offsets"]]
    assert placed == [partition_for_key(k.encode(), 7) for k in keys]


def test_explicit_partition_wins_and_keyless_records_spread(
    api: httpx.Client, topic_name: str
) -> None:
    create(api, topic_name, partitions=4)
    r = api.post(
        f"/v1/topics/{topic_name}/records",
        json={
            "records": [{"key": "21", "value": 0, "partition": 3}]
            + [{"value": i} for i in range(8)]
        },
    )
    offsets = r.json()["offsets"]
    assert offsets[0]["partition"] == 3
    counts = [0] * 4
    for o in offsets[1:]:
        counts[o["partition"]] += 1
    assert counts == [2, 2, 2, 2]


@pytest.mark.anyio
async def test_offsets_are_gapless_under_concurrent_producers(
    gateway: GatewayProcess, topic_name: str
) -> None:
    with gateway.client() as api:
        create(api, topic_name, partitions=2)
    seen: list[tuple[int, int]] = []
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers) as client:

        async def produce(n: int) -> None:
            records = [{"value": n * 100 + i, "partition": i % 2} for i in range(10)]
            r = await client.post(f"/v1/topics/{topic_name}/records", json={"records": records})
            assert r.status_code == 200, r.text
            seen.extend((o["partition"], o["offset"]) for o in r.json()["offsets"])

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(produce, n)
    for p in (0, 1):
        offsets = sorted(o for q, o in seen if q == p)
        assert offsets == list(range(100))
    with gateway.client() as api:
        got = fetch(api, topic_name, 1, max_records=1000)
        assert [r["offset"] for r in got["records"]] == list(range(100))


def test_fetch_by_timestamp_latest_and_limits(api: httpx.Client, topic_name: str) -> None:
    create(api, topic_name)
    records = [{"value": i, "timestamp": 1_000 * (i + 1)} for i in range(10)]
    api.post(f"/v1/topics/{topic_name}/records", json={"records": records})
    assert fetch(api, topic_name, timestamp=5_500)["records"][0]["value"] == 5
    assert fetch(api, topic_name, offset="latest")["records"] == []
    page = fetch(api, topic_name, offset=2, max_records=3)
    assert [r["offset"] for r in page["records"]] == [2, 3, 4]
    assert page["next_offset"] == 5
    assert len(fetch(api, topic_name, offset=0, max_bytes=1)["records"]) == 1


def test_kafka_offset_sentinels_mean_latest_and_earliest(
    api: httpx.Client, topic_name: str
) -> None:
    """`-1`/`-2` are Kafka's latest/earliest; any other negative is 400 naming the words."""
    create(api, topic_name)
    api.post(f"/v1/topics/{topic_name}/records", json={"records": [{"value": i} for i in range(3)]})
    latest = fetch(api, topic_name, offset=-1)
    assert (latest["records"], latest["next_offset"]) == ([], 3)
    assert [r["value"] for r in fetch(api, topic_name, offset=-2)["records"]] == [0, 1, 2]
    r = api.get(f"/v1/topics/{topic_name}/partitions/0/records", params={"offset": -3})
    assert r.status_code == 400
    problem = r.json()
    assert problem["parameter"] == "offset"
    assert "earliest" in problem["detail"]
    assert "latest" in problem["detail"]


@pytest.mark.anyio
async def test_long_poll_wakes_as_soon_as_a_record_arrives(
    gateway: GatewayProcess, topic_name: str
) -> None:
    with gateway.client() as api:
        create(api, topic_name)
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers) as client:
        result: dict[str, Any] = {}

        async def poll() -> None:
            r = await client.get(
                f"/v1/topics/{topic_name}/partitions/0/records",
                params={"offset": 0, "max_wait_ms": 10_000},
                timeout=30,
            )
            result["returned_at"] = time.monotonic()
            result["body"] = r.json()

        async with anyio.create_task_group() as tg:
            tg.start_soon(poll)
            await anyio.sleep(0.3)
            produced_at = time.monotonic()
            r = await client.post(
                f"/v1/topics/{topic_name}/records", json={"records": [{"value": "wake"}]}
            )
            assert r.status_code == 200
        assert result["body"]["records"][0]["value"] == "wake"
        # Woken by the append, far sooner than the 10 s it was willing to wait.
        assert result["returned_at"] - produced_at < 1.0, result


def test_long_poll_without_data_returns_empty_at_the_deadline(
    api: httpx.Client, topic_name: str
) -> None:
    create(api, topic_name)
    started = time.monotonic()
    body = fetch(api, topic_name, offset="latest", max_wait_ms=400)
    elapsed = time.monotonic() - started
    assert body["records"] == []
    assert 0.35 < elapsed < 3.0


def longpoll_waiters(api: httpx.Client) -> int:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("tidegate_longpoll_waiters "):
            return int(float(line.split()[1]))
    raise AssertionError("gauge missing")


@pytest.mark.anyio
async def test_disconnected_long_polls_free_their_waiters(
    gateway: GatewayProcess, topic_name: str
) -> None:
    with gateway.client() as api:
        create(api, topic_name)
        assert longpoll_waiters(api) == 0

    async def abandoned(n: int) -> None:
        async with httpx.AsyncClient(
            base_url=gateway.url, headers=gateway.headers, limits=httpx.Limits(max_connections=n)
        ) as client:

            async def one() -> None:
                await client.get(
                    f"/v1/topics/{topic_name}/partitions/0/records",
                    params={"offset": 0, "max_wait_ms": 30_000},
                    timeout=60,
                )

            with anyio.move_on_after(1.0):
                async with anyio.create_task_group() as tg:
                    for _ in range(n):
                        tg.start_soon(one)

    with gateway.client() as api:
        for _round in range(3):
            await abandoned(50)
        for _ in range(100):  # the server's gauge, polled for up to 5 s
            if longpoll_waiters(api) == 0:
                break
            await anyio.sleep(0.05)
        assert longpoll_waiters(api) == 0
        assert api.get("/readyz").status_code == 200
