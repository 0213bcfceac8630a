"""Gateway benchmark: Tidegate against a bare Starlette endpoint, same stack, same client.

Run: `python -m loadtests.bench_gateway` (not a test; about a minute). Starts
a real `tidegate serve` process (fsync durability, fresh data directory) and a
bare uvicorn/Starlette process (`loadtests.bare_app`, same uvicorn settings:
uvloop, httptools, no access log), drives both over loopback with a small
HTTP/1.1 keep-alive client on raw asyncio streams, and prints requests/s,
records/s, MB/s, p50/p99 latency, the ratio to the bare endpoint, and the
gateway's CPU time per record (from /proc/<pid>/stat). Every phase is bounded
in time (`--seconds`, 5 s by default, for each side).

Each phase alternates between the gateway and the bare endpoint in
`--rounds` slices (gateway, bare, bare, gateway, ...), so that the drift of a
shared machine, which moves the bare endpoint's own rate by a third from one
minute to the next, falls on both sides of the ratio alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from loadtests.bare_app import fetch_body

KEY = "tg_bench_bootstrap_key_0123456789abcdef"
REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    def __init__(self, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{argv} did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Connection:
    """One HTTP/1.1 keep-alive connection on raw asyncio streams (the cheapest client)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        self.writer.close()


def request_head(method: str, path: str, port: int, body: bytes, content_type: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {KEY}",
    ]
    if method != "GET":
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Result:
    requests: int
    records: int
    bytes: int
    seconds: float
    latencies: list[float]
    cpu_s: float

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def merged(cls, parts: list[Result]) -> Result:
        return cls(
            sum(p.requests for p in parts),
            sum(p.records for p in parts),
            sum(p.bytes for p in parts),
            sum(p.seconds for p in parts),
            [latency for p in parts for latency in p.latencies],
            sum(p.cpu_s for p in parts),
        )


async def drive(
    port: int,
    pid: int,
    connections: int,
    seconds: float,
    make: Callable[[], tuple[bytes, bytes]],
    records_per_request: int,
) -> Result:
    """`connections` closed loops, each sending `make()` requests back to back."""
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    counts = {"requests": 0, "bytes": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()

    async def loop(conn: Connection) -> None:
        while time.monotonic() < deadline:
            head, body = make()
            t0 = time.perf_counter()
            status, payload = await conn.request(head, body)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                counts["errors"] += 1
                if counts["errors"] == 1:
                    print("  error:", status, payload[:200], file=sys.stderr)
            counts["requests"] += 1
            counts["bytes"] += len(body) + len(payload)

    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu_before
    for c in conns:
        c.close()
    n = counts["requests"]
    return Result(n, n * records_per_request, counts["bytes"], elapsed, latencies, cpu)


async def compare(
    gateway: tuple[int, int],
    bare: tuple[int, int],
    connections: int,
    seconds: float,
    rounds: int,
    make: Callable[[int], Callable[[], tuple[bytes, bytes]]],
    records_per_request: int,
) -> tuple[Result, Result]:
    """The gateway and the bare endpoint (each a (port, pid)), `seconds` each, in
    alternating slices: ABBA order, so neither side always runs first."""
    sides = {gateway: make(gateway[0]), bare: make(bare[0])}
    parts: dict[tuple[int, int], list[Result]] = {gateway: [], bare: []}
    for i in range(rounds):
        for side in (gateway, bare) if i % 2 == 0 else (bare, gateway):
            port, pid = side
            parts[side].append(
                await drive(
                    port, pid, connections, seconds / rounds, sides[side], records_per_request
                )
            )
    return Result.merged(parts[gateway]), Result.merged(parts[bare])


def batch_body(records: int, value_bytes: int = 100) -> bytes:
    value = {"payload": "x" * (value_bytes - 15)}  # ~100 bytes of compact JSON
    return orjson.dumps({"records": [{"value": value} for _ in range(records)]})


def report(name: str, gw: Result, bare: Result | None) -> None:
    line = (
        f"{name:<34} {gw.rps:>9.0f} req/s {gw.records / gw.seconds:>10.0f} rec/s "
        f"{gw.bytes / gw.seconds / 1e6:>7.1f} MB/s  p50 {gw.pct(0.5):6.2f} ms  "
        f"p99 {gw.pct(0.99):6.2f} ms"
    )
    if gw.records:
        line += f"  cpu {gw.cpu_s / gw.records * 1e6:7.1f} us/rec"
    if gw.requests:
        line += f" {gw.cpu_s / gw.requests * 1e6:7.1f} us/req"
    print(line)
    if bare is not None:
        print(
            f"{'  bare endpoint':<34} {bare.rps:>9.0f} req/s "
            f"{'':>16}{'':>13} p50 {bare.pct(0.5):6.2f} ms  p99 {bare.pct(0.99):6.2f} ms"
            f"   gateway/bare = {gw.rps / bare.rps:.2f}"
            f"  (bare cpu {bare.cpu_s / max(1, bare.requests) * 1e6:.1f} us/req)"
        )


async def longpoll_latency(port: int, seconds: float, rate: float) -> list[float]:
    """Produce single records at `rate`/s; a long-polling consumer timestamps their arrival."""
    producer = await Connection.open(port)
    consumer = await Connection.open(port)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        offset = 0
        while not done.is_set():
            path = f"/v1/topics/bench-lp/partitions/0/records?offset={offset}&max_wait_ms=1000"
            _, payload = await consumer.request(request_head("GET", path, port, b"", ""))
            now = time.perf_counter()
            reply = orjson.loads(payload)
            for record in reply["records"]:
                seq = record["value"]
                if seq in sent:
                    latencies.append(now - sent.pop(seq))
            offset = reply["next_offset"]

    async def produce() -> None:
        interval = 1 / rate
        next_at = time.perf_counter()
        seq = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body = orjson.dumps({"records": [{"value": seq}]})
            head = request_head(
                "POST", "/v1/topics/bench-lp/records", port, body, "application/json"
            )
            sent[seq] = time.perf_counter()
            await producer.request(head, body)
            seq += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(0.5)
        done.set()

    consumer_task = asyncio.create_task(consume())
    await produce()
    await asyncio.wait_for(consumer_task, 5)
    producer.close()
    consumer.close()
    return latencies


def setup(port: int) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}
    ) as api:
        for name in ("bench", "bench-lp", "bench-fetch"):
            r = api.post("/v1/topics", json={"name": name, "partitions": 1})
            assert r.status_code == 201, r.text
        body = batch_body(100)
        for _ in range(20):
            r = api.post(
                "/v1/topics/bench-fetch/records",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code == 200, r.text
        sample = api.get("/v1/topics/bench-fetch/partitions/0/records?offset=0&max_records=100")
        bare = fetch_body()
        print(f"fetch reply: gateway {len(sample.content)} bytes, bare {len(bare)} bytes")


async def run(seconds: float, rounds: int, only: str | None = None) -> None:
    gw_port, bare_port = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="tidegate-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env |= {"TIDEGATE_BOOTSTRAP_KEY": KEY, "TIDEGATE_LOG_LEVEL": "warning"}
    gateway = Server(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(gw_port), "--data-dir", data],
        gw_port,
        env,
    )
    bare = Server(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "loadtests.bare_app:app",
            "--port",
            str(bare_port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-server-header",
        ],
        bare_port,
        env,
    )
    try:
        setup(gw_port)
        gpid, bpid = gateway.proc.pid, bare.proc.pid
        print(
            f"cores: {os.cpu_count()}, {seconds:.0f} s a phase and side in {rounds} "
            "alternating slices, durability fsync\n"
        )

        batch = batch_body(100)
        single = batch_body(1)

        def producer(port: int, body: bytes) -> Callable[[], tuple[bytes, bytes]]:
            head = request_head("POST", "/v1/topics/bench/records", port, body, "application/json")
            return lambda: (head, body)

        def fetcher(port: int) -> Callable[[], tuple[bytes, bytes]]:
            heads = [
                request_head(
                    "GET",
                    f"/v1/topics/bench-fetch/partitions/0/records?offset={o}&max_records=100",
                    port,
                    b"",
                    "",
                )
                for o in range(0, 1901, 100)
            ]
            return lambda: (random.choice(heads), b"")

        phases: list[tuple[str, int, Callable[[int], Callable[[], tuple[bytes, bytes]]], int]] = [
            ("produce 100x100B batch, 16 conns", 16, lambda p: producer(p, batch), 100),
            ("produce 100x100B batch, 64 conns", 64, lambda p: producer(p, batch), 100),
            ("produce single record, 16 conns", 16, lambda p: producer(p, single), 1),
            ("fetch 100 records, 16 conns", 16, fetcher, 100),
        ]
        for name, conns, make, per in phases:
            if only is not None and only not in name:
                continue
            gw, bare_result = await compare(
                (gw_port, gpid), (bare_port, bpid), conns, seconds, rounds, make, per
            )
            report(name, gw, bare_result)

        if only is not None and only not in "produce -> long-poll":
            return
        latencies = await longpoll_latency(gw_port, seconds, 1000.0)
        ordered = sorted(latencies)
        if ordered:
            p50 = ordered[len(ordered) // 2] * 1000
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
            print(
                f"{'produce -> long-poll at ~1k rec/s':<34} {len(ordered) / seconds:>9.0f} rec/s"
                f"  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (latency from send to receipt)"
            )
    finally:
        gateway.stop()
        bare.stop()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each phase, for each side"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="alternating slices a phase is cut into"
    )
    parser.add_argument(
        "--only", help="run only the phases whose name contains this (e.g. 'fetch')"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args.seconds, max(1, args.rounds), args.only))


if __name__ == "__main__":
    main()
