"""A throwaway redis-server for tests: its own port, its own directory, its own process.

Tests that talk to Redis must not depend on (or disturb) a Redis the machine
happens to run, so this starts a fresh server on a free loopback port (never
6379), with persistence off and its working directory in a temporary
directory, and stops it by PID afterwards. It is synchronous so a
session-scoped pytest fixture can own it (see `tests.support.fixtures`).

A missing `redis-server` binary is an error, not a skip: the Makefile installs
it, and a CI run that silently skipped every Redis test would look green while
testing nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_FORBIDDEN_PORT = 6379  # the default port: a developer's own Redis lives there


def free_port() -> int:
    """A port the kernel just considered free on 127.0.0.1 (bind to 0, read it, close)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != _FORBIDDEN_PORT:
            return port


def _ping(port: int, timeout_s: float = 0.5) -> bool:
    """True when a Redis answers PING on the port (raw RESP, so no client library is needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServerError(RuntimeError):
    """The server could not be found or would not start."""


class RedisServer:
    """`with RedisServer() as server:` a running redis-server at `server.url`."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RedisServerError(
                "redis-server is not installed (or not on PATH); the Redis tests need it. "
                "Install it with `apt-get install redis-server` or run `make deps`."
            )
        self.binary = found
        self.port = 0
        self._dir: Path | None = None
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RedisServerError("the server is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        if self._dir is None:
            raise RedisServerError("the server has not been started")
        return self._dir / "redis.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, RedisServerError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; raise with the log tail if not."""
        if self._proc is not None:
            raise RedisServerError("already started")
        self._dir = Path(tempfile.mkdtemp(prefix="tidegate-redis-"))
        # The port can be taken between our probe and the server's bind; try a few.
        for _ in range(3):
            self.port = free_port()
            self._log = self.log_path.open("ab")
            argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(self._dir)]
            argv += ["--daemonize", "no"]
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready():
                return self
            self._kill()
        tail = self.log_tail()
        self.stop()
        raise RedisServerError(
            f"redis-server did not answer PING within {START_TIMEOUT_S:.0f} s; log tail:\n{tail}"
        )

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if _ping(self.port):
                return True
            if self._proc.poll() is not None:  # exited: port taken, bad option...
                return False
            time.sleep(0.02)
        return False

    def _kill(self) -> None:
        """Stop the process by its PID: SIGTERM, wait, then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        elif proc is not None:
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server and delete its directory (log included)."""
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
