"""Produce and fetch, dispatched without Starlette's middleware and router.

Nearly all of a gateway's traffic is produce and fetch, and for a small request
Starlette's stack (the error middlewares, the router trying each route's
pattern, the route's request and response wrappers, each wrapping `send`) costs
about as much as the request's own work. So `GatewayApp` recognises these two
routes by splitting the path and calls their handlers directly, with the same
`Request`, the same path parameters and the app's own exception handlers. Any
other request, or these paths with another method (405) or under a root path,
goes through the whole Starlette app as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.fetch import fetch
from gateway.produce import produce

Handler = Callable[[Request], Awaitable[Response]]

_PREFIX = "/v1/topics/"
_SUFFIX = "/records"


def hot_route(scope: Scope) -> tuple[Handler, dict[str, str]] | None:
    """The handler and path parameters of a produce or fetch request, else None.

    Matches what the routes `/v1/topics/{topic}/records` (POST) and
    `/v1/topics/{topic}/partitions/{partition}/records` (GET) match: each
    parameter is one non-empty path segment.
    """
    path: str = scope["path"]
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)) or scope.get("root_path"):
        return None
    parts = path[len(_PREFIX) : -len(_SUFFIX)].split("/")
    method = scope["method"]
    if method == "POST" and len(parts) == 1 and parts[0]:
        return produce, {"topic": parts[0]}
    if method == "GET" and len(parts) == 3 and parts[1] == "partitions" and parts[0] and parts[2]:
        return fetch, {"topic": parts[0], "partition": parts[2]}
    return None


class GatewayApp(Starlette):
    """The Starlette app with produce and fetch taken straight to their handlers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = hot_route(scope) if scope["type"] == "http" else None
        if route is None:
            await super().__call__(scope, receive, send)
            return
        handler, params = route
        scope["app"] = self
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except Exception as exc:
            response = await self._handle(request, exc)
        if type(response) is Response and response.background is None:
            # What Response.__call__ sends, without its frame.
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": response.body})
        else:
            await response(scope, receive, send)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        """The response the app's exception handlers give `exc` (most specific first)."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                response = await handler(request, exc)
                assert isinstance(response, Response)
                return response
        raise exc
