"""The connection bounds' pieces that need no server: the refusal's wire form, the file
descriptor budget, and the uvicorn internals the deadlines read (the live tests are in
tests/gateway/test_live_slow_clients.py)."""

from __future__ import annotations

import inspect
import resource

import orjson
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.http.connlimits import (
    FD_HEADROOM,
    LEAST_DERIVED_OPEN_FILES,
    MOST_DERIVED_OPEN_FILES,
    problem_reply,
    raise_fd_limit,
    segment_file_bound,
)
from gateway.http.problems import Problem, ProblemType


def test_a_refusal_is_a_whole_problem_response_that_closes() -> None:
    reply = problem_reply(
        Problem(ProblemType.TOO_MANY_CONNECTIONS, "full", {"limit": 5}, {"Retry-After": "1"})
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"connection: close" in lines
    assert b"Retry-After: 1" in lines
    assert b"content-type: application/problem+json" in lines
    assert f"content-length: {len(body)}".encode() in lines
    assert orjson.loads(body)["type"] == "https://tidegate.dev/problems/too-many-connections"


def test_the_connection_cap_fits_below_the_descriptor_limit() -> None:
    assert raise_fd_limit(16) == 16
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY  # raised to the hard limit
    assert raise_fd_limit(10**9) == max(16, soft - FD_HEADROOM)
    # The storage's own bound on open segment files is kept free of connections too.
    assert raise_fd_limit(10**9, reserved=768) == max(16, soft - FD_HEADROOM - 768)


def test_the_uvicorn_internals_the_deadlines_read_are_still_there() -> None:
    """The watch reads uvicorn's keep-alive timer, the request cycle's state and flow
    control, and answers parser errors through `send_400_response`: fail loudly if
    uvicorn moves them."""
    received = inspect.getsource(HttpToolsProtocol.data_received)
    assert "self.send_400_response(" in received
    assert "self._unset_keepalive_if_required()" in received
    assert "self.timeout_keep_alive_task = " in inspect.getsource(
        HttpToolsProtocol.on_response_complete
    )
    cycle = inspect.getsource(RequestResponseCycle.__init__)
    for name in ("self.more_body", "self.disconnected", "self.response_complete"):
        assert name in cycle
    assert "self.read_paused" in inspect.getsource(FlowControl.__init__)
    assert "self.headers.append(" in inspect.getsource(HttpToolsProtocol.on_header)


def test_the_bound_on_open_segment_files_fits_below_the_descriptor_limit() -> None:
    """Set, it is what was set; unset, two thirds of what the limit leaves after
    the connections and the spare (the files held open reach 1.5 times the bound
    while writers sync), never below the fixed 1,024 nor above 65,536."""
    assert segment_file_bound(2048, 1000, 20_000) == 2048
    derived = segment_file_bound(None, 1000, 20_000)
    assert derived == 12_496
    assert derived * 3 // 2 + 1000 + FD_HEADROOM <= 20_000
    assert segment_file_bound(None, 1000, 2048) == LEAST_DERIVED_OPEN_FILES
    assert segment_file_bound(None, 1000, 1 << 20) == MOST_DERIVED_OPEN_FILES
