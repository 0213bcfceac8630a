"""Routing that finds the busiest routes first, inside the ordinary middleware chain.

Nearly all of a gateway's traffic is produce and fetch. Starlette's router
tries each route's regular expression in turn, then wraps the endpoint in a
request/response adapter that wraps `send` once more; for a small request
that is a good part of the request's cost. So a feature may declare a route
as a `HotRoute`: its path template is matched by splitting the path into
segments (each `{param}` one non-empty segment, exactly what Starlette's
default `str` convertor matches), before any other route is tried, and its
endpoint is called directly with a `Request`.

Everything else is the stock Starlette app: `GatewayApp` only swaps its
router, so the error middleware, every middleware added with `add_middleware`
or `middleware=[...]`, and the exception handlers see hot routes exactly as
they see every other route (an exception raised by a hot endpoint propagates
to the `ExceptionMiddleware`, which answers it with the app's handlers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from gateway.http.responses import JsonBytes

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoute(Route):
    """A `Route` that `FastRouter` matches by path segments before any other route.

    Only plain `{name}` parameters are allowed (no convertors), so matching a
    segment is exactly what Starlette's own pattern would match.
    """

    def __init__(self, path: str, endpoint: Endpoint, *, method: str) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.hot_endpoint = endpoint
        segments = path[1:].split("/")
        for segment in segments:
            if "{" in segment and not (
                segment.startswith("{") and segment.endswith("}") and ":" not in segment
            ):
                raise ValueError(f"a hot route's parameters are whole segments: {path!r}")
        # (literal or None, parameter name or None) for each segment.
        self.segments = [(None, s[1:-1]) if s.startswith("{") else (s, None) for s in segments]

    def match_path(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` fits the template, else None."""
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for part, (literal, name) in zip(parts, self.segments, strict=True):
            if literal is not None:
                if part != literal:
                    return None
            elif not part:
                return None
            else:
                params[name] = part  # type: ignore[index]
        return params


MATCH_CACHE_ENTRIES = 4096
"""(method, path) pairs whose hot-route match `FastRouter` remembers; cleared when full."""
MATCH_CACHE_PATH = 512
"""Longer paths are matched every time rather than remembered."""


class FastRouter(Router):
    """A Starlette router that tries its `HotRoute`s by segments first.

    Clients ask for the same few paths over and over (a consumer polls one
    partition), so the outcome of matching a (method, path) pair, hot route or
    none, is remembered in a bounded table: matching is a pure function of the
    pair, and a lookup costs a fraction of splitting and comparing segments.
    """

    def __init__(self, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        super().__init__(list(routes), **kwargs)
        self.hot = [r for r in routes if isinstance(r, HotRoute)]
        self._matched: dict[tuple[str, str], tuple[HotRoute, dict[str, str]] | None] = {}

    def match_hot(self, method: str, path: str) -> tuple[HotRoute, dict[str, str]] | None:
        """The hot route for `method` and `path` and its path parameters, or None."""
        key = (method, path)
        matched = self._matched.get(key, False)
        if matched is not False:
            return matched  # type: ignore[return-value]
        matched = None
        for route in self.hot:
            if route.method == method:
                params = route.match_path(path)
                if params is not None:
                    matched = (route, params)
                    break
        if len(path) <= MATCH_CACHE_PATH:
            if len(self._matched) >= MATCH_CACHE_ENTRIES:
                self._matched.clear()
            self._matched[key] = matched
        return matched

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            matched = self.match_hot(scope["method"], scope["path"])
            if matched is not None:
                route, params = matched
                scope["path_params"] = dict(params)  # the scope's own: a middleware may change it
                scope["endpoint"] = route.hot_endpoint
                scope["route"] = route
                await _respond(route.hot_endpoint, scope, receive, send)
                return
        await super().app(scope, receive, send)


_PLAIN = (Response, JsonBytes)
"""Response classes whose reply is exactly their status, raw headers and body."""


async def _respond(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """What Starlette's request/response adapter does, without its wrappers."""
    response = await endpoint(Request(scope, receive, send))
    if type(response) in _PLAIN and response.background is None:
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


class GatewayApp(Starlette):
    """The Starlette app with a `FastRouter`; in every other way the stock app."""

    def __init__(self, *, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        lifespan = kwargs.pop("lifespan", None)
        super().__init__(routes=routes, lifespan=lifespan, **kwargs)
        self.router = FastRouter(routes, lifespan=lifespan)
