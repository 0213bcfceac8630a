"""What every HTTP request leaves behind: its id, its count and latency, its log line.

An ordinary ASGI middleware, added to the app like any other, so produce and
fetch (hot routes, matched by `FastRouter` inside the same chain) are seen
exactly as every other route. For each request it:

* settles the request's id (`request_ids`) and returns it as `X-Request-ID`
  on the reply (the 500 of an unhandled error gets it from the error handler,
  which answers outside this middleware);
* counts it by route template and status, with its duration (`Metrics`). The
  route is what the router left in `scope["route"]` (Starlette's router and
  `FastRouter` both set it), by template, never by path; a request no route
  took is `unmatched`. A handler that raised without replying counts as 500,
  which is what the server answers then;
* with the access log on, writes one event: request id, tenant (when the
  credential was verified), method, route, path (never the query string,
  where a browser's token may be), status, duration and client address.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.headers import header_value
from gateway.http.metrics import UNMATCHED_ROUTE, Metrics
from gateway.http.request_ids import HEADER, SCOPE_KEY, TENANT_SCOPE_KEY, request_id_from

access_log = logging.getLogger("tidegate.access")


class RequestObserver:
    """Request ids, request metrics and the access log, for every HTTP request.

    Every request pays for it, so it does only what it must: one scan of the
    headers for the id, one wrapper around `send` (for the status and the id
    header), two clock reads, and two dictionary lookups for its route's series.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, log_requests: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        self._routes = metrics.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = request_id_from(header_value(scope["headers"], HEADER))
        scope[SCOPE_KEY] = request_id
        status = 500

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            elapsed = perf_counter() - started
            route: Any = scope.get("route")
            template = UNMATCHED_ROUTE if route is None else getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"]
            by_method = self._routes.get(template)
            series = None if by_method is None else by_method.get(method)
            if series is None:
                series = self.metrics.request_series(template, method)
            series.answered(status, elapsed)
            if self.log_requests:
                _log(scope, request_id, template, status, elapsed)


def _log(scope: Scope, request_id: bytes, route: str, status: int, elapsed: float) -> None:
    client = scope.get("client")
    fields = {
        "request_id": request_id.decode(),
        "tenant": scope.get(TENANT_SCOPE_KEY),
        "method": scope["method"],
        "route": route,
        "path": scope["path"],
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    access_log.info(
        '%s - "%s %s" %d %.1f ms tenant=%s request_id=%s',
        fields["client"],
        fields["method"],
        fields["path"],
        status,
        elapsed * 1000,
        fields["tenant"] or "-",
        fields["request_id"],
        extra={"event": "request", **fields},
    )
