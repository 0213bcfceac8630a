"""Gateway benchmark: Tidegate against a bare Starlette endpoint, driven by wrk.

Run: `make bench` (`python -m loadtests.bench_gateway`; about 5 minutes, or
`--quick` for a short trial). Not a test: it prints figures and the issue's
aims with PASS or MISS, and exits 0 whatever they are; it exits non-zero, loudly,
when a phase goes wrong (wrk missing, any response of 400 and above, a
long-poll that never answers), because then it measured something else.

Two real processes on loopback: `tidegate serve` (its defaults, fsync
durability among them, on a fresh data directory; only the cap on open
connections is raised to hold the 2,000 parked long-polls) and the
yardstick `loadtests.bare_app` (a bare Starlette endpoint reading the same
body and answering a reply of the same size) under the same uvicorn settings (one worker, uvloop,
httptools, log level warning, no access log). Every request carries an API
key that the bench created through the admin API for a tenant of its own, so
authentication, quotas and usage counting take their real path.

Every HTTP throughput phase is driven by wrk (C, one thread by default:
`--threads`) with one Lua script per phase in `loadtests/wrk/`, and cut into
`--rounds` slices a side in ABBA order (bare, gateway, gateway, bare, ...),
so that the drift of a shared machine falls on both sides of the ratio
alike. Per phase it prints both sides' requests/s, their ratio and the aim,
the CPU time of each server process per request (from /proc/<pid>/stat,
every thread) and of wrk, and p50/p99 latency. The partition-count phase
compares the gateway with itself (each count against 8 partitions, slices in
ABBA order over the counts, one count past the fixed bound of 1,024 open
segment files of before) and prints the gateway's open file descriptors;
`--max-open-files` sets the gateway's bound (TIDEGATE_MAX_OPEN_FILES, else
derived from its descriptor limit), to measure a topic larger than it.
The two long-poll phases use a small Python client (`loadtests.longpoll`),
because what they measure is the time between two connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from loadtests import longpoll, wrk_runner
from loadtests.wrk_runner import Slice, Totals, WrkError

OPERATOR_KEY = "tg_bench_bootstrap_key_0123456789abcdef"
REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
FETCH_HELD = 2000  # records in the fetch topic: 20 distinct 100-record windows
FETCH_TOPIC = "b-fetch"
LONGPOLL_TOPIC = "b-longpoll"
FANOUT_TOPIC = "b-fanout"


@dataclass(frozen=True)
class Profile:
    """How long each part runs; `FULL` is `make bench`, `QUICK` a short trial."""

    slice_seconds: int  # one wrk run (whole seconds)
    rounds: int  # slices per side and phase, in ABBA order
    warmup_seconds: int  # an unmeasured wrk run per side before each phase (0: none)
    scaling_partitions: tuple[int, ...]
    scaling_rounds: int  # passes over the partition counts, alternating direction
    longpoll_seconds: float
    longpoll_rate: float
    waiters: int
    waiter_rounds: int
    threads: int = 1  # wrk threads
    max_open_files: int | None = None  # the gateway's TIDEGATE_MAX_OPEN_FILES (None: derived)


FULL = Profile(
    slice_seconds=4,
    rounds=4,
    warmup_seconds=1,
    scaling_partitions=(1, 8, 32, 256, 1024, 2048),
    scaling_rounds=2,
    longpoll_seconds=10.0,
    longpoll_rate=1000.0,
    waiters=2000,
    waiter_rounds=5,
)
QUICK = replace(
    FULL, slice_seconds=2, rounds=2, scaling_rounds=1, longpoll_seconds=3.0, waiter_rounds=2
)


@dataclass(frozen=True)
class Phase:
    """One wrk-driven comparison: a script, its arguments after the key, an aim."""

    name: str
    script: str
    connections: int
    topic: str
    partitions: int
    extra: tuple[str, ...] = ()
    aim: float | None = None  # gateway/bare at least this; None: reported only
    records: int = 100

    def args(self, key: str) -> list[str]:
        return [key, self.topic, *self.extra]


PHASES: tuple[Phase, ...] = (
    Phase("unkeyed 100 rec, 1 partition, 64 conns", "produce_unkeyed", 64, "b-unkeyed", 1,
          aim=0.6),
    Phase("keyed 100 rec, 8 partitions, 64 conns", "produce_keyed", 64, "b-keyed-8", 8,
          aim=0.5),
    Phase("keyed 100 rec, 32 partitions, 64 conns", "produce_keyed", 64, "b-keyed-32", 32,
          aim=0.5),
    Phase("keyed + 2 headers, 8 partitions, 64 conns", "produce_keyed", 64, "b-headers-8", 8,
          extra=("2",)),
    Phase("single record, 1 partition, 16 conns", "produce_single", 16, "b-single", 1,
          aim=0.4, records=1),
    Phase("fetch 100 rec, 16 conns", "fetch", 16, FETCH_TOPIC, 1, extra=(str(FETCH_HELD),),
          aim=0.5),
)  # fmt: skip


def scaling_topic(partitions: int) -> str:
    return f"b-scale-{partitions}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server process on loopback; its output goes to `log`, shown if it fails."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        env: dict[str, str],
        log: Path,
        ready_path: str | None = None,
    ):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited {self.proc.returncode}:\n{self.output()}")
            if self._ready(ready_path):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start:\n{self.output()}")

    def _ready(self, path: str | None) -> bool:
        """Accepting connections, and if `path` is given, answering it 200."""
        try:
            if path is None:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            return httpx.get(f"{self.url}{path}", timeout=1).status_code == 200
        except (OSError, httpx.HTTPError):
            return False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} died ({self.proc.returncode}):\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Servers:
    gateway: Server
    bare: Server
    key: str  # the bench tenant's API key, created through the admin API


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    return env | {"TIDEGATE_BOOTSTRAP_KEY": OPERATOR_KEY, "TIDEGATE_LOG_LEVEL": "warning"}


def start_gateway(
    data: Path, logs: Path, waiters: int, max_open_files: int | None = None
) -> Server:
    """The gateway with its defaults but one: room for `waiters` parked long-polls
    and the phases' other connections above the default cap of open connections
    (and `max_open_files` as its bound on open segment files, when given)."""
    port = free_port()
    argv = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
    env = _env() | {"TIDEGATE_MAX_CONNECTIONS": str(max(1000, waiters + 256))}
    if max_open_files is not None:
        env["TIDEGATE_MAX_OPEN_FILES"] = str(max_open_files)
    argv += ["--data-dir", str(data)]
    return Server("gateway", argv, port, env, logs / "gateway.log", ready_path="/readyz")


def start_bare(logs: Path) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "loadtests.bare_app:app",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    return Server("bare endpoint", argv, port, _env(), logs / "bare.log")


def _expect(reply: httpx.Response, status: int) -> httpx.Response:
    if reply.status_code != status:
        raise RuntimeError(f"{reply.request.method} {reply.request.url}: {reply.text[:500]}")
    return reply


def bench_key(url: str) -> str:
    """A tenant `bench` on the unlimited plan and an API key for it, by the admin API."""
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    with httpx.Client(base_url=url, headers=operator, timeout=30) as admin:
        _expect(admin.post("/v1/admin/tenants", json={"name": "bench", "plan": "unlimited"}), 201)
        scopes = ["topics:read", "topics:write", "topics:admin"]
        created = admin.post("/v1/admin/tenants/bench/keys", json={"scopes": scopes})
        key: str = _expect(created, 201).json()["key"]
        return key


def create_topics(url: str, key: str, topics: dict[str, int]) -> None:
    """Create the topics (name: partitions); fill the fetch topic if it is one of them."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
        for name, partitions in topics.items():
            _expect(api.post("/v1/topics", json={"name": name, "partitions": partitions}), 201)
        value = {"payload": "x" * 86}
        body = {"records": [{"value": value} for _ in range(100)]}
        for _ in range(FETCH_HELD // 100 if FETCH_TOPIC in topics else 0):
            _expect(api.post(f"/v1/topics/{FETCH_TOPIC}/records", json=body), 200)


def topics_for(profile: Profile, phases: Sequence[Phase]) -> dict[str, int]:
    topics = {p.topic: p.partitions for p in phases}
    topics[FETCH_TOPIC] = 1
    return topics | {LONGPOLL_TOPIC: 1, FANOUT_TOPIC: 1}


@contextmanager
def servers(profile: Profile, phases: Sequence[Phase] = PHASES) -> Iterator[Servers]:
    """Both servers started, the bench tenant, key and topics made; stopped and removed after."""
    wrk_runner.wrk_binary()  # fail before starting anything
    root = Path(tempfile.mkdtemp(prefix="tidegate-bench-"))
    started: list[Server] = []
    try:
        started.append(start_gateway(root / "data", root, profile.waiters, profile.max_open_files))
        started.append(start_bare(root))
        gateway, bare = started
        key = bench_key(gateway.url)
        create_topics(gateway.url, key, topics_for(profile, phases))
        yield Servers(gateway, bare, key)
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def drive(server: Server, phase: Phase, key: str, seconds: int, threads: int) -> Slice:
    """One wrk slice of a phase against one server."""
    try:
        return wrk_runner.run(
            phase.script,
            server.url,
            phase.args(key),
            connections=phase.connections,
            seconds=seconds,
            pid=server.pid,
            threads=threads,
        )
    except WrkError as e:
        server.check()
        raise WrkError(f"{phase.name}, against the {server.name}: {e}") from None


@dataclass
class Comparison:
    phase: Phase
    bare: Totals
    gateway: Totals

    @property
    def ratio(self) -> float:
        return self.gateway.rps / self.bare.rps if self.bare.rps else 0.0

    @property
    def spread(self) -> tuple[float, float]:
        """The lowest and highest ratio of one round's adjacent pair of slices."""
        pairs = zip(self.bare.slices, self.gateway.slices, strict=True)
        ratios = [g.rps / b.rps for b, g in pairs if b.rps]
        return (min(ratios), max(ratios)) if ratios else (0.0, 0.0)


def abba(rounds: int) -> list[str]:
    """The order of a phase's slices: bare, gateway, gateway, bare, bare, gateway, ..."""
    order: list[str] = []
    for i in range(rounds):
        order += ["bare", "gateway"] if i % 2 == 0 else ["gateway", "bare"]
    return order


def compare(s: Servers, phase: Phase, profile: Profile) -> Comparison:
    """The phase against both servers in `profile.rounds` slices a side, ABBA order."""
    sides = {"bare": s.bare, "gateway": s.gateway}
    if profile.warmup_seconds:
        for server in sides.values():
            drive(server, phase, s.key, profile.warmup_seconds, profile.threads)
    slices: dict[str, list[Slice]] = {"bare": [], "gateway": []}
    for side in abba(profile.rounds):
        slices[side].append(
            drive(sides[side], phase, s.key, profile.slice_seconds, profile.threads)
        )
    return Comparison(phase, Totals(slices["bare"]), Totals(slices["gateway"]))


@dataclass
class Scaling:
    totals: dict[int, Totals]
    files: dict[int, int]  # files the gateway holds open after the first slice on that topic
    files_before: int  # before the first of these topics was created

    def relative(self, partitions: int) -> float:
        base = self.totals[8].rps if 8 in self.totals else 0.0
        return self.totals[partitions].rps / base if base else 0.0


def scaling(s: Servers, profile: Profile) -> Scaling:
    """Keyed 100-record produce on topics of each partition count, the counts in
    ascending then descending order (`scaling_rounds` passes), 64 connections.

    Each topic is created just before its first slice, so the open file
    descriptors counted after it say what that many more partitions hold open
    (on top of the topics before it)."""
    counts = list(profile.scaling_partitions)
    phases = {
        n: Phase(f"keyed, {n} partitions", "produce_keyed", 64, scaling_topic(n), n) for n in counts
    }
    files_before = wrk_runner.open_files(s.gateway.pid)
    slices: dict[int, list[Slice]] = {n: [] for n in counts}
    files: dict[int, int] = {}
    for i in range(profile.scaling_rounds):
        for n in counts if i % 2 == 0 else reversed(counts):
            if n not in files:
                create_topics(s.gateway.url, s.key, {scaling_topic(n): n})
            if n not in files and profile.warmup_seconds:
                drive(s.gateway, phases[n], s.key, profile.warmup_seconds, profile.threads)
            slices[n].append(
                drive(s.gateway, phases[n], s.key, profile.slice_seconds, profile.threads)
            )
            files.setdefault(n, wrk_runner.open_files(s.gateway.pid))
    return Scaling({n: Totals(v) for n, v in slices.items()}, files, files_before)


@dataclass
class Aim:
    what: str
    measured: str
    aim: str
    met: bool | None  # None: no aim, reported only

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("PASS" if self.met else "MISS")


@dataclass
class Report:
    aims: list[Aim] = field(default_factory=list)

    def add(self, what: str, measured: str, aim: str, met: bool | None) -> None:
        self.aims.append(Aim(what, measured, aim, met))

    def print_summary(self) -> None:
        print(
            "\nsummary (gateway/bare req/s in this run, in brackets the lowest and highest "
            "round; MISS is a finding, not a failure)"
        )
        width = max(len(a.what) for a in self.aims) if self.aims else 10
        print(f"  {'what':<{width}}  {'measured':>22}  {'aim':>12}  verdict")
        for a in self.aims:
            print(f"  {a.what:<{width}}  {a.measured:>22}  {a.aim:>12}  {a.verdict}")


def print_comparison_header() -> None:
    print(
        f"{'':<42} {'req/s':>16} {'':>6} {'':>6}  {'server cpu':>11}  {'wrk cpu':>11}  "
        f"{'p50/p99 ms':>13}  {'p50/p99 ms':>13}"
    )
    print(
        f"{'phase':<42} {'bare':>8}{'gateway':>8} {'ratio':>6} {'aim':>6}  "
        f"{'us/req b  gw':>11}  {'us/req b  gw':>11}  {'bare':>13}  {'gateway':>13}"
    )


def print_comparison(c: Comparison) -> None:
    aim = f">={c.phase.aim:.1f}" if c.phase.aim is not None else "-"
    b, g = c.bare, c.gateway
    print(
        f"{c.phase.name:<42} {b.rps:>8.0f}{g.rps:>8.0f} {c.ratio:>6.2f} {aim:>6}  "
        f"{b.server_cpu_us_per_request:>5.0f} {g.server_cpu_us_per_request:>5.0f}  "
        f"{b.client_cpu_us_per_request:>5.1f} {g.client_cpu_us_per_request:>5.1f}  "
        f"{b.percentile_ms(0.5):>6.2f}/{b.percentile_ms(0.99):<6.2f}  "
        f"{g.percentile_ms(0.5):>6.2f}/{g.percentile_ms(0.99):<6.2f}",
        flush=True,
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop (what the servers use too) where it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def report_comparisons(s: Servers, profile: Profile, phases: Sequence[Phase], out: Report) -> None:
    print_comparison_header()
    for phase in phases:
        c = compare(s, phase, profile)
        print_comparison(c)
        aim = "-" if phase.aim is None else f">= {phase.aim:.2f}"
        met = None if phase.aim is None else c.ratio >= phase.aim
        low, high = c.spread
        out.add(phase.name, f"{c.ratio:.2f} ({low:.2f}-{high:.2f})", aim, met)


def report_scaling(s: Servers, profile: Profile, out: Report) -> None:
    sc = scaling(s, profile)
    bound = profile.max_open_files or "derived from the descriptor limit"
    print(
        "\npartition scaling (keyed 100 rec, 64 conns, gateway only; open files: regular "
        f"files the gateway holds, {sc.files_before} before these topics; "
        f"TIDEGATE_MAX_OPEN_FILES {bound})"
    )
    print(f"  {'partitions':>10} {'req/s':>8} {'vs 8':>6} {'cpu us/req':>10} "
          f"{'p50/p99 ms':>15} {'open files':>10}")  # fmt: skip
    for n, t in sc.totals.items():
        print(
            f"  {n:>10} {t.rps:>8.0f} {sc.relative(n):>6.2f} "
            f"{t.server_cpu_us_per_request:>10.0f} "
            f"{t.percentile_ms(0.5):>7.2f}/{t.percentile_ms(0.99):<7.2f} {sc.files[n]:>10}",
            flush=True,
        )
        if n != 8 and 8 in sc.totals:
            rel = sc.relative(n)
            what = f"keyed, {n} partition{'s' * (n > 1)} vs 8"
            out.add(what, f"{rel:.2f}", "0.75..1.25", abs(rel - 1) <= 0.25)
    top = max(sc.totals)
    partitions = sum(sc.totals)
    out.add(
        f"open files after {partitions} partitions",
        f"{sc.files[top]} (+{sc.files[top] - sc.files_before})",
        "-",
        None,
    )


def report_longpoll(s: Servers, profile: Profile, out: Report) -> None:
    latencies, rate = run_async(
        longpoll.produce_to_longpoll(
            s.gateway.port, s.key, LONGPOLL_TOPIC, profile.longpoll_seconds, profile.longpoll_rate
        )
    )
    p50, p99 = longpoll.percentile_ms(latencies, 0.5), longpoll.percentile_ms(latencies, 0.99)
    print(
        f"\nproduce -> long-poll at {rate:.0f} rec/s: {len(latencies)} records, "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (from the produce request to the reader)"
    )
    out.add(f"produce -> long-poll p99 at {rate:.0f}/s", f"{p99:.2f} ms", "< 10 ms", p99 < 10)


def report_fanout(s: Servers, profile: Profile, out: Report) -> None:
    woken = run_async(
        longpoll.fanout(
            s.gateway.port,
            s.key,
            FANOUT_TOPIC,
            profile.waiters,
            profile.waiter_rounds,
            server_pid=s.gateway.pid,
        )
    )
    ms = woken.latencies
    p50, p99 = longpoll.percentile_ms(ms, 0.5), longpoll.percentile_ms(ms, 0.99)
    print(
        f"\n{profile.waiters} long-polls on one partition woken by one append "
        f"({profile.waiter_rounds} appends): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(ms) * 1000:.1f} ms;\n  CPU from the append to the last reply: gateway "
        f"{woken.server_cpu_s * 1000:.0f} ms ({woken.server_cpu_s / profile.waiters * 1e6:.0f} "
        f"us a reply), this client reading them {woken.client_cpu_s * 1000:.0f} ms"
    )
    out.add(f"{profile.waiters} parked long-polls p99", f"{p99:.1f} ms", "< 150 ms", p99 < 150)


def run(profile: Profile, only: str | None = None) -> Report:
    """Every phase (or those whose name holds `only`), printed as it ends; the aims."""
    out = Report()
    phases = [p for p in PHASES if only is None or only in p.name]
    with servers(profile) as s:
        load = os.getloadavg()
        print(
            f"cores: {os.cpu_count()}, load average {load[0]:.2f}; wrk -t{profile.threads}, "
            f"{profile.rounds} slices of {profile.slice_seconds} s a side and phase (ABBA), "
            f"warm-up {profile.warmup_seconds} s; durability fsync (the default)\n"
        )
        if phases:
            report_comparisons(s, profile, phases, out)
        if only is None or only in "partition scaling":
            report_scaling(s, profile, out)
        if only is None or only in "produce -> long-poll":
            report_longpoll(s, profile, out)
        if only is None or only in "long-poll fan-out":
            report_fanout(s, profile, out)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short trial (about 2 minutes)")
    parser.add_argument("--seconds", type=int, help="length of one wrk slice (whole seconds)")
    parser.add_argument("--rounds", type=int, help="slices per side and phase (ABBA order)")
    parser.add_argument("--threads", type=int, help="wrk threads (default 1)")
    parser.add_argument(
        "--max-open-files",
        type=int,
        help="the gateway's bound on open segment files (default: derived from its "
        "descriptor limit), e.g. 1024 to put the 2,048-partition topic past it",
    )
    parser.add_argument(
        "--only",
        help="run only the phases whose name contains this "
        "(e.g. 'fetch', 'keyed', 'partition scaling', 'long-poll')",
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.seconds is not None:
        profile = replace(profile, slice_seconds=max(1, args.seconds))
    if args.rounds is not None:
        profile = replace(profile, rounds=max(1, args.rounds))
    if args.threads is not None:
        profile = replace(profile, threads=max(1, args.threads))
    if args.max_open_files is not None:
        profile = replace(profile, max_open_files=args.max_open_files)
    started = time.monotonic()
    try:
        report = run(profile, args.only)
    except (WrkError, longpoll.BenchError, RuntimeError, TimeoutError) as e:
        print(f"\nbench FAILED: {e}", file=sys.stderr)
        return 1
    report.print_summary()
    print(f"\n(ran {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
