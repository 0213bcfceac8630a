"""First start, idempotency across restarts, and graceful shutdown of a real process."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.gateway.conftest import CLEAN_EXIT, GatewayProcess


def test_first_start_prints_the_operator_key_once(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data", bootstrap_key=None).start()
    try:
        out = server.output()
        match = re.search(r"Operator key: (tg_\S+)", out)
        assert match, out
        key = match.group(1)
        assert server.url in out
        assert "curl" in out
        r = httpx.get(f"{server.url}/v1/topics", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
    finally:
        assert server.stop() in CLEAN_EXIT
    server.start()
    try:
        assert server.output().count("Operator key:") == 1  # not printed again
    finally:
        server.stop()
    secret = tmp_path / "data" / "secret"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_idempotent_retry_appends_once_also_after_a_restart(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    body = {"records": [{"value": {"n": 1}}, {"value": {"n": 2}}]}
    key = {"Idempotency-Key": "order-42-attempt"}
    try:
        with server.client() as api:
            api.post("/v1/topics", json={"name": "idem", "partitions": 1})
            first = api.post("/v1/topics/idem/records", json=body, headers=key)
            assert first.status_code == 200, first.text
            again = api.post("/v1/topics/idem/records", json=body, headers=key)
            assert again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
            other = api.post(
                "/v1/topics/idem/records", json={"records": [{"value": 3}]}, headers=key
            )
            assert other.status_code == 422
            assert other.json()["type"].endswith("/idempotency-key-reused")
    finally:
        assert server.stop() in CLEAN_EXIT
    server.start()
    try:
        with server.client() as api:
            after = api.post("/v1/topics/idem/records", json=body, headers=key)
            assert after.status_code == 200
            assert after.json() == first.json()
            records = api.get("/v1/topics/idem/partitions/0/records").json()["records"]
            assert [r["value"]["n"] for r in records] == [1, 2]
    finally:
        server.stop()


@pytest.mark.anyio
async def test_concurrent_duplicates_append_once(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            api.post("/v1/topics", json={"name": "storm", "partitions": 1})
        statuses: list[int] = []
        replies: list[Any] = []
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:

            async def retry_until_done() -> None:
                for _ in range(100):
                    r = await client.post(
                        "/v1/topics/storm/records",
                        json={"records": [{"value": "once"}]},
                        headers={"Idempotency-Key": "storm-1"},
                    )
                    statuses.append(r.status_code)
                    if r.status_code == 409:
                        assert r.headers["retry-after"] == "1"
                        await anyio.sleep(0.05)
                        continue
                    replies.append(r.json())
                    return

            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(retry_until_done)
        assert set(statuses) == {200}  # never told to wait: the partition decides
        assert len(replies) == 20
        assert all(r == replies[0] for r in replies)
        with server.client() as api:
            assert api.get("/v1/topics/storm").json()["partitions"][0]["end_offset"] == 1
    finally:
        server.stop()


def test_shutdown_answers_a_pending_long_poll_and_closes_cleanly(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    with server.client() as api:
        api.post("/v1/topics", json={"name": "drain", "partitions": 1})
    result: dict[str, Any] = {}

    def poll() -> None:
        with server.client() as api:
            started = time.monotonic()
            r = api.get(
                "/v1/topics/drain/partitions/0/records",
                params={"offset": "latest", "max_wait_ms": 25_000},
            )
            result["elapsed"] = time.monotonic() - started
            result["status"] = r.status_code
            result["body"] = r.json()

    thread = threading.Thread(target=poll)
    thread.start()
    deadline = time.monotonic() + 5
    with server.client() as api:
        while "tidegate_longpoll_waiters 1" not in api.get("/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    stopped_at = time.monotonic()
    assert server.stop() in CLEAN_EXIT
    thread.join(10)
    assert result["status"] == 200
    assert result["body"]["records"] == []
    assert time.monotonic() - stopped_at < 5
    assert result["elapsed"] < 10
    # The log closed cleanly: storage leaves its clean-shutdown marker.
    assert any("clean-shutdown" in p.name for p in (tmp_path / "data").iterdir())
