"""Start and stop of real processes: one server per data directory, the port bound
before anything is created, and a drain that answers every request it accepted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import REPO, GatewayProcess, free_port


def serve_once(
    data_dir: Path, port: int, timeout_s: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """`tidegate serve` expected to refuse to start: its exit status and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env["TIDEGATE_LOG_LEVEL"] = "warning"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_a_second_server_on_a_live_directory_is_refused_and_a_crash_is_still_recovered(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = GatewayProcess(data).start()
    assert first.proc is not None
    pid = first.proc.pid
    try:
        with first.client() as api:
            assert api.post("/v1/topics", json={"name": "t", "partitions": 1}).status_code == 201
            produced = api.post("/v1/topics/t/records", json={"records": [{"value": 1}]})
            assert produced.status_code == 200
        second = serve_once(data, free_port())
        assert second.returncode == 3
        assert second.stderr.splitlines() == [
            f"tidegate: cannot start: data directory {data} is in use by process {pid}"
        ], second.stderr
        assert "Operator key" not in second.stdout
        # The first is unaffected, and nothing claims that it shut down cleanly.
        assert not (data / "clean-shutdown").exists()
        with first.client() as api:
            again = api.post("/v1/topics/t/records", json={"records": [{"value": 2}]})
            assert again.status_code == 200, again.text
    finally:
        first.proc.kill()  # a crash: no clean shutdown
        first.proc.wait()
        first.proc = None
    assert not (data / "clean-shutdown").exists()
    # A torn write at the end of the log, as a crash mid-append leaves it: only a
    # recovery scan cuts it (a start trusting a clean-shutdown marker would not look).
    segment = max(data.rglob("*.log"), key=lambda p: p.stat().st_mtime_ns)
    with segment.open("ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x2a\x00")
    restarted = GatewayProcess(data).start()
    try:
        assert "torn tail" in restarted.output(), restarted.output()
        with restarted.client() as api:
            records = api.get("/v1/topics/t/partitions/0/records").json()["records"]
            assert [r["value"] for r in records] == [1, 2]
            more = api.post("/v1/topics/t/records", json={"records": [{"value": 3}]})
            assert more.json()["offsets"] == [{"partition": 0, "offset": 2}]
    finally:
        assert restarted.stop() == 0


def test_a_taken_port_is_refused_before_the_first_start_creates_anything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = serve_once(data, port)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"tidegate: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert "Operator key" not in result.stdout
    assert result.stdout == ""  # neither "ready for its first use" nor "serving"
    assert not data.exists()  # no tenant, no key, no secret: the next start is a first start
    server = GatewayProcess(data, port=port, bootstrap_key=None).start()
    try:
        assert "Operator key: tg_" in server.output()
    finally:
        server.stop()


PRODUCERS = 8
LONG_POLLS = 200


async def _drain_under_load(server: GatewayProcess) -> tuple[Counter[str], list[str], int]:
    """Long-polls parked and producers running when SIGTERM arrives; every outcome."""
    assert server.proc is not None
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    stop_at = time.monotonic() + 30  # every loop here is bounded
    limits = httpx.Limits(max_connections=LONG_POLLS + 10, max_keepalive_connections=LONG_POLLS)

    def record(kind: str) -> None:
        outcomes[kind] += 1

    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=30.0, limits=limits
    ) as polls:

        async def long_poll(n: int) -> None:
            try:
                r = await polls.get(
                    f"/v1/topics/quiet/partitions/{n % 4}/records",
                    params={"offset": "latest", "max_wait_ms": 25_000},
                )
            except httpx.TransportError as exc:
                record(f"poll {type(exc).__name__}")
                return
            record(f"poll {r.status_code}")
            if r.status_code == 200 and r.json()["records"] != []:
                problems.append(f"a long-poll on a quiet topic got records: {r.text}")

        async def produce(n: int) -> None:
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.headers, timeout=30.0
            ) as client:
                i = 0
                while time.monotonic() < stop_at:
                    i += 1
                    try:
                        r = await client.post(
                            "/v1/topics/drain/records",
                            json={"records": [{"key": f"p{n}-{i}", "value": i}]},
                        )
                    except httpx.ConnectError:
                        record("produce refused")  # nothing was sent: the server is gone
                        return
                    except httpx.TransportError as exc:
                        record(f"produce {type(exc).__name__}")
                        return
                    record(f"produce {r.status_code}")
                    if r.status_code == 503:
                        if r.headers.get("connection") != "close" or "retry-after" not in r.headers:
                            problems.append(f"503 without Connection/Retry-After: {r.headers}")
                        if r.headers["content-type"] != "application/problem+json":
                            problems.append(f"503 not problem+json: {r.text}")
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                    elif r.status_code != 200:
                        problems.append(f"produce answered {r.status_code}: {r.text}")

        poll_tasks = [asyncio.create_task(long_poll(n)) for n in range(LONG_POLLS)]
        async with httpx.AsyncClient(base_url=server.url) as probe:
            while (
                f"tidegate_longpoll_waiters {LONG_POLLS}" not in (await probe.get("/metrics")).text
            ):
                assert time.monotonic() < stop_at, "the long-polls never parked"
                await asyncio.sleep(0.05)
        producers = [asyncio.create_task(produce(n)) for n in range(PRODUCERS)]
        while outcomes["produce 200"] < 50:
            assert time.monotonic() < stop_at
            await asyncio.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*poll_tasks, *producers), timeout=25)
    code = await asyncio.to_thread(server.proc.wait, 15)
    return outcomes, problems, code


@pytest.mark.parametrize("run", range(2))
def test_sigterm_answers_every_accepted_request_and_exits_0(tmp_path: Path, run: int) -> None:
    data = tmp_path / "data"
    server = GatewayProcess(data).start()
    with server.client() as api:
        for name in ("drain", "quiet"):  # produced to, and parked on with nothing coming
            assert api.post("/v1/topics", json={"name": name, "partitions": 4}).status_code == 201
    signalled = time.monotonic()
    outcomes, problems, code = asyncio.run(_drain_under_load(server))
    elapsed = time.monotonic() - signalled
    server.proc = None
    assert problems == []
    assert code == 0, server.output()
    assert outcomes["poll 200"] == LONG_POLLS, outcomes
    answered = {"produce 200", "produce 503", "produce refused"}
    assert set(k for k in outcomes if k.startswith("produce")) <= answered, outcomes
    assert outcomes["produce refused"] == PRODUCERS  # each producer ran until the server was gone
    assert elapsed < 30
    # Every acknowledged record is there after a restart, and the shutdown was clean.
    assert (data / "clean-shutdown").exists()
    server = GatewayProcess(data).start()
    try:
        with server.client() as api:
            partitions = api.get("/v1/topics/drain").json()["partitions"]
        assert sum(p["end_offset"] for p in partitions) == outcomes["produce 200"]
    finally:
        server.stop()


def _read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    sock.settimeout(10)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def test_requests_in_transit_at_sigterm_are_answered_not_cut_off(tmp_path: Path) -> None:
    """A head half sent, a connection opened but not yet used, and a kept-alive one
    that sends its next request: all three finish sending just after SIGTERM, and
    each gets an answer (uvicorn alone closes them as idle at once)."""
    server = GatewayProcess(tmp_path / "data").start()
    assert server.proc is not None
    with server.client() as api:
        assert api.post("/v1/topics", json={"name": "t", "partitions": 1}).status_code == 201
    body = b'{"records": [{"value": 1}]}'
    head = (
        f"POST /v1/topics/t/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.bootstrap_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    address = ("127.0.0.1", server.port)
    half_sent = socket.create_connection(address)
    unused = socket.create_connection(address)
    kept_alive = socket.create_connection(address)
    try:
        kept_alive.sendall(request)
        first = kept_alive.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        half_sent.sendall(head[:40])
        time.sleep(0.2)  # the server has read what was sent
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # later than uvicorn's own shutdown closes idle connections
        half_sent.sendall(head[40:] + body)
        unused.sendall(request)
        kept_alive.sendall(request)
        replies = {
            "half sent": _read_reply(half_sent),
            "unused": _read_reply(unused),
            "kept alive": _read_reply(kept_alive),
        }
    finally:
        for sock in (half_sent, unused, kept_alive):
            sock.close()
    for name, reply in replies.items():
        assert reply.startswith(b"HTTP/1.1 503"), (name, reply)
        lowered = reply.lower()
        assert b"connection: close" in lowered, (name, reply)
        assert b"retry-after: 1" in lowered, (name, reply)
        assert b"shutting-down" in reply, (name, reply)
    assert server.proc.wait(15) == 0
    server.proc = None
