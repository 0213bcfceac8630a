"""The long-poll phases of the gateway benchmark, the ones wrk cannot drive.

wrk measures closed loops of requests; what matters for a long-poll is the
time from a record's append to its arrival at a waiting reader, across two
connections, and the spread of that time over thousands of readers woken by
the same append. Both are measured here with a small HTTP/1.1 client built on
asyncio protocols (no stream objects, no parsing beyond the status line and
Content-Length), so that the client's own cost per reply stays a few
microseconds: with 2,000 waiters it is part of every reply's time, and shown
as such.

- `produce_to_longpoll`: records produced at a fixed rate (about 1k/s) by a
  few (8) producer connections, one consumer long-polling; the latency of each
  record from just before its produce request is written to its receipt.
- `fanout`: `waiters` connections long-poll one partition at its end; when the
  gateway reports them all waiting (`tidegate_longpoll_waiters`), one record is
  appended and each waiter's time from that append to its complete reply is
  taken. Repeated `rounds` times on the same connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import httpx
import orjson

from loadtests.wrk_runner import cpu_seconds

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class BenchError(RuntimeError):
    """A long-poll phase got a reply it should not have: its figures mean nothing."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, replies by Content-Length."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._reply: asyncio.Future[tuple[float, int, bytes]] | None = None

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, "127.0.0.1", port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(BenchError(f"connection closed before the reply: {exc}"))

    def send(self, request: bytes) -> asyncio.Future[tuple[float, int, bytes]]:
        """Write a request; the future holds (perf_counter at its whole reply, status, body)."""
        assert self._transport is not None
        if self._reply is not None and not self._reply.done():
            raise BenchError("a request sent while the previous one awaits its reply")
        self._buffer.clear()
        self._reply = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._reply

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._reply is None or self._reply.done():
            return
        match = _LENGTH.search(self._buffer, 0, end + 2)
        if match is None:
            self._reply.set_exception(BenchError(f"a reply without Content-Length: {data[:200]!r}"))
            return
        length = int(match.group(1))
        if len(self._buffer) < end + 4 + length:
            return
        status = int(self._buffer[9:12])
        self._reply.set_result(
            (time.perf_counter(), status, bytes(self._buffer[end + 4 : end + 4 + length]))
        )

    def close(self) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()  # nobody waits for it any more
        if self._transport is not None:
            self._transport.close()


def request(method: str, path: str, key: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
    if method != "GET":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def _ok(status: int, body: bytes, what: str) -> bytes:
    if status != 200:
        raise BenchError(f"{what}: HTTP {status}: {body[:300]!r}")
    return body


async def produce_to_longpoll(
    port: int, key: str, topic: str, seconds: float, rate: float, producers: int = 8
) -> tuple[list[float], float]:
    """Latencies (s) from produce to a long-polling reader's receipt, and the
    rate achieved. `producers` connections share the rate, each paced, so one
    slow append does not hold back the records after it."""
    consumer = await HttpConnection.open(port)
    senders = [await HttpConnection.open(port) for _ in range(producers)]
    sent: dict[int, float] = {}
    latencies: list[float] = []
    stop = asyncio.Event()
    produced = 0

    async def consume() -> None:
        offset = 0
        while not stop.is_set() or sent:
            path = f"/v1/topics/{topic}/partitions/0/records?offset={offset}&max_wait_ms=500"
            at, status, body = await consumer.send(request("GET", path, key))
            reply = orjson.loads(_ok(status, body, "long-poll"))
            for record in reply["records"]:
                started = sent.pop(record["value"], None)
                if started is not None:
                    latencies.append(at - started)
            offset = reply["next_offset"]
            if stop.is_set() and not reply["records"]:
                break

    async def produce(index: int) -> None:
        nonlocal produced
        interval = producers / rate
        next_at = time.perf_counter() + index / rate
        end = time.perf_counter() + seconds
        seq = index
        path = f"/v1/topics/{topic}/records"
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            body = b'{"records":[{"value":%d}]}' % seq
            sent[seq] = time.perf_counter()
            _, status, reply = await senders[index].send(request("POST", path, key, body))
            _ok(status, reply, "produce")
            produced += 1
            seq += producers
            next_at += interval

    consumer_task = asyncio.create_task(consume())
    started = time.perf_counter()
    try:
        await asyncio.gather(*(produce(i) for i in range(producers)))
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.wait_for(consumer_task, 10)
    finally:
        consumer_task.cancel()
        for conn in (consumer, *senders):
            conn.close()
    if sent:
        raise BenchError(f"{len(sent)} produced records never reached the long-poll")
    return latencies, produced / elapsed


async def _waiting(port: int) -> int:
    """The gateway's count of parked long-polls (server-wide /metrics, no credential)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        reply = await client.get("/metrics")
    match = re.search(r"^tidegate_longpoll_waiters (\d+)", reply.text, re.MULTILINE)
    if reply.status_code != 200 or match is None:
        raise BenchError(f"/metrics has no tidegate_longpoll_waiters: {reply.text[:300]}")
    return int(match.group(1))


@dataclass
class Fanout:
    latencies: list[float]  # seconds, one per waiter and append
    client_cpu_s: float  # this process's CPU time per append, reading the replies
    server_cpu_s: float  # the server's CPU time per append, from the append to the last reply


async def fanout(
    port: int,
    key: str,
    topic: str,
    waiters: int,
    rounds: int,
    server_pid: int,
    max_wait_s: float = 30.0,
) -> Fanout:
    """Latencies from one append to each of `waiters` parked long-polls'
    complete replies, over `rounds` appends, and what reading them cost this
    client (its CPU time from the append to the last reply, part of the tail)
    and the server (`server_pid`) over the same time."""
    loop = asyncio.get_running_loop()
    conns: list[HttpConnection] = []
    latencies: list[float] = []
    client_cpu = server_cpu = 0.0
    try:
        for offset in range(rounds):
            path = f"/v1/topics/{topic}/partitions/0/records?offset={offset}&max_wait_ms=20000"
            ask = request("GET", path, key)
            replies = [conn.send(ask) for conn in conns]
            while len(conns) < waiters:
                # Each connection asks as soon as it is open: one left idle while
                # the rest open would be closed by the server's keep-alive timeout.
                wave = min(100, waiters - len(conns))
                opened = await asyncio.gather(*(HttpConnection.open(port) for _ in range(wave)))
                conns += opened
                replies += [conn.send(ask) for conn in opened]
            deadline = loop.time() + max_wait_s
            while (parked := await _waiting(port)) < waiters:
                if loop.time() > deadline:
                    raise BenchError(f"only {parked} of {waiters} long-polls parked")
                await asyncio.sleep(0.05)
            # A fresh connection for the append, for the same reason.
            producer = await HttpConnection.open(port)
            body = b'{"records":[{"value":{"wake":%d}}]}' % offset
            cpu_before = time.process_time()
            server_before = cpu_seconds(server_pid)
            appended_at = time.perf_counter()
            try:
                _, status, reply = await producer.send(
                    request("POST", f"/v1/topics/{topic}/records", key, body)
                )
            finally:
                producer.close()
            _ok(status, reply, "produce")
            results: Sequence[tuple[float, int, bytes]] = await asyncio.wait_for(
                asyncio.gather(*replies), max_wait_s
            )
            client_cpu += time.process_time() - cpu_before
            server_cpu += cpu_seconds(server_pid) - server_before
            for at, status, payload in results:
                records = orjson.loads(_ok(status, payload, "woken long-poll"))["records"]
                if len(records) != 1:
                    raise BenchError(f"a woken long-poll got {len(records)} records, not 1")
                latencies.append(at - appended_at)
    finally:
        for conn in conns:
            conn.close()
    return Fanout(latencies, client_cpu / rounds, server_cpu / rounds)


def percentile_ms(latencies: Sequence[float], q: float) -> float:
    ordered = sorted(latencies)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
