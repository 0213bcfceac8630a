"""Slow and greedy clients against a real server: head and body deadlines, the head
size limit, and the connection cap that keeps `/healthz` answering through a flood."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.gateway.conftest import BOOTSTRAP_KEY, GatewayProcess
from tests.support.waiting import poll_until

CAP = 50


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A low connection cap, and deadlines long enough not to be what the test sees."""
    env = {"TIDEGATE_MAX_CONNECTIONS": str(CAP), "TIDEGATE_HEAD_TIMEOUT_S": "60"}
    server = GatewayProcess(tmp_path_factory.mktemp("capped") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hasty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Short deadlines, so the tests see them in seconds."""
    env = {
        "TIDEGATE_HEAD_TIMEOUT_S": "1",
        "TIDEGATE_BODY_TIMEOUT_S": "1",
        "TIDEGATE_BODY_MIN_BYTES_PER_S": "1000",
    }
    server = GatewayProcess(tmp_path_factory.mktemp("hasty") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


def closed_by(server: GatewayProcess, reason: str) -> int:
    """`tidegate_connections_closed_total` for `reason`, from /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=5.0).text
    prefix = f'tidegate_connections_closed_total{{reason="{reason}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return int(float(lines[0].removeprefix(prefix))) if lines else 0


def connect(server: GatewayProcess, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or the socket's timeout)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return out
        if not chunk:
            return out
        out += chunk


def status_and_problem(reply: bytes) -> tuple[int, dict[str, object], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    problem: dict[str, object] = orjson.loads(body) if body else {}
    return status, problem, head.lower()


def closed_by_server(sock: socket.socket) -> bool:
    """True if the server closed the connection (it may have said why first)."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def test_healthz_answers_through_a_slowloris_flood_of_twice_the_cap(
    capped: GatewayProcess,
) -> None:
    slow: list[socket.socket] = []
    try:
        for _ in range(2 * CAP):
            sock = connect(capped)
            sock.sendall(b"GET /healthz HT")  # half a request line, and then nothing
            slow.append(sock)
        for _ in range(5):
            started = time.monotonic()
            r = httpx.get(f"{capped.url}/healthz", timeout=5.0)
            assert r.status_code == 200
            assert time.monotonic() - started < 2.0
        still_open = poll_until(
            lambda: [s for s in slow if not closed_by_server(s)],
            lambda open_now: len(open_now) <= CAP,
            what="the longest-waiting heads let go",
        )
        assert len(still_open) <= CAP  # the longest-waiting heads were let go
        assert len(still_open) >= CAP - 10  # ... and only as many as needed
        assert closed_by(capped, "displaced") >= CAP
        open_now = httpx.get(f"{capped.url}/metrics", timeout=5.0).text
        assert "\ntidegate_http_connections " in open_now
    finally:
        for sock in slow:
            sock.close()


def test_past_the_cap_with_every_connection_in_a_request_a_new_one_gets_503(
    capped: GatewayProcess,
) -> None:
    """Connections in a request (here: long-polls) are never the ones let go."""
    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    with httpx.Client(base_url=capped.url, headers=headers, timeout=10.0) as api:
        assert api.post("/v1/topics", json={"name": "waits"}).status_code == 201
    waiting: list[socket.socket] = []
    try:
        request = (
            b"GET /v1/topics/waits/partitions/0/records?offset=latest&max_wait_ms=20000 "
            b"HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + BOOTSTRAP_KEY.encode() + b"\r\n\r\n"
        )
        for _ in range(CAP):
            sock = connect(capped)
            sock.sendall(request)
            waiting.append(sock)
        time.sleep(0.5)  # every head is in: they all wait in the application
        extra = connect(capped)
        try:
            reply = read_all(extra)
        finally:
            extra.close()
        status, problem, head = status_and_problem(reply)
        assert status == 503
        assert problem["type"] == "https://tidegate.dev/problems/too-many-connections"
        assert b"retry-after: 1" in head
        assert b"connection: close" in head
        assert not any(closed_by_server(s) for s in waiting)
    finally:
        for sock in waiting:
            sock.close()
    for _ in range(50):  # bounded: 5 s for the server to see them go
        if httpx.get(f"{capped.url}/healthz", timeout=5.0).status_code == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not take connections again after the long-polls left")
    assert closed_by(capped, "over-cap") >= 1


def test_a_head_over_16_kib_gets_431_problem(hasty: GatewayProcess) -> None:
    for size in (64 * 1024, 17 * 1024):  # across many reads, and likely in one
        sock = connect(hasty)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
            status, problem, head = status_and_problem(read_all(sock))
        finally:
            sock.close()
        assert status == 431
        assert problem["type"] == "https://tidegate.dev/problems/request-header-fields-too-large"
        assert problem["limit"] == 16 * 1024
        assert b"content-type: application/problem+json" in head
    assert closed_by(hasty, "head-too-large") >= 2
    # Below the limit is served.
    assert httpx.get(f"{hasty.url}/healthz", headers={"X-Big": "a" * 15_000}).status_code == 200


def test_a_slow_head_is_closed_at_its_deadline_even_while_it_trickles(
    hasty: GatewayProcess,
) -> None:
    sock = connect(hasty)
    started = time.monotonic()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        for _ in range(40):  # bounded: a header byte every 0.1 s, 4 s at most
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            if closed_by_server(sock):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert closed_by_server(sock)
    finally:
        sock.close()
    assert 0.8 <= elapsed < 3.5


def test_a_silent_connection_is_closed_at_the_head_deadline(hasty: GatewayProcess) -> None:
    sock = connect(hasty)
    started = time.monotonic()
    try:
        assert read_all(sock) == b""  # closed, with nothing to explain
    finally:
        sock.close()
    assert 0.8 <= time.monotonic() - started < 3.5


def test_a_body_shorter_than_its_content_length_is_cut_at_the_body_deadline(
    hasty: GatewayProcess,
) -> None:
    with hasty.client() as api:
        assert api.post("/v1/topics", json={"name": "short-body"}).status_code == 201
        body = b'{"records": [{"value": 1}]}'
        sock = connect(hasty)
        started = time.monotonic()
        try:
            sock.sendall(
                b"POST /v1/topics/short-body/records HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: Bearer " + BOOTSTRAP_KEY.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (len(body) + 100) + body
            )
            status, problem, _ = status_and_problem(read_all(sock))
        finally:
            sock.close()
        elapsed = time.monotonic() - started
        assert status == 408
        assert problem["type"] == "https://tidegate.dev/problems/request-timeout"
        assert problem["part"] == "body"
        assert 0.8 <= elapsed < 4.0
        records = api.get("/v1/topics/short-body/partitions/0/records").json()["records"]
        assert records == []


def test_a_slow_body_that_keeps_the_minimum_rate_is_served(hasty: GatewayProcess) -> None:
    """1 s plus 1 s per 1000 bytes: 3000 bytes over 1.5 s is within its time."""
    with hasty.client() as api:
        assert api.post("/v1/topics", json={"name": "slow-body"}).status_code == 201
        body = orjson.dumps({"records": [{"value": "v" * 2950}]})
        sock = connect(hasty)
        try:
            sock.sendall(
                b"POST /v1/topics/slow-body/records HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: Bearer " + BOOTSTRAP_KEY.encode() + b"\r\n"
                b"Content-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for i in range(0, len(body), 600):  # five pieces, 0.3 s apart
                sock.sendall(body[i : i + 600])
                time.sleep(0.3)
            status, _, _ = status_and_problem(read_all(sock))
        finally:
            sock.close()
        assert status == 200
