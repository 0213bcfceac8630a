"""`GET /v1/topics/{topic}/events`: a topic followed live as Server-Sent Events.

One `record` event per record, its `id:` the position list right after it,
so a browser's `EventSource`, which sends the last id it saw as
`Last-Event-ID` when it reconnects, continues exactly after it: nothing lost,
nothing repeated. On a first connect a page passes the id it stored as
`last_event_id` (browsers cannot set that header themselves); the header wins
when both are present, since it is the newer. The first event, `subscribed`,
names the start position as its id, so a reconnect before any record does
not start at `latest` again. Without `from`, a stream starts at `latest`.

A comment every `TIDEGATE_STREAM_HEARTBEAT_S` keeps proxies from closing an
idle stream; `retry:` says how long a browser waits before reconnecting. A
`gap` event reports positions no longer retained (then the stream reads on
from the earliest, or ends with `on_gap=close`); an `error` event carries the
problem that ended a stream (a credential that expired). The stream runs in
the request's own task: a lost connection, the drain or the expiry cancels
its wait, as for a long-poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.http.params import query_of
from gateway.http.problems import GatewayError, Problem, ProblemType, problem_for
from gateway.http.protocol import WATCH_DISCONNECT, DisconnectWatch
from gateway.http.runtime import Runtime, runtime_of
from gateway.streams.access import url_credential
from gateway.streams.filters import filter_of
from gateway.streams.follower import Follower, Gap, SharedFrames
from gateway.streams.frames import (
    HEARTBEAT,
    gap_document,
    sse_event,
    sse_retry,
    subscribed_document,
)
from gateway.streams.positions import format_positions, on_gap_param, resolve, start_of
from storage.errors import StorageError
from storage.records import ValueFormat
from tenants.errors import QuotaExceeded, TenantError
from tenants.principal import Scope as Scope_

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # proxies that buffer (nginx) pass events on at once
]


class _Ended(Exception):
    """The stream is over (client gone, drain, expiry, stall, on_gap=close)."""


class EventStream(Response):
    """The ASGI response of one SSE stream."""

    def __init__(
        self,
        runtime: Runtime,
        follower: Follower,
        *,
        tenant: str,
        fmt: ValueFormat,
        close_on_gap: bool,
        expires_at_ms: int | None,
    ) -> None:
        super().__init__(status_code=200)
        self.runtime = runtime
        self.settings = runtime.settings
        self.follower = follower
        self.tenant = tenant
        self.fmt = fmt
        self.close_on_gap = close_on_gap
        self.expires_at_ms = expires_at_ms
        self.why: str | None = None  # why the stream was interrupted
        self.sent_at = 0.0  # the event loop's time of the last send
        self.task: asyncio.Task[object] | None = None

    def _interrupt(self, why: str) -> None:
        if self.why is None:
            self.why = why
            if self.task is not None:
                self.task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        quotas = self.runtime.quotas
        try:
            limits = await quotas.limits(self.tenant)
            holding = quotas.connection(self.tenant, limits)
            holding.__enter__()
        except TenantError as exc:
            await problem_for(exc).response()(scope, receive, send)
            return
        try:
            with self.runtime.metrics.stream_open("sse"):
                await self._stream(scope, receive, send)
        finally:
            holding.__exit__(None, None, None)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        drain = self.runtime.drain
        on_drain = functools.partial(self._interrupt, "drain")
        drain.watchers.add(on_drain)
        unwatch: Callable[[], None] | None = None
        helper: asyncio.Task[None] | None = None
        watch: DisconnectWatch | None = scope.get(WATCH_DISCONNECT)
        if watch is not None:
            unwatch = watch(functools.partial(self._interrupt, "gone"))
            if unwatch is None:
                return  # already gone
        else:
            helper = asyncio.ensure_future(self._watch_receive(receive))
        expiry = None
        if self.expires_at_ms is not None:
            delay = (self.expires_at_ms - self.runtime.now_ms()) / 1000
            expiry = loop.call_later(max(delay, 0.0), self._interrupt, "expired")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            positions = self.follower.positions
            hello = orjson.dumps(subscribed_document(positions))
            start = sse_retry(self.settings.stream_retry_ms)
            start += sse_event("subscribed", hello, format_positions(positions))
            await self._send(send, start)
            if drain.started:
                self._interrupt("drain")
            await self._pump(send)
        except asyncio.CancelledError:
            task = self.task
            if self.why is None or task is None:
                raise
            task.uncancel()
        except _Ended:
            pass
        except (StorageError, TenantError, GatewayError) as exc:
            await self._finish(send, problem_for(exc))
            return
        finally:
            drain.watchers.discard(on_drain)
            if unwatch is not None:
                unwatch()
            if helper is not None:
                helper.cancel()
            if expiry is not None:
                expiry.cancel()
        if self.why == "expired":
            await self._finish(send, Problem(ProblemType.UNAUTHENTICATED, "the token has expired"))
        elif self.why not in ("gone", "stalled"):
            await self._finish(send, None)

    async def _watch_receive(self, receive: Receive) -> None:
        """Under servers without the gateway's disconnect watch: a task reading receive()."""
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self._interrupt("gone")
                return

    async def _finish(self, send: Send, problem: Problem | None) -> None:
        """The last event (an error, if one ended the stream) and the end of the body."""
        body = b"" if problem is None else sse_event("error", orjson.dumps(problem.to_dict()))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _send(self, send: Send, body: bytes) -> None:
        try:
            async with asyncio.timeout(self.settings.stream_stall_timeout_s):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except TimeoutError:
            self.why = "stalled"
            raise _Ended from None
        self.sent_at = asyncio.get_running_loop().time()

    async def _pump(self, send: Send) -> None:
        follower, quotas = self.follower, self.runtime.quotas
        loop = asyncio.get_running_loop()
        traffic = self.runtime.usage.traffic
        frame_records = self.settings.stream_frame_records
        heartbeat_s = self.settings.stream_heartbeat_s
        while True:
            try:
                await quotas.admit_consume(self.tenant)
            except QuotaExceeded as exc:
                await asyncio.sleep(exc.retry_after_s)
                continue
            item = await follower.poll(frame_records)
            if item is None:
                if await follower.grown():
                    continue  # partitions added to the topic: read them too
                # New records and, for a stream of every partition, new partitions end
                # the wait; a heartbeat goes once nothing was sent for `heartbeat_s`.
                woken = await follower.wait(heartbeat_s)
                if not woken and loop.time() - self.sent_at >= heartbeat_s:
                    await self._send(send, HEARTBEAT)
            elif isinstance(item, Gap):
                data = orjson.dumps(gap_document(item.entries))
                if self.close_on_gap:
                    await self._send(send, sse_event("gap", data))
                    raise _Ended
                follower.skip(item)
                await self._send(send, sse_event("gap", data, format_positions(follower.positions)))
            else:
                if item.records:  # a filtered run may keep none: then only the position moves
                    filtered = follower.only is not None
                    body = follower.shared.sse(
                        item.records, item.partition, self.fmt, follower.positions, filtered
                    )
                    await self._send(send, body)
                follower.advance(item)
                traffic[self.tenant].consumed(item.bytes, len(item.records))
                await quotas.charge_consume(self.tenant, item.bytes)


async def events(request: Request, shared: SharedFrames) -> Response:
    """The SSE endpoint: check the credential, the topic and the start, then stream."""
    runtime = runtime_of(request)
    target = await runtime.topic_request(
        request, Scope_.TOPICS_READ, credential=url_credential(request)
    )
    params = query_of(request)
    header = request.headers.get("last-event-id")
    resume = header or params.get("last_event_id")
    start = start_of(
        params, resume=resume, resume_name="Last-Event-ID" if header else "last_event_id"
    )
    close_on_gap = on_gap_param(params)
    only = filter_of(params)
    info = await target.log.get_topic(target.stored)
    positions = await resolve(target.log, target.stored, info.partitions, start)
    follower = Follower(
        target.log,
        target.stored,
        positions,
        shared,
        frame_bytes=runtime.settings.stream_frame_bytes,
        only=only,
        every=start.positions is None and start.partitions is None,
    )
    return EventStream(
        runtime,
        follower,
        tenant=target.principal.tenant,
        fmt=info.config.value_format,
        close_on_gap=close_on_gap,
        expires_at_ms=target.principal.expires_at_ms,
    )
