"""Bounds on what one client connection may hold: time for its request head and body,
size of its head, and how many connections are open at once.

Without them, a client that opens a connection and sends half a request line
holds a socket (and a file descriptor) forever; a thousand such clients use
up the process's descriptors and nobody else is answered, not even `/healthz`.
The bounds, all `TIDEGATE_*` settings:

- head: a request head (request line and header fields) must arrive whole
  within `head_timeout_s` of its first byte (of the connection's opening for
  the first request); else `408` and close. Absolute, not reset by progress,
  so trickling a byte at a time does not extend it (Go's `ReadHeaderTimeout`).
- body: the body must arrive within `body_timeout_s` plus one second for every
  `body_min_bytes_per_s` bytes received so far, counted from the request's
  start (Apache's `mod_reqtimeout` `body=…,MinRate=…`); else `408` (or just
  close, if a response has begun). Time while the gateway itself is not
  reading (flow control) does not count against the client.
- head size: more than `max_header_bytes` in a head gets `431`, before the
  head is parsed further or any route runs.
- connections: at most `max_connections` open. A new connection past the cap
  displaces the one that has waited longest without sending a whole request
  head (a slow or idle client); if every connection is in a request, the new
  one gets `503` with `Retry-After` and is closed. So a flood of slow clients
  cannot lock out a client that sends its request at once.

Cost on the hot path: two assignments when a request begins, an addition and
a comparison per read, one comparison per head. The deadlines share one timer
per connection (`loop.call_later`), which on firing looks at where the
connection is and sleeps again for what is left; it is not re-armed per
request. Idle keep-alive connections stay uvicorn's (`timeout_keep_alive`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.http.metrics import Metrics
from gateway.http.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemType
from gateway.http.protocol import GatheringHttpProtocol

log = logging.getLogger("tidegate.connections")

FD_HEADROOM = 256
"""File descriptors kept free of client connections besides the storage's segment
files (`raise_fd_limit`'s `reserved`): index and snapshot files opened for a
moment, the state database, the listening socket, a `/healthz` or two."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    head_timeout_s: float
    body_timeout_s: float
    body_min_bytes_per_s: int
    max_header_bytes: int
    max_connections: int


def problem_reply(problem: Problem) -> bytes:
    """A whole HTTP/1.1 response carrying `problem`, closing the connection: for the
    refusals made below the application, where no ASGI app is involved."""
    body = orjson.dumps(problem.to_dict())
    status = problem.type.status
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in problem.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _HeadTooLarge(Exception):
    """Raised from a parser callback; httptools wraps it and uvicorn answers through
    `send_400_response`, which sends the refusal set before raising instead."""


class LimitedHttpProtocol(GatheringHttpProtocol):
    """The gathering protocol with the bounds of the module. Build with `limited_protocol`."""

    limits: ClassVar[ConnectionLimits]
    metrics: ClassVar[Metrics]

    # -- set up and tear down ------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.metrics.http_connections += 1
        self._refusal: bytes | None = None
        self._bytes_in = 0
        self._chunk_bytes = 0
        self._request_bytes0 = 0
        self._in_head = True
        self._head_bytes = 0
        self._head_started = self.loop.time()
        self._watch: asyncio.TimerHandle | None = self.loop.call_later(
            self.limits.head_timeout_s, self._on_watch
        )
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watch()
        self.metrics.http_connections -= 1
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._stop_watch()  # the WebSocket protocol has its own pings and limits
        self.metrics.http_connections -= 1  # its connection_lost goes to that protocol
        super().handle_websocket_upgrade()

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    # -- the head: its size -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._bytes_in += len(data)
        self._chunk_bytes = len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(self._head_too_large(), "head-too-large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_started = self.loop.time()
        self._request_bytes0 = self._bytes_in - self._chunk_bytes

    def on_headers_complete(self) -> None:
        self._in_head = False
        # The whole head may have come in the read that completed it: only then is it
        # measured exactly (a read of at most the limit cannot hold a larger head).
        if self._head_bytes + self._chunk_bytes > self.limits.max_header_bytes:
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.limits.max_header_bytes:
                self._refusal = self._head_too_large()
                raise _HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(self._refusal, "head-too-large")

    def _head_too_large(self) -> bytes:
        limit = self.limits.max_header_bytes
        return problem_reply(
            Problem(
                ProblemType.HEADERS_TOO_LARGE,
                f"the request head (request line and header fields) exceeds {limit} bytes",
                {"limit": limit},
            )
        )

    # -- the deadlines ------------------------------------------------------------
    def _on_watch(self) -> None:
        """Where is the connection, and how long may it stay there? Sleep for the rest."""
        self._watch = None
        if self.transport.is_closing():
            return
        limits = self.limits
        now = self.loop.time()
        cycle: RequestResponseCycle | None = self.cycle
        if self.timeout_keep_alive_task is not None:
            left = limits.head_timeout_s  # idle between requests: uvicorn's keep-alive governs
        elif cycle is None or cycle.response_complete:
            left = self._head_started + limits.head_timeout_s - now
            if left <= 0:
                self._time_out("head", limits.head_timeout_s, "head-timeout")
                return
        elif cycle.more_body and not cycle.disconnected:
            if self.flow.read_paused:  # the gateway is not reading: not the client's doing
                left = limits.body_timeout_s
            else:
                received = self._bytes_in - self._request_bytes0
                allowed = limits.body_timeout_s + received / limits.body_min_bytes_per_s
                left = self._head_started + allowed - now
                if left <= 0:
                    self._time_out("body", allowed, "body-timeout")
                    return
        else:
            left = limits.head_timeout_s  # the application has the request
        self._watch = self.loop.call_later(max(left, 0.001), self._on_watch)

    def _time_out(self, part: str, seconds: float, reason: str) -> None:
        cycle: RequestResponseCycle | None = self.cycle
        if self._bytes_in == self._request_bytes0 and cycle is None:
            self._count(reason)
            self._stop_watch()
            self.transport.close()  # never sent a byte: nothing to explain
            return
        self._refuse(
            problem_reply(
                Problem(
                    ProblemType.REQUEST_TIMEOUT,
                    f"the request {part} did not arrive within {seconds:g} s",
                    {"part": part},
                )
            ),
            reason,
        )

    # -- the connection cap -------------------------------------------------------
    def _make_room(self) -> None:
        """Past the cap: displace the connection longest without a whole head, else refuse."""
        oldest: LimitedHttpProtocol | None = None
        for other in self.connections:
            if (
                isinstance(other, LimitedHttpProtocol)
                and other is not self
                and other._waiting_for_head()
                and (oldest is None or other._head_started < oldest._head_started)
            ):
                oldest = other
        if oldest is not None:
            oldest._time_out("head", self.loop.time() - oldest._head_started, "displaced")
            return
        self._refuse(
            problem_reply(
                Problem(
                    ProblemType.TOO_MANY_CONNECTIONS,
                    f"the server holds its limit of {self.limits.max_connections} connections",
                    {"limit": self.limits.max_connections},
                    {"Retry-After": "1"},
                )
            ),
            "over-cap",
        )

    def _waiting_for_head(self) -> bool:
        cycle: RequestResponseCycle | None = self.cycle
        return (
            not self.transport.is_closing()
            and self._watch is not None
            and (cycle is None or cycle.response_complete)
        )

    # -- refusing -----------------------------------------------------------------
    def _refuse(self, reply: bytes, reason: str) -> None:
        """Answer `reply` unless a response has begun, and close the connection."""
        self._count(reason)
        self._stop_watch()
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(reply)
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            cycle.disconnected = True  # the application's receive says http.disconnect
            cycle.message_event.set()
        self.transport.close()

    def _count(self, reason: str) -> None:
        self.metrics.connection_closed(reason)


def limited_protocol(limits: ConnectionLimits, metrics: Metrics) -> type[LimitedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, holding `limits` and the
    app's `metrics` (open connections, and connections closed by each bound)."""
    attributes = {"limits": limits, "metrics": metrics}
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), attributes)


def raise_soft_limit() -> int:
    """Raise the soft `RLIMIT_NOFILE` to the hard limit (as far as the system lets);
    the soft limit it leaves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def descriptor_limit() -> int:
    """The soft `RLIMIT_NOFILE` now."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_fd_limit(max_connections: int, reserved: int = 0) -> int:
    """Raise the soft `RLIMIT_NOFILE` to the hard limit, and return how many client
    connections fit below it with `FD_HEADROOM` and `reserved` (the storage's own
    bound on open files) to spare (at most `max_connections`)."""
    soft = raise_soft_limit()
    fits = max(16, soft - FD_HEADROOM - reserved)
    if fits < max_connections:
        log.warning(
            "the file descriptor limit (%d) leaves room for %d client connections, "
            "not TIDEGATE_MAX_CONNECTIONS=%d: serving at most %d",
            soft,
            fits,
            max_connections,
            fits,
        )
        return fits
    return max_connections


LEAST_DERIVED_OPEN_FILES, MOST_DERIVED_OPEN_FILES = 1024, 65536
"""The range `segment_file_bound` derives within: never below the fixed bound of
before (a smaller descriptor limit then serves fewer connections, with a
warning), never more than 65,536 descriptors' worth of kernel file tables (a few
MB; no busy working set of partitions is that large)."""


def segment_file_bound(max_open_files: int | None, max_connections: int, limit: int) -> int:
    """The file engine's bound on open segment files: `max_open_files` when set
    (TIDEGATE_MAX_OPEN_FILES), else derived from the descriptor `limit`: two thirds
    of what it leaves after `max_connections` and `FD_HEADROOM` (the files held
    open reach 1.5 times the bound while writers sync), 1,024 to 65,536.

    A fixed bound sits at the wrong place on most machines: a Linux limit raised
    to its hard value (524,288 under systemd) leaves room for tens of thousands of
    files, and past the bound a share (files - bound) / files of keyed writes
    reopens its file, about 13 us of CPU each under load."""
    if max_open_files is not None:
        return max_open_files
    derived = (limit - FD_HEADROOM - max_connections) * 2 // 3
    return max(LEAST_DERIVED_OPEN_FILES, min(MOST_DERIVED_OPEN_FILES, derived))
