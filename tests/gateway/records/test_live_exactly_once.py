"""Idempotent produce is exactly-once through SIGKILL: real server processes killed
while clients produce, each client retrying its in-flight request with the same
`Idempotency-Key` and body until it is answered. Every acknowledged record is
stored exactly once, and a retry right after a restart gets the full reply."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.records.idempotency import state_key
from storage.embedded.state import SqliteStateStore
from tests.gateway.conftest import GatewayProcess

PARTITIONS = 8


def kill(server: GatewayProcess) -> None:
    """SIGKILL by PID, as a crash: no drain, no clean-shutdown marker."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.proc = None


def read_everything(api: httpx.Client, topic: str) -> list[tuple[int, int, str]]:
    """(partition, offset, value) of every record of the topic."""
    out: list[tuple[int, int, str]] = []
    for p in range(PARTITIONS):
        offset = 0
        while True:
            r = api.get(
                f"/v1/topics/{topic}/partitions/{p}/records",
                params={"offset": offset, "max_records": 5000},
            )
            assert r.status_code == 200, r.text
            page = r.json()
            for rec in page["records"]:
                out.append((p, rec["offset"], rec["value"]))
            if not page["records"]:
                break
            offset = page["records"][-1]["offset"] + 1
    return out


def test_a_retry_right_after_a_crash_gets_the_full_reply(tmp_path: Path) -> None:
    """A SIGKILL after the append and before the reply was stored leaves the key
    claimed ("pending"). After the restart the retry is answered at once with
    the first reply (not 409 until the claim expires) and appends nothing."""
    data = tmp_path / "data"
    server = GatewayProcess(data).start()
    records = [{"key": f"k{i}", "value": f"v{i}"} for i in range(12)]
    records += [{"value": f"keyless{i}"} for i in range(6)]
    body = orjson.dumps({"records": records})
    headers = {"Idempotency-Key": "after-crash-1", "Content-Type": "application/json"}
    try:
        with server.client() as api:
            assert api.post("/v1/topics", json={"name": "ck", "partitions": PARTITIONS}).is_success
            first = api.post("/v1/topics/ck/records", content=body, headers=headers)
            assert first.status_code == 200, first.text
            namespace = api.get("/v1/admin/tenants/default").json()["id"]  # the tenant's id
            topic_id = api.get("/v1/topics/ck").json()["id"]
    finally:
        kill(server)

    async def forget_the_reply() -> None:
        # What the crash leaves when it comes between the append and storing the reply.
        state = await SqliteStateStore.open(str(data))
        try:
            key = state_key(namespace, topic_id, "after-crash-1")
            stored = await state.get(key)
            assert stored is not None
            pending = {"fp": orjson.loads(stored)["fp"], "state": "pending"}
            await state.put(key, orjson.dumps(pending), ttl_s=3600)
        finally:
            await state.close()

    asyncio.run(forget_the_reply())
    server.start()
    try:
        with server.client() as api:
            started = time.monotonic()
            again = api.post("/v1/topics/ck/records", content=body, headers=headers)
            assert time.monotonic() - started < 5
            assert again.status_code == 200, again.text
            assert again.json() == first.json()
            stored = read_everything(api, "ck")
            assert sorted(v for _, _, v in stored) == sorted(str(r["value"]) for r in records)
            # Now the reply is stored again: a third attempt is a plain replay.
            third = api.post("/v1/topics/ck/records", content=body, headers=headers)
            assert third.json() == first.json()
            assert third.headers["idempotent-replayed"] == "true"
    finally:
        server.stop()


@dataclass
class Produced:
    """What the clients were told: every acknowledged record and where."""

    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    requests: int = 0
    retried: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def kill_loop(tmp_path: Path, *, cycles: int, clients: int, budget_s: float) -> dict[str, Any]:
    """`clients` producers of 20-record keyed batches to an 8-partition topic, each
    request with its own key; the server SIGKILLed at random `cycles` times and
    restarted; each client retries its in-flight request with the same key and
    body until it is answered 200. Returns the figures, after checking them."""
    server = GatewayProcess(tmp_path / "data").start()
    with server.client() as api:
        assert api.post("/v1/topics", json={"name": "kl", "partitions": PARTITIONS}).is_success
    produced = Produced()
    stop = threading.Event()
    rng = random.Random(12)
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as http:
                n = 0
                while not stop.is_set():
                    records = [
                        {"key": f"c{c}-{n}-{i % 7}", "value": f"c{c}-r{n}-{i}"} for i in range(20)
                    ]
                    body = orjson.dumps({"records": records})
                    headers = {"Idempotency-Key": f"c{c}-r{n}", "Content-Type": "application/json"}
                    attempts = 0
                    while True:
                        attempts += 1
                        try:
                            r = http.post("/v1/topics/kl/records", content=body, headers=headers)
                        except httpx.TransportError:
                            time.sleep(0.02)
                            continue
                        if r.status_code == 200:
                            break
                        assert r.status_code in (503, 500, 507), r.text
                        time.sleep(0.02)
                    offsets = r.json()["offsets"]
                    with produced.lock:
                        produced.requests += 1
                        produced.retried += attempts > 1
                        for rec, at in zip(records, offsets, strict=True):
                            produced.acked[str(rec["value"])] = (at["partition"], at["offset"])
                    n += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + budget_s
    done = 0
    try:
        while done < cycles and time.monotonic() < deadline and not errors:
            time.sleep(rng.uniform(0.05, 0.4))
            kill(server)
            done += 1
            server.start(timeout_s=30)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        assert not errors, errors
        assert done == cycles, f"only {done} of {cycles} cycles within {budget_s}s"
        with server.client() as api:
            stored = read_everything(api, "kl")
    finally:
        server.stop()
    counts = Counter(v for _, _, v in stored)
    where = {v: (p, o) for p, o, v in stored}
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    lost = sum(1 for v in produced.acked if v not in counts)
    moved = sum(1 for v, at in produced.acked.items() if v in where and where[v] != at)
    figures = {
        "cycles": done,
        "requests": produced.requests,
        "retried_requests": produced.retried,
        "acknowledged_records": len(produced.acked),
        "stored_records": len(stored),
        "lost": lost,
        "duplicated": duplicated,
        "reply_offsets_wrong": moved,
    }
    print("kill loop:", figures)
    assert (lost, duplicated, moved) == (0, 0, 0), figures
    return figures


def test_kill_loop_a_few_cycles(tmp_path: Path) -> None:
    figures = kill_loop(tmp_path, cycles=3, clients=4, budget_s=120)
    assert figures["acknowledged_records"] > 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_loop_200_cycles(tmp_path: Path) -> None:
    figures = kill_loop(tmp_path, cycles=200, clients=8, budget_s=1500)
    assert figures["retried_requests"] > 0
