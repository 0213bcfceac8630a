"""The locust kit, run for a few seconds: against a deployment given by `--host`, and
as `make loadtest` runs it (an embedded server); each run's CSV shows requests of
every user made and none failed, and set-up's tenants and topics are gone after."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import REPO, GatewayProcess

SMOKE = ["--seconds", "4", "--users", "7", "--spawn-rate", "7"]
FAST = ["--", "--tidegate-wait-ms", "500", "--tidegate-tenants", "2", "--tidegate-partitions", "2"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(tmp_path_factory.mktemp("locust") / "data").start()
    try:
        yield gateway
    finally:
        gateway.stop()


def run(out: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    if key is not None:
        env["TIDEGATE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "loadtests.run_locust", *SMOKE, "--out", str(out), *args, *FAST],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def stats(out: Path) -> dict[str, dict[str, str]]:
    with (out / "locust_stats.csv").open() as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def assert_healthy(out: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = stats(out)
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    names = set(rows)
    assert any(n.startswith("produce batch") for n in names), names
    assert "fetch long-poll" in names
    assert {"group join", "group fetch", "group commit", "group leave"} <= names, names
    assert "connect" in names  # the WebSocket and SSE subscribers (types WS, SSE)
    assert (out / "locust.html").stat().st_size > 0


def test_pointed_at_a_deployment_it_loads_it_and_cleans_up(
    server: GatewayProcess, tmp_path: Path
) -> None:
    done = run(tmp_path, "--host", server.url, key=server.bootstrap_key)
    assert_healthy(tmp_path, done)
    with server.client() as api:
        tenants = [t["name"] for t in api.get("/v1/admin/tenants").json()["tenants"]]
        assert [t for t in tenants if t.startswith("lt")] == []
        assert api.get("/v1/topics").json()["topics"] == []


def test_make_loadtest_runs_it_against_an_embedded_server(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert_healthy(tmp_path, done)
    assert "embedded server at http://127.0.0.1:" in done.stdout
    rows = stats(tmp_path)
    for name in (
        "record latency (long-poll)",
        "record latency (websocket)",
        "record latency (group)",
    ):
        assert name in rows, f"no {name}: {sorted(rows)}"
    assert httpx.URL(done.stdout.split("embedded server at ")[1].split()[0]).port
