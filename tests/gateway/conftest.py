"""A real gateway process on a free loopback port, started and stopped like production.

`GatewayProcess` runs `python -m gateway.cli serve` with its own data directory
and `TIDEGATE_BOOTSTRAP_KEY`, waits for `/readyz`, and stops it with SIGTERM
by PID (SIGKILL only if it ignores that). One server is shared by the module
tests that do not restart it; tests about restarts and shutdown start their own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_KEY = "tg_test_bootstrap_key_0123456789abcdef"
CLEAN_EXIT = (0,)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GatewayProcess:
    """One `tidegate serve` subprocess."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        bootstrap_key: str | None = BOOTSTRAP_KEY,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.bootstrap_key = bootstrap_key
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"gateway-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bootstrap_key}"}

    def start(self, timeout_s: float = 20.0) -> GatewayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
        if self.bootstrap_key is not None:
            env["TIDEGATE_BOOTSTRAP_KEY"] = self.bootstrap_key
        env["TIDEGATE_LOG_LEVEL"] = "warning"
        env.update(self.extra_env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start-up:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway not ready after {timeout_s}s:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM by PID; returns the exit status (0 after a clean drain, `CLEAN_EXIT`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30.0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway shared by the tests of one module."""
    server = GatewayProcess(tmp_path_factory.mktemp("gateway") / "data").start()
    try:
        yield server
    finally:
        server.stop()


PATHS = {"fast-paths": "true", "reference-paths": "false"}


@pytest.fixture(scope="module", params=list(PATHS))
def gateway_on_both_paths(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway with the C fast paths, then one answering by the reference paths
    only (TIDEGATE_FAST_PATHS=false). A module about produce and fetch runs on both
    by defining its `gateway` fixture as this one (see test_live_records.py)."""
    env = {"TIDEGATE_FAST_PATHS": PATHS[request.param]}
    server = GatewayProcess(tmp_path_factory.mktemp("gateway") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


_counter = iter(range(1_000_000))


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A fresh topic name per test, so tests sharing a server do not collide."""
    base = request.node.name.split("[")[0].replace("test_", "")[:40]
    return f"{base}-{next(_counter)}"
