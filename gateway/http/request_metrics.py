"""An ordinary ASGI middleware that counts every HTTP request by route template and status.

It is added to the app like any other middleware, so produce and fetch (hot
routes, matched by `FastRouter` inside the same chain) are counted exactly as
every other route. The route is what the router left in `scope["route"]`
(both Starlette's router and `FastRouter` set it), labelled by its template
(`/v1/topics/{topic}/records`), never by the path; a request no route took is
`unmatched`. The duration runs from the request's arrival at the app to its
last reply byte. A request whose handler raised without replying counts as
500, which is what the server answers then.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.metrics import UNMATCHED_ROUTE, Metrics


class RequestMetrics:
    """Counts each HTTP request into `metrics` once it has been answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            route: Any = scope.get("route")
            template = UNMATCHED_ROUTE if route is None else getattr(route, "path", UNMATCHED_ROUTE)
            series = self.metrics.request_series(template, scope["method"])
            series.count(status)
            series.duration.observe(time.perf_counter() - started)
