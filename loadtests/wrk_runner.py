"""Runs wrk (the C load generator) for one slice of a phase and reads back what it measured.

Each phase has a Lua script in `loadtests/wrk/`; its `done()` callback prints
one line, `WRK_JSON {...}`, with the request count, wrk's error counts and the
latency distribution as weighted quantiles (see `common.lua`). The runner
reads the server's CPU time from `/proc/<pid>/stat` before and after, and
wrk's own from the rusage of the finished child, so a slice says what a
request cost the server and what it cost the client.

A slice with any error (a response of 400 or above, a connect, read or write
error, a timeout) raises `WrkError`: a phase that produced errors measured
something other than what it claims. A missing wrk raises too: the benchmark
never falls back to a slower client.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

SCRIPTS = Path(__file__).resolve().parent / "wrk"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARK = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw errors: the phase's figures would not mean anything."""


def wrk_binary() -> str:
    """The path of wrk, or WrkError saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed: `apt-get install wrk` (make deps does it as root)")
    return path


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_files(pid: int) -> int:
    """How many files (not sockets, pipes or event fds) a process holds open now."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/")
    return count


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Slice:
    """What one wrk run measured against one server."""

    requests: int
    seconds: float
    bytes: int
    server_cpu_s: float
    client_cpu_s: float
    # (latency in µs, the number of requests it stands for)
    quantiles: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Totals:
    """Slices of one side of a phase, merged: counts added, distributions merged by weight."""

    slices: list[Slice]

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.slices)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.slices)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_us_per_request(self) -> float:
        return sum(s.server_cpu_s for s in self.slices) / max(1, self.requests) * 1e6

    @property
    def client_cpu_us_per_request(self) -> float:
        return sum(s.client_cpu_s for s in self.slices) / max(1, self.requests) * 1e6

    def percentile_ms(self, q: float) -> float:
        """The latency below which `q` (0..1) of the requests fell, in ms."""
        return weighted_percentile([p for s in self.slices for p in s.quantiles], q) / 1000


def weighted_percentile(points: Iterable[tuple[float, float]], q: float) -> float:
    """The value at quantile `q` of a distribution given as (value, weight) points."""
    ordered = sorted(points)
    total = sum(w for _, w in ordered)
    if not ordered or total <= 0:
        return 0.0
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= q * total:
            return value
    return ordered[-1][0]


class Errors(msgspec.Struct, frozen=True):
    connect: int
    read: int
    write: int
    status: int  # responses of 400 and above
    timeout: int


class Summary(msgspec.Struct, frozen=True):
    """The `WRK_JSON` line of `common.lua`'s done(), latencies in µs."""

    requests: int
    duration_us: int
    bytes: int
    errors: Errors
    # (percentile, share of the requests in %, latency µs)
    quantiles: list[tuple[float, float, int]]


def parse(stdout: str) -> Summary:
    """The summary a phase script's done() printed; WrkError if there is none."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            try:
                return msgspec.json.decode(line[len(MARK) :], type=Summary)
            except msgspec.ValidationError as e:
                raise WrkError(f"wrk's summary does not parse ({e}): {line[:300]}") from None
    raise WrkError(f"wrk printed no {MARK.strip()} line (is done = common.done set?):\n{stdout}")


def slice_of(summary: Summary, server_cpu_s: float, client_cpu_s: float) -> Slice:
    """A Slice from a parsed summary; WrkError if wrk counted any error or no request."""
    bad = {k: n for k, n in msgspec.structs.asdict(summary.errors).items() if n}
    if bad:
        raise WrkError(
            f"wrk saw errors in {summary.requests} requests: {bad} "
            "(status: responses of 400 and above; the phase is not measured)"
        )
    if summary.requests == 0:
        raise WrkError("wrk completed no request")
    points = [(float(us), share / 100 * summary.requests) for _, share, us in summary.quantiles]
    return Slice(
        summary.requests,
        summary.duration_us / 1e6,
        summary.bytes,
        server_cpu_s,
        client_cpu_s,
        points,
    )


def run(
    script: str,
    url: str,
    args: Sequence[str],
    *,
    connections: int,
    seconds: int,
    pid: int,
    threads: int = 1,
    timeout_s: int = 10,
) -> Slice:
    """One wrk run of `loadtests/wrk/<script>.lua` against `url`, `seconds` long
    (whole seconds: wrk takes no fractions), with `args` after `--`; `pid` is
    the server process whose CPU time is charged to the requests."""
    path = SCRIPTS / f"{script}.lua"
    if not path.is_file():
        raise WrkError(f"no wrk script {path}")
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, seconds)}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(path),
        url,
        "--",
        *args,
    ]
    client_before = _children_cpu()
    server_before = cpu_seconds(pid)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False
    )
    server_cpu = cpu_seconds(pid) - server_before
    client_cpu = _children_cpu() - client_before
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout}")
    return slice_of(parse(done.stdout), server_cpu, client_cpu)
