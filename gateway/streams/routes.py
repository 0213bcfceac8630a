"""The streams feature: a topic followed live over WebSocket or Server-Sent Events.

`/v1/topics/{topic}/stream` is a WebSocket route; a plain GET on it (no
upgrade) answers 426. `/v1/topics/{topic}/events` is the SSE stream. The
reads and rendered frames every stream of the process shares live here
(`SharedFrames`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from gateway.http.problems import GatewayError, ProblemType
from gateway.http.settings import Settings
from gateway.streams import sse, websocket
from gateway.streams.follower import SharedFrames

STREAM_PATH = "/v1/topics/{topic}/stream"
EVENTS_PATH = "/v1/topics/{topic}/events"


class _WebSocketEndpoint:
    """The WebSocket route's ASGI app (a plain callable object: Starlette then hands it
    the raw ASGI channel rather than wrapping it)."""

    def __init__(self, shared: SharedFrames) -> None:
        self.shared = shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await websocket.stream(scope, receive, send, self.shared)


class Streams:
    """Live streams of one process and what they share."""

    def __init__(self, settings: Settings) -> None:
        self.shared = SharedFrames(settings.fetch_render_cache_bytes)

    async def events(self, request: Request) -> Response:
        return await sse.events(request, self.shared)

    async def upgrade_required(self, request: Request) -> Response:
        raise GatewayError(
            ProblemType.UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client "
            "(or follow the topic as Server-Sent Events at /events)",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute(STREAM_PATH, _WebSocketEndpoint(self.shared)),
            Route(STREAM_PATH, self.upgrade_required, methods=["GET"]),
            Route(EVENTS_PATH, self.events, methods=["GET"]),
        ]


def routes(settings: Settings) -> list[BaseRoute]:
    return Streams(settings).routes()
