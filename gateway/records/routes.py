"""The records feature: produce and fetch routes, with the state they share in a process.

Both are `HotRoute`s: the router finds them by path segments before any other
route, inside the same middleware chain as every route.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.http.rendered import RenderedRecords
from gateway.http.routing import HotRoute
from gateway.http.runtime import runtime_of
from gateway.http.settings import Settings
from gateway.http.woken import WokenReads
from gateway.records import fastpath, fetch, produce
from gateway.records.partitioner import RoundRobin


class Records:
    """Produce and fetch for one process: its round-robin counters, render cache,
    woken fetches' shared reads and fast paths."""

    def __init__(self, settings: Settings) -> None:
        self.round_robin = RoundRobin()
        self.rendered: RenderedRecords[bytes] = RenderedRecords(settings.fetch_render_cache_bytes)
        self.fast = fastpath.load(settings.fast_paths)
        self.woken = WokenReads()

    async def produce(self, request: Request) -> Response:
        return await produce.produce(request, runtime_of(request), self.round_robin, self.fast)

    async def fetch(self, request: Request) -> Response:
        return await fetch.fetch(request, runtime_of(request), self.rendered, self.fast, self.woken)

    def routes(self) -> list[BaseRoute]:
        return [
            HotRoute("/v1/topics/{topic}/records", self.produce, method="POST"),
            HotRoute("/v1/topics/{topic}/partitions/{partition}/records", self.fetch, method="GET"),
        ]


def routes(settings: Settings) -> list[BaseRoute]:
    return Records(settings).routes()
