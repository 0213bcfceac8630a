"""`GET /v1/topics/{topic}/stream`: a topic followed live over a WebSocket.

One connection is two coroutines: the application's own task reads what the
client sends (credit, and nothing else outside group mode), and a pump task
is the only one that sends. The pump polls the log from the stream's
positions within the credit it has, sends each run of records as one frame,
and sleeps on the log's wake-up when there is nothing to send. Whatever ends
a stream (the client, a bad client frame, the drain, the credential expiring,
a client that stopped reading, a gap with `on_gap=close`) is recorded as its
`Ending`; the pump then stops and sends the ending's frames and close code,
so nothing is ever sent after a close.

A stream that has caught up joins each partition's `Feed` (feeds.py) and its
pump ends (parks): the feed writes each new frame to it directly, within the
stream's credit and only while its send buffer has room; otherwise the
stream leaves the feed and a pump starts again and reads on from the
stream's own position. An idle subscriber thus holds one task, its
connection's. Streams
under a protocol that cannot take such writes (plain uvicorn), and streams of
a tenant with a consume rate quota (charged per frame by the task), always
read on their own.

A send that waits longer than `TIDEGATE_STREAM_STALL_TIMEOUT_S` for the
bounded send buffer to drain ends the stream (4408); the connection is
aborted when the protocol allows it (`gateway.http.wsprotocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.coordinator.membership import CoordinatorError
from gateway.coordinator.service import GroupService
from gateway.http.auth import require_scope
from gateway.http.params import MAX_INT64, parse_int, query_of
from gateway.http.problems import GatewayError, Problem, ProblemType, problem_for
from gateway.http.runtime import Runtime, open_runtime
from gateway.http.wsprotocol import TRANSPORT_EXTENSION, StreamTransport
from gateway.streams.access import origin_allowed, subprotocol_credential, url_credential
from gateway.streams.closecodes import CloseCode, close_code_for, close_reason
from gateway.streams.credit import CreditWindow, InvalidCredit
from gateway.streams.feeds import Feed, Feeds, Frame, Taken
from gateway.streams.filters import filter_of
from gateway.streams.follower import Batch, Follower, Gap, SharedFrames
from gateway.streams.frames import closing_frame, error_frame, gap_frame, subscribed_frame
from gateway.streams.groupmode import (
    BadCommit,
    GroupMember,
    Reassignment,
    assigned_frame,
    commit_frame,
    committed_frame,
    group_params,
    revoked_frame,
)
from gateway.streams.positions import format_positions, on_gap_param, resolve, start_of
from storage.errors import StorageError
from tenants.errors import QuotaExceeded, TenantError
from tenants.principal import Scope as Scope_

WAIT_S = 60.0
"""How long the pump sleeps on the log at a time (any wake-up ends the sleep early)."""
CLOSE_TIMEOUT_S = 2.0
"""How long the last frames and the close may take to leave before the connection is dropped."""


def _cannot_write(frame: bytes) -> bool:
    return False  # a protocol without the gateway's transport extension: sends go by ASGI


class Stalled(Exception):
    """The client took nothing for the stall timeout while a frame waited."""


@dataclass(slots=True)
class Ending:
    """Why a stream ends: its close code and reason, and the frames sent before them
    (none when the client has gone)."""

    code: int
    reason: str
    frames: list[str] = field(default_factory=list)
    client_gone: bool = False


def credit_param(params: Mapping[str, str]) -> int | None:
    text = params.get("credit")
    if text is None:
        return None
    value = parse_int(text)
    if value is None or not 0 <= value <= MAX_INT64:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "credit must be an integer >= 0",
            parameter="credit",
        )
    return value


class StreamSession:
    """One open WebSocket stream (slotted: an idle subscriber holds one for as long as it
    is open)."""

    __slots__ = (
        "close_on_gap",
        "credit",
        "ending",
        "expires_at_ms",
        "feeds",
        "fmt",
        "follower",
        "frame_records",
        "group",
        "joined",
        "notices",
        "positions",
        "pump",
        "reassignment",
        "receive",
        "runtime",
        "send",
        "settings",
        "shared",
        "tenant",
        "traffic",
        "transport",
        "wake",
        "window",
        "write_frame",
    )

    def __init__(
        self,
        ws: WebSocket,
        receive: Receive,
        send: Send,
        runtime: Runtime,
        follower: Follower,
        shared: SharedFrames,
        *,
        tenant: str,
        fmt: Any,
        window: CreditWindow,
        close_on_gap: bool,
        expires_at_ms: int | None,
        feeds: Feeds | None,
        group: GroupMember | None = None,
    ) -> None:
        # The raw ASGI channel once accepted: frames go out without wrappers.
        self.receive = receive
        self.send = send
        self.runtime = runtime
        self.settings = runtime.settings
        self.follower = follower
        self.positions = follower.positions  # the same dict: the follower changes it in place
        self.shared = shared
        self.tenant = tenant
        self.fmt = fmt
        self.window = window
        self.close_on_gap = close_on_gap
        self.expires_at_ms = expires_at_ms
        self.ending: Ending | None = None
        self.credit: asyncio.Event | None = None  # made when the pump first waits for credit
        self.pump: asyncio.Task[None] | None = None
        self.transport: StreamTransport | None = ws.scope.get("extensions", {}).get(
            TRANSPORT_EXTENSION
        )
        self.feeds = feeds if self.transport is not None else None
        self.write_frame: Callable[[bytes], bool] = (
            _cannot_write if self.transport is None else self.transport.write_frame
        )
        self.joined: dict[int, Feed] = {}
        self.frame_records = self.settings.stream_frame_records
        self.traffic = runtime.usage.traffic[tenant]
        # Group mode: frames the pump sends next (commit answers), the assignment it
        # moves to next, and the wake-up that tells a waiting pump about either.
        self.group = group
        self.notices: list[str] = []
        self.reassignment: Reassignment | None = None
        self.wake: asyncio.Event | None = None if group is None else asyncio.Event()

    # -- ending -------------------------------------------------------------------------
    def end(self, ending: Ending) -> None:
        """Record why the stream ends (the first reason wins) and stop the pump."""
        if self.ending is None:
            self.ending = ending
        self._leave_feeds()  # nothing more is written once an ending is known
        pump = self.pump
        if pump is None or pump.done():
            if not self.ending.client_gone:
                self._start_pump()  # parked: it goes straight to the close
        elif pump is not asyncio.current_task():
            pump.cancel()

    def _start_pump(self) -> None:
        """Run the pump unless it runs: a stream whose partitions are all in feeds parks
        it (the task ends), so an idle subscriber holds no task of its own but the
        connection's."""
        if self.pump is None or self.pump.done():
            self.pump = asyncio.ensure_future(self._pump())

    def _drained(self) -> None:
        positions = self.follower.positions
        reason = "server shutting down; resume from=" + format_positions(positions)
        self.end(
            Ending(
                CloseCode.GOING_AWAY,
                close_reason(reason),
                [closing_frame(CloseCode.GOING_AWAY, "server shutting down", positions)],
            )
        )

    def _expired(self) -> None:
        problem = Problem(ProblemType.UNAUTHENTICATED, "the token has expired")
        self.end(Ending(CloseCode.UNAUTHORIZED, "token expired", [error_frame(problem)]))

    # -- the connection -----------------------------------------------------------------
    async def run(self) -> None:
        group = self.group
        if group is None:
            hello = subscribed_frame(self.follower.positions)
        else:
            hello = assigned_frame(group.member_id, group.generation, self.follower.positions)
        await self.send({"type": "websocket.send", "text": hello})
        beating = None if group is None else asyncio.ensure_future(self._heartbeats(group))
        loop = asyncio.get_running_loop()
        drain = self.runtime.drain
        drain.watchers.add(self._drained)
        expiry = None
        if self.expires_at_ms is not None:
            delay = self.expires_at_ms / 1000 - self.runtime.now_ms() / 1000
            expiry = loop.call_later(max(delay, 0.0), self._expired)
        self._start_pump()
        try:
            if drain.started:
                self._drained()
            await self._receive()
        finally:
            self._leave_feeds()
            drain.watchers.discard(self._drained)
            if expiry is not None:
                expiry.cancel()
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
            if self.ending is None:
                self.end(Ending(CloseCode.NORMAL, "", client_gone=True))
            pump = self.pump
            if pump is not None and not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _receive(self) -> None:
        """Read client frames until the connection closes (the pump's close included)."""
        receive = self.receive
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self.end(Ending(CloseCode.NORMAL, "", client_gone=True))
                return
            if self.ending is not None:
                continue  # closing: what the client still sends does not matter
            text = message.get("text")
            if text is None:
                self.end(Ending(CloseCode.UNSUPPORTED_DATA, "frames are JSON text"))
                continue
            await self._client_frame(text)

    async def _client_frame(self, text: str) -> None:
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._bad_frame("a client frame must be a JSON object")
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "credit":
            try:
                self.window.grant(frame.get("records"))
            except InvalidCredit as exc:
                self._bad_frame(str(exc))
                return
            if self.credit is not None:
                self.credit.set()
        elif kind == "commit" and self.group is not None:
            await self._commit(self.group, frame)
        elif kind == "commit":
            self._bad_frame("commit frames are for group mode (group=...)")
        else:
            self._bad_frame('client frames are {"type": "credit", "records": n}')

    # -- group mode ---------------------------------------------------------------------
    def _rouse(self) -> None:
        """Group mode: end the pump's wait, news is due."""
        if self.wake is not None:
            self.wake.set()

    def _notify(self, frame: str) -> None:
        """A frame for the pump to send before its next records."""
        self.notices.append(frame)
        self._rouse()

    async def _commit(self, group: GroupMember, frame: dict[str, Any]) -> None:
        """A commit frame: stored and answered `committed`, or refused with an `error`
        frame (stale generation, a partition not owned, past the end); either way the
        stream goes on. A malformed one is a protocol error (4400)."""
        try:
            commit = commit_frame(frame)
        except BadCommit as exc:
            self._bad_frame(str(exc))
            return
        try:
            generation, offsets = await group.commit(commit)
        except (GatewayError, CoordinatorError, StorageError) as exc:
            self._notify(error_frame(problem_for(exc)))
            return
        self._notify(committed_frame(generation, offsets))

    async def _heartbeats(self, group: GroupMember) -> None:
        """Heartbeat while open; a rebalance it learns of goes to the pump."""
        try:
            while self.ending is None:
                await asyncio.sleep(group.heartbeat_s)
                moved = await group.beat()
                if moved is not None:
                    self.reassignment = moved
                    self._rouse()
        except Exception as exc:  # the group is gone, the store is down: the stream ends
            problem = problem_for(exc)
            self.end(
                Ending(
                    close_code_for(problem), close_reason(problem.detail), [error_frame(problem)]
                )
            )

    async def _group_news(self) -> None:
        """Send what group mode has for the client before any more records: commit
        answers, then `revoked`/`assigned` for a new generation (kept partitions go on
        from the stream's position, gained ones from where the group says)."""
        while self.notices:
            await self._deliver(self.notices.pop(0))
        moved, self.reassignment = self.reassignment, None
        group = self.group
        if moved is None or group is None:
            return
        before = self.follower.positions
        lost = [p for p in before if p not in moved.starts]
        if lost:
            await self._deliver(revoked_frame(moved.generation, lost))
        positions = {p: before.get(p, start) for p, start in moved.starts.items()}
        self.follower.follow(positions)
        await self._deliver(assigned_frame(group.member_id, moved.generation, positions))

    def _news_due(self) -> bool:
        return bool(self.notices) or self.reassignment is not None

    async def _sleep(
        self, waiting: Callable[[], Awaitable[object]], *, on_log: bool = False
    ) -> None:
        """Await `waiting()`; in group mode only until group news is due as well (a
        member with no partitions waits on the news alone)."""
        wake = self.wake
        if wake is None:
            await waiting()
            return
        wake.clear()
        if self._news_due():
            return
        tasks: list[asyncio.Future[object]] = [asyncio.ensure_future(wake.wait())]
        if self.follower.positions or not on_log:
            tasks.append(asyncio.ensure_future(waiting()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    async def _log_wait(self) -> None:
        await self.follower.wait(WAIT_S)  # new partitions end it too (stream of every one)

    def _bad_frame(self, detail: str) -> None:
        problem = Problem(ProblemType.BAD_REQUEST, detail)
        self.end(Ending(CloseCode.BAD_REQUEST, close_reason(detail), [error_frame(problem)]))

    # -- feeds: frames pushed while caught up ----------------------------------------------
    def offer(self, frame: Frame, taken: Taken) -> bool:
        """A feed's new frame: write it now if it follows on, the credit covers it and
        the send buffer has room; else leave the feed and wake the pump. Run once per
        subscriber of every frame: kept to a few checks and the write, in one call (the
        default window's check is made here, not in the window)."""
        positions = self.positions
        partition = frame.partition
        position = positions[partition]
        if position != frame.first_offset:
            if frame.next_offset <= position:
                return True  # already had it (joined ahead of the feed)
            self.dropped(partition)
            return False
        count, window = frame.count, self.window
        if self.ending is not None or (
            count > self.frame_records
            if window.left is None
            else not window.take(count, self.frame_records)
        ):
            self.dropped(partition)
            return False
        if count and not self.write_frame(frame.wire):
            window.refund(count)
            self.dropped(partition)
            return False
        positions[partition] = frame.next_offset
        taken.append(self.traffic)
        return True

    def dropped(self, partition: int) -> None:
        """Out of a feed: the pump reads on alone from this partition's position."""
        self.joined.pop(partition, None)
        if self.ending is None:
            self._start_pump()

    def topic_grew(self) -> None:
        """Told by the feeds: a stream of every partition reads the new ones (its pump
        joins their feeds once caught up)."""
        if self.follower.every and self.ending is None:
            self.follower.recheck()
            self._start_pump()

    def _join_feeds(self) -> bool:
        """Join the feed of every followed partition not in one; True when all are."""
        feeds, follower = self.feeds, self.follower
        if feeds is None:
            return False
        for partition, position in follower.positions.items():
            if partition in self.joined:
                continue
            feed = feeds.join(
                self,
                follower.log,
                follower.name,
                partition,
                self.fmt,
                position,
                follower.only,
                partitions=len(follower.positions) if follower.every else None,
            )
            if feed is None:
                return False
            self.joined[partition] = feed
        return True

    def _leave_feeds(self) -> None:
        joined, self.joined = self.joined, {}
        for feed in joined.values():
            feed.discard(self)

    # -- the pump: the only sender -----------------------------------------------------------
    async def _pump(self) -> None:
        try:
            await self._pump_records()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.ending is None or task is None:
                raise  # not ours: the server is going down under us
            task.uncancel()
        except Stalled:
            timeout = self.settings.stream_stall_timeout_s
            self.end(Ending(CloseCode.STALLED, f"the client read nothing for {timeout:g} s"))
        except Exception as exc:  # every failure ends the stream with its code
            problem = problem_for(exc)
            code, reason = close_code_for(problem), close_reason(problem.detail)
            self.end(Ending(code, reason, [error_frame(problem)]))
        await self._send_ending()

    async def _pump_records(self) -> None:
        settings, window, follower = self.settings, self.window, self.follower
        quotas, traffic = self.runtime.quotas, self.runtime.usage.traffic
        frame_records = settings.stream_frame_records
        while self.ending is None:
            if self.group is not None and self._news_due():
                await self._group_news()
                continue
            allowance = window.allowance(frame_records)
            if allowance == 0:
                if self.credit is None:
                    self.credit = asyncio.Event()
                self.credit.clear()
                await self._sleep(self.credit.wait)
                continue
            try:
                await quotas.admit_consume(self.tenant)
            except QuotaExceeded as exc:  # the tenant's consume rate: slow down, do not end
                await asyncio.sleep(exc.retry_after_s)
                continue
            item = await follower.poll(allowance, self.joined)
            if item is None:
                if await follower.grown():
                    continue  # partitions added to the topic: read them too
                if self._join_feeds():
                    self.pump = None  # parked: the feeds write; a partition that leaves
                    return  # restarts it
                if self.feeds is None:
                    await self._sleep(self._log_wait, on_log=True)
                # else a feed is past this stream's position there: read on to it
            elif isinstance(item, Gap):
                await self._deliver(gap_frame(item.entries))
                if self.close_on_gap:
                    self.end(Ending(CloseCode.GAP, "position no longer retained"))
                    return
                follower.skip(item)
            else:
                await self._deliver_batch(item)
                traffic[self.tenant].consumed(item.bytes, len(item.records))
                await quotas.charge_consume(self.tenant, item.bytes)

    async def _deliver_batch(self, batch: Batch) -> None:
        if batch.records:  # a filtered run may keep none: then only the position moves
            filtered = self.follower.only is not None
            frame = self.shared.frame(batch.records, batch.partition, self.fmt, filtered)
            await self._deliver(frame)
            self.window.spend(len(batch.records))
        self.follower.advance(batch)

    async def _deliver(self, frame: str) -> None:
        """Send one frame, waiting at most the stall timeout for the send buffer."""
        try:
            async with asyncio.timeout(self.settings.stream_stall_timeout_s):
                await self.send({"type": "websocket.send", "text": frame})
        except TimeoutError:
            raise Stalled from None

    async def _send_ending(self) -> None:
        ending = self.ending
        if ending is None or ending.client_gone:
            return
        if ending.code == CloseCode.STALLED and self.transport is not None:
            self.transport.abort()  # nothing queued behind the stall would ever leave
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                for frame in ending.frames:
                    await self.send({"type": "websocket.send", "text": frame})
                close = {"type": "websocket.close", "code": ending.code, "reason": ending.reason}
                await self.send(close)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
        except Exception:  # the client went away meanwhile
            if self.transport is not None:
                self.transport.abort()


async def refuse(ws: WebSocket, problem: Problem, subprotocol: str | None) -> None:
    """Accept, say why in an `error` frame, and close with the problem's code: browsers
    see a close code and reason, never a refused handshake's status."""
    await ws.accept(subprotocol=subprotocol)
    await ws.send_text(error_frame(problem))
    await ws.close(close_code_for(problem), close_reason(problem.detail))


async def stream(
    scope: Scope, receive: Receive, send: Send, shared: SharedFrames, feeds: Feeds
) -> None:
    """The WebSocket endpoint (ASGI): check, accept, follow until something ends it."""
    opened = await _open(scope, receive, send, shared, feeds)
    if opened is None:
        return
    session, member, holding = opened
    try:
        with session.runtime.metrics.stream_open("websocket"):
            await session.run()
    finally:
        holding.__exit__(None, None, None)
        if member is not None:  # closed, drained or ended: its partitions go on
            with contextlib.suppress(Exception):
                await member.leave()


async def _open(
    scope: Scope, receive: Receive, send: Send, shared: SharedFrames, feeds: Feeds
) -> tuple[StreamSession, GroupMember | None, AbstractContextManager[None]] | None:
    """Check the stream's request and accept it: the session, its group membership and
    the tenant's connection it holds (None: refused, and answered). Apart from the
    endpoint so that what the checks needed is not kept while the stream is open."""
    ws = WebSocket(scope, receive, send)
    runtime = open_runtime(ws)
    if runtime is None or runtime.drain.started:
        problem = Problem(ProblemType.SHUTTING_DOWN, "the server is not serving streams now")
        await refuse(ws, problem, None)
        return None
    settings = runtime.settings
    if not origin_allowed(ws, settings.stream_allowed_origins):
        origin = ws.headers.get("origin")
        denied = Problem(ProblemType.FORBIDDEN, f"pages from {origin!r} may not open streams here")
        await ws.send_denial_response(denied.response())
        return None
    subprotocol = None
    holding: AbstractContextManager[None] | None = None
    try:
        credential, subprotocol = subprotocol_credential(scope.get("subprotocols", []))
        credential = credential or url_credential(ws)
        target = await runtime.topic_request(ws, Scope_.TOPICS_READ, credential=credential)
        params = query_of(ws)
        start = start_of(params)
        close_on_gap = on_gap_param(params)
        only = filter_of(params)
        window = CreditWindow(credit_param(params))
        grouped = group_params(params, settings)
        if grouped is not None:  # the scopes of a group fetch
            require_scope(target.principal, Scope_.GROUPS_READ)
        info = await target.log.get_topic(target.stored)
        tenant = target.principal.tenant
        limits = await runtime.quotas.limits(tenant)
        holding = runtime.quotas.connection(tenant, limits)
        holding.__enter__()
        member = None
        if grouped is None:
            positions = await resolve(target.log, target.stored, info.partitions, start)
        else:
            service = GroupService(runtime.groups, runtime.log)
            member_id = grouped.member_id or uuid.uuid4().hex
            member = GroupMember(
                service, target.principal.namespace, grouped, target.stored, member_id
            )
            positions = (await member.join()).starts
        await ws.accept(subprotocol=subprotocol)
    except (GatewayError, StorageError, TenantError, CoordinatorError) as exc:
        if holding is not None:
            holding.__exit__(None, None, None)
        await refuse(ws, problem_for(exc), subprotocol)
        return None
    except BaseException:
        if holding is not None:
            holding.__exit__(None, None, None)
        raise
    # Nothing reads the handshake's headers from here on; an idle stream need not keep them.
    scope["headers"].clear()
    follower = Follower(
        target.log,
        target.stored,
        positions,
        shared,
        frame_bytes=settings.stream_frame_bytes,
        only=only,
        allow_empty=member is not None,  # a member may be assigned nothing (yet)
        every=member is None and start.positions is None and start.partitions is None,
    )
    session = StreamSession(
        ws,
        receive,
        send,
        runtime,
        follower,
        shared,
        tenant=tenant,
        fmt=info.config.value_format,
        window=window,
        close_on_gap=close_on_gap,
        expires_at_ms=target.principal.expires_at_ms,
        # A consume rate is charged per frame by the pump: such streams read alone,
        # and so do group members (their partitions change with the generation).
        feeds=feeds if limits.consume_bytes_per_second is None and member is None else None,
        group=member,
    )
    return session, member, holding
