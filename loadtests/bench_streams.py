"""Live-stream benchmark: WebSocket fan-out of Tidegate next to Nchan, and idle subscribers.

Run: `make bench-streams` (`python -m loadtests.bench_streams`; `--quick` for a
short trial). Not a test: it prints figures and the issue's aims with PASS or
MISS, and exits 0 whatever they are; it exits non-zero when a phase goes wrong
(a server that does not start, subscribers that never subscribe).

Fan-out: S WebSocket subscribers (100, then 1,000) follow one topic while the
harness produces records at a fixed rate (one record a request, `--rate` a
second, each value carrying its send time). The same harness, with the same
subscriber processes and the same messages, then does the same against Nchan
(Debian's nginx with libnginx-mod-nchan, one worker): publishes by HTTP POST to
its publisher location, subscribers on its WebSocket subscriber location. Per
side: deliveries/s (records received by all subscribers), end-to-end latency
p50/p99 (receive time minus the value's send time, on one clock), and the
server's CPU µs per delivery: the CPU time of the server process (every thread;
for Nchan its master and worker) over the run divided by deliveries, so the
load generator's own speed does not enter the figure.

Idle: `--idle` (10,000) subscribers open and subscribed, nothing produced; the
server's RSS per connection (its growth over the baseline divided by the
subscribers), with the connection cap (TIDEGATE_MAX_CONNECTIONS) raised to
hold them and each process's RLIMIT_NOFILE raised to its hard limit.

Subscribers run in `--workers` processes (asyncio, the `websockets` client),
beside the server on the same machine: on a small machine they compete for
the same cores, which the latency figures include and the CPU-per-delivery
figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtests.bench_gateway import Server, _env, bench_key, free_port

NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOPIC = "fanout"

NCHAN_CONF = """
worker_processes 1;
worker_rlimit_nofile 30000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
load_module {module};
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location ~ /pub/(\\w+)$ {{ nchan_publisher; nchan_channel_id $1; }}
    location ~ /sub/(\\w+)$ {{ nchan_subscriber websocket; nchan_channel_id $1; }}
  }}
}}
"""


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes (every thread), from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- subscribers (in worker processes) ----------------------------------------------


def _values(kind: str, text: str | bytes) -> list[int]:
    """The send times (ns) a message carries."""
    document = orjson.loads(text)
    if kind == "nchan":
        return [document["t"]]
    if document.get("type") != "records":
        return []
    return [r["value"]["t"] for r in document["records"]]


async def _subscriber(
    kind: str,
    url: str,
    headers: dict[str, str],
    want: int,
    ready: list[int],
    latencies: array[float],
    counts: list[int],
) -> None:
    """One WebSocket subscriber: subscribe, then take `want` records (0: until cancelled)."""
    from websockets.asyncio.client import connect

    async with connect(
        url, additional_headers=headers, compression=None, max_size=None, open_timeout=60
    ) as ws:
        if kind == "tidegate":
            await ws.recv()  # subscribed
        ready[0] += 1
        got = 0
        async for message in ws:
            now = time.time_ns()
            sent_times = _values(kind, message)
            for sent in sent_times:
                latencies.append((now - sent) / 1e6)
            got += len(sent_times)
            counts[0] += len(sent_times)
            if want and got >= want:
                return


def worker(
    kind: str,
    url: str,
    headers: dict[str, str],
    connections: int,
    want: int,
    pipe: Connection,
    hold_s: float,
) -> None:
    """One subscriber process: open `connections`, report ready, receive `want` records
    each (0: stay idle until told to stop), report counts and latencies."""
    raise_nofile()

    async def run() -> None:
        ready = [0]
        counts = [0]
        latencies: array[float] = array("d")
        tasks = []
        for i in range(connections):
            subscriber = _subscriber(kind, url, headers, want, ready, latencies, counts)
            tasks.append(asyncio.ensure_future(subscriber))
            if i % 50 == 49:
                # Paced (about 500 handshakes a second a worker) and never far ahead of
                # the handshakes done, so none waits past the server's head deadline.
                await asyncio.sleep(0.1)
                for _ in range(200):  # at most 10 s
                    if i + 1 - ready[0] <= 200 or any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.05)
        deadline = time.monotonic() + 120
        while ready[0] < connections and time.monotonic() < deadline:
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                pipe.send(("error", repr(failed[0].exception())))
                return
            await asyncio.sleep(0.05)
        pipe.send(("ready", ready[0]))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # "stop": the run is over
        await asyncio.wait(tasks, timeout=hold_s)  # the last records still on their way
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pipe.send(("done", counts[0], latencies.tobytes()))

    asyncio.run(run())


@dataclass
class Run:
    deliveries: int
    seconds: float
    cpu_s: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s * 1e6 / max(1, self.deliveries)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def subscribers(
    kind: str, url: str, headers: dict[str, str], total: int, want: int, workers: int, hold_s: float
) -> Iterator[list[tuple[multiprocessing.process.BaseProcess, Connection]]]:
    ctx = multiprocessing.get_context("spawn")
    procs: list[tuple[Any, Connection]] = []
    share = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    for n in share:
        if not n:
            continue
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker, args=(kind, url, headers, n, want, theirs, hold_s), daemon=True
        )
        proc.start()
        procs.append((proc, mine))
    try:
        for _proc, pipe in procs:
            if not pipe.poll(150):
                raise RuntimeError(f"{kind}: subscribers did not open in time")
            message = pipe.recv()
            if message[0] != "ready":
                raise RuntimeError(f"{kind}: a subscriber failed: {message[1]}")
        yield procs
    finally:
        for proc, _pipe in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def collect(procs: list[tuple[Any, Connection]], timeout_s: float) -> tuple[int, list[float]]:
    total = 0
    latencies: list[float] = []
    for _proc, pipe in procs:
        pipe.send("stop")
    for _proc, pipe in procs:
        if not pipe.poll(timeout_s):
            raise RuntimeError("subscribers did not report")
        _kind, count, raw = pipe.recv()
        total += count
        values = array("d")
        values.frombytes(raw)
        latencies += values.tolist()
    return total, latencies


def fanout(
    kind: str,
    server_pids: list[int],
    sub_url: str,
    headers: dict[str, str],
    publish: Any,
    subscribers_n: int,
    rate: float,
    seconds: float,
    workers: int,
) -> Run:
    want = int(rate * seconds)
    with subscribers(kind, sub_url, headers, subscribers_n, want, workers, hold_s=15) as procs:
        began_cpu = cpu_s(server_pids)
        began = time.monotonic()
        interval = 1 / rate
        for i in range(want):
            target = began + i * interval
            pause = target - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            publish(orjson.dumps({"t": time.time_ns()}))
        delivered, latencies = collect(procs, timeout_s=60)
        elapsed = time.monotonic() - began
        used = cpu_s(server_pids) - began_cpu
    return Run(delivered, elapsed, used, percentile(latencies, 0.5), percentile(latencies, 0.99))


def tidegate_server(data: Path, logs: Path, connections: int) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
    ]
    env = _env() | {"TIDEGATE_MAX_CONNECTIONS": str(connections + 500)}
    return Server("gateway", argv, port, env, logs / "gateway.log", ready_path="/readyz")


def nchan_server(directory: Path) -> Server:
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NCHAN_CONF.format(dir=directory, module=NCHAN_MODULE, port=port))
    argv = [NGINX, "-c", str(conf), "-p", str(directory), "-g", "daemon off; master_process on;"]
    return Server("nchan", argv, port, dict(os.environ), directory / "nginx.out")


def print_run(kind: str, subs: int, run: Run) -> None:
    print(
        f"{kind:<9} {subs:>6} subs  {run.per_s:>10,.0f} deliveries/s  "
        f"p50 {run.p50_ms:>7.1f} ms  p99 {run.p99_ms:>7.1f} ms  "
        f"server CPU {run.cpu_us:>6.2f} µs/delivery ({run.deliveries:,} delivered)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="100,1000")
    parser.add_argument("--rate", type=float, default=100.0, help="records produced a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.idle, args.subscribers = 3.0, 1000, "100"
    counts = [int(n) for n in args.subscribers.split(",")]
    raise_nofile()
    have_nchan = NCHAN_MODULE.exists() and Path(NGINX).exists()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} at start")
    results: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        root = Path(tmp)
        gateway = tidegate_server(root / "data", root, max(max(counts), args.idle))
        nchan = None
        try:
            key = bench_key(gateway.url)
            headers = {"Authorization": f"Bearer {key}"}
            http = httpx.Client(base_url=gateway.url, headers=headers, timeout=30)
            reply = http.post("/v1/topics", json={"name": TOPIC, "config": {"durability": "fsync"}})
            if reply.status_code != 201:
                raise RuntimeError(reply.text)

            def produce(value: bytes) -> None:
                body = b'{"records":[{"value":%b}]}' % value
                sent = http.post(
                    f"/v1/topics/{TOPIC}/records",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if sent.status_code != 200:
                    raise RuntimeError(sent.text)

            ws_url = f"ws://127.0.0.1:{gateway.port}/v1/topics/{TOPIC}/stream"
            if have_nchan:
                (root / "nchan").mkdir()
                nchan = nchan_server(root / "nchan")
                nchan_http = httpx.Client(base_url=nchan.url, timeout=30)

                def publish(value: bytes) -> None:
                    sent = nchan_http.post(f"/pub/{TOPIC}", content=value)
                    if sent.status_code not in (200, 201, 202):
                        raise RuntimeError(sent.text)

                nchan_pids = [nchan.pid, *children(nchan.pid)]
            else:
                print("nchan: not installed (nginx + libnginx-mod-nchan); Tidegate alone")
            for subs in counts:
                run = fanout(
                    "tidegate",
                    [gateway.pid],
                    ws_url,
                    headers,
                    produce,
                    subs,
                    args.rate,
                    args.seconds,
                    args.workers,
                )
                results[("tidegate", subs)] = run
                print_run("tidegate", subs, run)
                if nchan is not None:
                    url = f"ws://127.0.0.1:{nchan.port}/sub/{TOPIC}"
                    run = fanout(
                        "nchan",
                        nchan_pids,
                        url,
                        {},
                        publish,
                        subs,
                        args.rate,
                        args.seconds,
                        args.workers,
                    )
                    results[("nchan", subs)] = run
                    print_run("nchan", subs, run)
            # Idle subscribers: RSS per connection.
            before = rss_kb([gateway.pid])
            with subscribers(
                "tidegate", ws_url, headers, args.idle, 0, args.workers, hold_s=1
            ) as procs:
                time.sleep(2)
                after = rss_kb([gateway.pid])
                collect(procs, timeout_s=60)
            per = (after - before) / args.idle
            print(
                f"tidegate  {args.idle:>6} idle subscribers: RSS {before / 1024:.0f} MB -> "
                f"{after / 1024:.0f} MB, {per:.1f} KB per connection",
                flush=True,
            )
            if nchan is not None:
                before_n = rss_kb(nchan_pids)
                with subscribers(
                    "nchan",
                    f"ws://127.0.0.1:{nchan.port}/sub/idle",
                    {},
                    args.idle,
                    0,
                    args.workers,
                    hold_s=1,
                ) as procs:
                    time.sleep(2)
                    after_n = rss_kb(nchan_pids)
                    collect(procs, timeout_s=60)
                print(
                    f"nchan     {args.idle:>6} idle subscribers: "
                    f"{(after_n - before_n) / args.idle:.1f} KB per connection",
                    flush=True,
                )
        finally:
            if nchan is not None:
                nchan.proc.send_signal(signal.SIGQUIT)
                nchan.stop()
            gateway.stop()
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} at the end")
    print("\naims:")
    for subs in counts:
        t = results.get(("tidegate", subs))
        n = results.get(("nchan", subs))
        if t is not None and n is not None:
            ratio = t.cpu_us / n.cpu_us
            print(
                f"  {subs} subs: CPU per delivery {ratio:.2f}x Nchan's (aim <= 2x): "
                f"{'PASS' if ratio <= 2 else 'MISS'}"
            )
    t = results.get(("tidegate", 1000))
    if t is not None and args.rate == 100:
        print(
            f"  1000 subs x 100 records/s: p99 {t.p99_ms:.1f} ms (aim < 50 ms): "
            f"{'PASS' if t.p99_ms < 50 else 'MISS'}"
        )
    print(f"  idle: {per:.1f} KB per connection (aim < 20 KB): {'PASS' if per < 20 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
