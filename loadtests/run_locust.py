"""`make loadtest`: locust headless against an embedded server, or against `--host`.

Without `--host` it starts `tidegate serve` on a free loopback port with a
fresh data directory and a bootstrap key, runs `loadtests/locustfile.py`
headless for `--seconds` with `--users` users, writes the CSV files
(`<out>/locust_stats.csv`, `_failures.csv`, `_stats_history.csv`,
`_exceptions.csv`) and the HTML report (`<out>/locust.html`), then stops the
server (SIGTERM, a clean drain). With `--host` the same run goes to that
deployment with the key in `TIDEGATE_API_KEY`. Any `tidegate` option of the
locust file passes through after `--` (e.g. `-- --tidegate-partitions 8`).
Exits with locust's status: non-zero when a request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def embedded_server(data_dir: Path, key: str, log: Path) -> Iterator[str]:
    """`tidegate serve` on loopback until the block ends; yields its URL once ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env.update(TIDEGATE_BOOTSTRAP_KEY=key, TIDEGATE_LOG_LEVEL="warning")
    argv = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
    argv += ["--data-dir", str(data_dir)]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited at start-up; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in 30 s; see {log}")
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_locust(
    host: str, key: str, out: Path, *, seconds: int, users: int, spawn_rate: float,
    extra: Sequence[str] = (),
) -> int:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", host, "--users", str(users), "--spawn-rate", str(spawn_rate),
        "--run-time", f"{seconds}s", "--stop-timeout", "10",
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
        "--only-summary", *extra,
    ]  # fmt: skip
    env = dict(os.environ, TIDEGATE_API_KEY=key)
    return subprocess.run(argv, cwd=REPO, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", help="a deployment to load (key in TIDEGATE_API_KEY)")
    parser.add_argument("--seconds", type=int, default=60, help="[60]")
    parser.add_argument("--users", type=int, default=20, help="[20]")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users/s [10]")
    parser.add_argument(
        "--out", type=Path, default=REPO / "loadtests" / "results", help="[%(default)s]"
    )
    parser.add_argument("extra", nargs="*", help="locust options after --")
    args = parser.parse_args(argv)
    run = dict(seconds=args.seconds, users=args.users, spawn_rate=args.spawn_rate, extra=args.extra)
    if args.host:
        key = os.environ.get("TIDEGATE_API_KEY")
        if not key:
            parser.error("--host needs TIDEGATE_API_KEY")
        return run_locust(args.host, key, args.out, **run)
    key = "tg_loadtest_" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="tidegate-loadtest-") as tmp:
        log = args.out / "server.log"
        args.out.mkdir(parents=True, exist_ok=True)
        with embedded_server(Path(tmp) / "data", key, log) as url:
            print(f"embedded server at {url} (log: {log})", flush=True)
            return run_locust(url, key, args.out, **run)


if __name__ == "__main__":
    sys.exit(main())
