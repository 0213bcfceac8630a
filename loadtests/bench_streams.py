"""Live-stream benchmark: WebSocket fan-out of Tidegate next to Nchan, and idle subscribers.

Run: `make bench-streams` (`python -m loadtests.bench_streams`; `--quick` for a
short trial, `--no-nchan` for Tidegate alone). Not a test: it prints figures
and the issue's aims with PASS or MISS, and exits 0 whatever they are; it
exits non-zero when a phase goes wrong (a server that does not start,
subscribers that never subscribe).

Fan-out: S WebSocket subscribers (100, then 1,000) follow one topic while the
harness produces records at a fixed rate (one record a request, `--rate` a
second, each value carrying its send time; open loop: each request leaves at
its time whatever the replies to earlier ones, up to `IN_FLIGHT` under way,
and the run prints the rate it reached). The same harness, with the same
subscriber code and the same messages, then does the same against Nchan
(Debian's nginx with libnginx-mod-nchan, one worker): publishes by HTTP POST to
its publisher location, subscribers on its WebSocket subscriber location, a
new channel each run (Nchan hands a new subscriber the channel's last
messages). Per side: deliveries/s (records received by all subscribers),
end-to-end latency p50/p99 (receive time minus the value's send time, on one
clock, taken by every `--sample`-th subscriber for each of its records), and
the server's CPU µs per delivery: the CPU time of the server process (every
thread; for Nchan its master and worker) over the run divided by deliveries,
so the load generator's own speed does not enter the figure. The subscriber
processes' own CPU per delivery is printed beside it.

Idle: `--idle` (10,000) subscribers open and subscribed, nothing produced; the
server's RSS per connection (its growth over the baseline divided by the
subscribers), with the connection cap (TIDEGATE_MAX_CONNECTIONS) raised to
hold them and each process's RLIMIT_NOFILE raised to its hard limit.

Subscribers are `loadtests.ws_subscribers` (asyncio protocols on uvloop, the
handshake and frame headers read by hand, records counted without decoding
JSON) in `--workers` processes (1), beside the server on the same machine: on
a small machine they compete for the same cores, which the latency figures
include and the CPU-per-delivery figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtests.bench_gateway import Server, _env, bench_key, free_port
from loadtests.ws_subscribers import Totals, new_event_loop, open_subscribers

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


def worker(
    kind: str,
    url: str,
    headers: dict[str, str],
    connections: int,
    want: int,
    pipe: Connection,
    hold_s: float,
    sample: int,
) -> None:
    """One subscriber process: open `connections` (loadtests.ws_subscribers), report
    ready, and once told to stop, wait up to `hold_s` for the last of the `want`
    records each is due (0: idle) and report the records counted and latencies."""
    raise_nofile()

    async def run() -> None:
        totals = Totals(want * connections)
        greeting = 1 if kind == "tidegate" else 0  # its `subscribed` frame
        try:
            opened = await open_subscribers(
                url, headers, connections, greeting=greeting, sample=sample, totals=totals
            )
        except Exception as exc:  # reported to the harness, which stops the run
            pipe.send(("error", repr(exc)))
            return
        pipe.send(("ready", totals.ready))
        began_cpu = time.process_time()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # "stop": the run is over
        if want:  # the last records may still be on their way
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(totals.complete.wait(), hold_s)
        for subscriber in opened:
            if subscriber.transport is not None:
                subscriber.transport.abort()
        used = time.process_time() - began_cpu
        pipe.send(("done", totals.records, totals.latencies_ms.tobytes(), used))

    loop = new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


@dataclass
class Run:
    deliveries: int
    seconds: float
    cpu_s: float
    p50_ms: float
    p99_ms: float
    produced: int  # records published
    publish_s: float  # how long publishing them took (the aim: records / rate)
    harness_cpu_s: float  # the subscriber processes' CPU time over the run

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s * 1e6 / max(1, self.deliveries)

    @property
    def produce_rate(self) -> float:
        return self.produced / self.publish_s

    @property
    def harness_cpu_us(self) -> float:
        return self.harness_cpu_s * 1e6 / max(1, self.deliveries)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def subscribers(
    kind: str,
    url: str,
    headers: dict[str, str],
    total: int,
    want: int,
    workers: int,
    hold_s: float,
    sample: int = 1,
) -> Iterator[list[tuple[multiprocessing.process.BaseProcess, Connection]]]:
    ctx = multiprocessing.get_context("spawn")
    procs: list[tuple[Any, Connection]] = []
    share = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    for n in share:
        if not n:
            continue
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker,
            args=(kind, url, headers, n, want, theirs, hold_s, sample),
            daemon=True,
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


def collect(
    procs: list[tuple[Any, Connection]], timeout_s: float
) -> tuple[int, list[float], float]:
    """Records counted, latencies, and the subscriber processes' CPU seconds since ready."""
    total, used = 0, 0.0
    latencies: list[float] = []
    for _proc, pipe in procs:
        pipe.send("stop")
    for _proc, pipe in procs:
        if not pipe.poll(timeout_s):
            raise RuntimeError("subscribers did not report")
        _kind, count, raw, cpu = pipe.recv()
        total += count
        used += cpu
        values = array("d")
        values.frombytes(raw)
        latencies += values.tolist()
    return total, latencies, used


def fanout(
    kind: str,
    server_pids: list[int],
    sub_url: str,
    headers: dict[str, str],
    publish: Publish,
    subscribers_n: int,
    rate: float,
    seconds: float,
    workers: int,
    sample: int,
) -> Run:
    """One fan-out run: subscribers open first, then `rate * seconds` records at a fixed
    rate (`publish_at`)."""
    want = int(rate * seconds)
    with subscribers(
        kind, sub_url, headers, subscribers_n, want, workers, hold_s=15, sample=sample
    ) as procs:
        began_cpu = cpu_s(server_pids)
        began = time.monotonic()
        asyncio.run(publish_at(publish, want, rate))
        published = time.monotonic() - began
        delivered, latencies, harness_used = collect(procs, timeout_s=60)
        elapsed = time.monotonic() - began
        used = cpu_s(server_pids) - began_cpu
    return Run(
        delivered,
        elapsed,
        used,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        want,
        published,
        harness_used,
    )


@dataclass(frozen=True)
class Publish:
    """Where and how a side takes one record: POST `path` on `base_url`, the value
    wrapped by `body`."""

    base_url: str
    path: str
    headers: dict[str, str]
    body: Callable[[bytes], bytes]


IN_FLIGHT = 32
"""Publish requests under way at once at most (a run that needs more says so)."""


async def publish_at(publish: Publish, count: int, rate: float) -> None:
    """`count` records at `rate` a second, each sent at its time whether or not the
    replies to earlier ones have come (open loop, up to `IN_FLIGHT` at once), each
    value `{"t": <send time in ns>}`."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(
        base_url=publish.base_url, headers=publish.headers, timeout=30, limits=limits
    ) as client:

        async def one() -> None:
            try:
                body = publish.body(orjson.dumps({"t": time.time_ns()}))
                sent = await client.post(publish.path, content=body)
            finally:
                gate.release()
            if sent.status_code not in (200, 201, 202):
                raise RuntimeError(sent.text)

        began = time.monotonic()
        tasks = []
        for i in range(count):
            pause = began + i / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            await gate.acquire()
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)


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
        f"server CPU {run.cpu_us:>6.2f} µs/delivery ({run.deliveries:,} delivered; "
        f"published at {run.produce_rate:.0f}/s, harness CPU {run.harness_cpu_us:.2f} µs/delivery)",
        flush=True,
    )


def idle_kb(
    kind: str, pids: list[int], url: str, headers: dict[str, str], idle: int, workers: int
) -> float:
    """Open `idle` subscribers and hold them: the server's RSS growth per connection."""
    before = rss_kb(pids)
    with subscribers(kind, url, headers, idle, 0, workers, hold_s=1) as procs:
        time.sleep(2)
        after = rss_kb(pids)
        collect(procs, timeout_s=60)
    per = (after - before) / idle
    print(
        f"{kind:<9} {idle:>6} idle subscribers: RSS {before / 1024:.0f} MB -> "
        f"{after / 1024:.0f} MB, {per:.1f} KB per connection",
        flush=True,
    )
    return per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="100,1000")
    parser.add_argument("--rate", type=float, default=100.0, help="records produced a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="subscriber processes")
    parser.add_argument(
        "--sample", type=int, default=10, help="every n-th subscriber times its records"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-nchan", action="store_true", help="Tidegate alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.idle, args.subscribers = 3.0, 1000, "100"
    counts = [int(n) for n in args.subscribers.split(",")]
    raise_nofile()
    have_nchan = not args.no_nchan and NCHAN_MODULE.exists() and Path(NGINX).exists()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} at start")
    results: dict[tuple[str, int], Run] = {}
    per = 0.0
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

            produce = Publish(
                gateway.url,
                f"/v1/topics/{TOPIC}/records",
                headers | {"Content-Type": "application/json"},
                lambda value: b'{"records":[{"value":%b}]}' % value,
            )

            ws_url = f"ws://127.0.0.1:{gateway.port}/v1/topics/{TOPIC}/stream"
            if have_nchan:
                (root / "nchan").mkdir()
                nchan = nchan_server(root / "nchan")

                def publisher(channel: str) -> Publish:
                    return Publish(nchan.url, f"/pub/{channel}", {}, lambda value: value)

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
                    args.sample,
                )
                results[("tidegate", subs)] = run
                print_run("tidegate", subs, run)
                if nchan is not None:
                    # A channel of its own: Nchan hands a new subscriber the channel's
                    # last messages, which would be an earlier run's.
                    channel = f"{TOPIC}{subs}"
                    url = f"ws://127.0.0.1:{nchan.port}/sub/{channel}"
                    run = fanout(
                        "nchan",
                        nchan_pids,
                        url,
                        {},
                        publisher(channel),
                        subs,
                        args.rate,
                        args.seconds,
                        args.workers,
                        args.sample,
                    )
                    results[("nchan", subs)] = run
                    print_run("nchan", subs, run)
            if args.idle:
                per = idle_kb("tidegate", [gateway.pid], ws_url, headers, args.idle, args.workers)
                if nchan is not None:
                    url = f"ws://127.0.0.1:{nchan.port}/sub/idle"
                    idle_kb("nchan", nchan_pids, url, {}, args.idle, args.workers)
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
    if args.idle:
        verdict = "PASS" if per < 20 else "MISS"
        print(f"  idle: {per:.1f} KB per connection (aim < 20 KB): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
