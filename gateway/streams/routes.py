"""The streams feature: a topic followed live over WebSocket or Server-Sent Events.

`/v1/topics/{topic}/stream` is a WebSocket route; a plain GET on it (no
upgrade) answers 426. `/v1/topics/{topic}/events` is the SSE stream.
`/streams/viewer` is a small page that follows a topic over both. The
reads and rendered frames every stream of the process shares live here
(`SharedFrames`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from gateway.http.problems import GatewayError, ProblemType
from gateway.http.runtime import runtime_of
from gateway.http.settings import Settings
from gateway.streams import sse, websocket
from gateway.streams.feeds import Feeds
from gateway.streams.follower import SharedFrames
from tenants.principal import Scope as Scope_

STREAM_PATH = "/v1/topics/{topic}/stream"
EVENTS_PATH = "/v1/topics/{topic}/events"
VIEWER_PATH = "/streams/viewer"
VIEWER_PAGE = (Path(__file__).parent / "viewer.html").read_bytes()
VIEWER_HEADERS = {
    # The page's own inline script and connections back to this origin, nothing else.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


class _WebSocketEndpoint:
    """The WebSocket route's ASGI app (a plain callable object: Starlette then hands it
    the raw ASGI channel rather than wrapping it)."""

    def __init__(self, shared: SharedFrames, feeds: Feeds) -> None:
        self.shared = shared
        self.feeds = feeds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await websocket.stream(scope, receive, send, self.shared, self.feeds)


class Streams:
    """Live streams of one process and what they share."""

    def __init__(self, settings: Settings) -> None:
        self.shared = SharedFrames(settings.fetch_render_cache_bytes)
        self.feeds = Feeds(
            self.shared,
            frame_records=settings.stream_frame_records,
            frame_bytes=settings.stream_frame_bytes,
        )

    async def events(self, request: Request) -> Response:
        return await sse.events(request, self.shared)

    async def upgrade_required(self, request: Request) -> Response:
        """A plain GET: the credential and the topic are checked as for any request (a
        topic the caller cannot see is 404, as everywhere), then 426."""
        target = await runtime_of(request).topic_request(request, Scope_.TOPICS_READ)
        await target.log.get_topic(target.stored)
        raise GatewayError(
            ProblemType.UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client "
            "(or follow the topic as Server-Sent Events at /events)",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    async def viewer(self, request: Request) -> Response:
        """A page that follows a topic over both transports (`#topic=…&token=…`): the
        fragment, token included, never reaches a server or its logs."""
        return HTMLResponse(VIEWER_PAGE, headers=VIEWER_HEADERS)

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute(STREAM_PATH, _WebSocketEndpoint(self.shared, self.feeds)),
            Route(STREAM_PATH, self.upgrade_required, methods=["GET"]),
            Route(EVENTS_PATH, self.events, methods=["GET"]),
            Route(VIEWER_PATH, self.viewer, methods=["GET"]),
        ]


def routes(settings: Settings) -> list[BaseRoute]:
    return Streams(settings).routes()
