"""A long-poll's wait: until the log wakes it, the client goes away, or the drain begins.

Shared by every feature that parks a request on the log (a partition fetch, a
group fetch). Bounds: at most `TIDEGATE_MAX_LONG_POLLS` requests wait at once
(more get 503 + Retry-After); the wait itself is bounded by the timeout the
caller's awaitable carries.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from gateway.http.problems import GatewayError, ProblemType
from gateway.http.protocol import WATCH_DISCONNECT, DisconnectWatch
from gateway.http.runtime import Runtime


class ClientGone(Exception):
    """The client disconnected while its request was waiting."""


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the ASGI server says http.disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def wait_interruptibly(
    request: Request, runtime: Runtime, wait: Callable[[], Awaitable[bool]]
) -> bool:
    """Await `wait()` (a log wake-up with its own timeout); False on the drain.

    Raises ClientGone if the client disconnects first. On the gateway's own
    protocol the wait is the request's task awaiting the log's one future:
    a lost connection or the drain cancels that task (and the cancellation is
    taken back here), so a wake-up resumes one task and nothing else. Other
    ASGI servers get helper tasks watching `receive()` and the drain, every
    one cancelled before returning, so nothing outlives the request.
    """
    metrics = runtime.metrics
    if metrics.longpoll_waiters >= runtime.settings.max_long_polls:
        raise GatewayError(
            ProblemType.TOO_MANY_WAITERS,
            f"{runtime.settings.max_long_polls} fetches are already waiting; retry shortly",
            headers={"Retry-After": "1"},
        )
    watch: DisconnectWatch | None = request.scope.get(WATCH_DISCONNECT)
    task = asyncio.current_task()
    if watch is None or task is None:
        return await _wait_with_helpers(request, runtime, wait)
    why: list[bool] = []  # [True]: the client left; [False]: the drain began

    def interrupt(gone: bool) -> None:
        if not why:
            why.append(gone)
            task.cancel()

    on_drain = functools.partial(interrupt, False)
    unwatch = watch(functools.partial(interrupt, True))
    if unwatch is None:
        raise ClientGone
    runtime.drain.watchers.add(on_drain)
    metrics.longpoll_waiters += 1
    try:
        return await wait()
    except asyncio.CancelledError:
        if not why:
            raise  # cancelled from elsewhere (the server shutting down): not ours to keep
        task.uncancel()
        if why[0]:
            raise ClientGone from None
        return False
    finally:
        metrics.longpoll_waiters -= 1
        unwatch()
        runtime.drain.watchers.discard(on_drain)


async def _wait_with_helpers(
    request: Request, runtime: Runtime, wait: Callable[[], Awaitable[bool]]
) -> bool:
    metrics = runtime.metrics
    waiting = asyncio.ensure_future(wait())
    gone = asyncio.ensure_future(_disconnected(request))
    drain = asyncio.ensure_future(runtime.drain.draining.wait())
    metrics.longpoll_waiters += 1
    try:
        done, _pending = await asyncio.wait(
            {waiting, gone, drain}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        metrics.longpoll_waiters -= 1
        for task in (waiting, gone, drain):
            task.cancel()
        await asyncio.gather(waiting, gone, drain, return_exceptions=True)
    if waiting in done:
        return waiting.result()
    if gone in done:
        raise ClientGone
    return False
