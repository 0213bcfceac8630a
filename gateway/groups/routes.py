"""The consumer-groups feature: its routes and the coordinator service they share.

The service keeps nothing about a group between requests (it is all in the
GroupStore); it is built once the runtime is open, from its group store and
log, so any gateway process serves any member. The group fetch, a consumer's
every request, is a `HotRoute`: found by path segments before the other routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.coordinator.service import GroupService
from gateway.groups import admin, describe, fetch, members, positions
from gateway.http.recordjson import FetchRenderer
from gateway.http.rendered import RenderedRecords
from gateway.http.routing import HotRoute
from gateway.http.runtime import Runtime, runtime_of
from gateway.http.settings import Settings

Handler = Callable[[Request, Runtime, GroupService], Awaitable[Response]]


class Groups:
    """`renderer`: the records feature's C renderer when it is on (the wiring hands
    it over), else None and records are rendered by the floor's reference. The
    group fetches of the process share `shared` (see `fetch.Shared`)."""

    def __init__(self, settings: Settings, renderer: FetchRenderer | None = None) -> None:
        self.shared = fetch.Shared(
            RenderedRecords(settings.fetch_render_cache_bytes), positions.Codec(), renderer
        )
        self._service: GroupService | None = None
        self._runtime: Runtime | None = None

    def service(self, runtime: Runtime) -> GroupService:
        if self._service is None or self._runtime is not runtime:
            self._service = GroupService(runtime.groups, runtime.log)
            self._runtime = runtime
        return self._service

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            runtime = runtime_of(request)
            return await handler(request, runtime, self.service(runtime))

        run.__name__ = handler.__name__
        return run

    def routes(self) -> list[BaseRoute]:
        async def read_offsets(request: Request) -> Response:
            return await members.read_offsets(request, runtime_of(request))

        async def group_fetch(request: Request) -> Response:
            runtime = runtime_of(request)
            return await fetch.group_fetch(request, runtime, self.service(runtime), self.shared)

        e = self.endpoint
        return [
            Route("/v1/groups", e(describe.list_groups), methods=["GET"]),
            Route("/v1/groups/{group}", e(describe.describe), methods=["GET"]),
            Route("/v1/groups/{group}", e(admin.delete_group), methods=["DELETE"]),
            Route("/v1/groups/{group}/members", e(members.join), methods=["POST"]),
            Route("/v1/groups/{group}/members/{member_id}", e(members.leave), methods=["DELETE"]),
            Route(
                "/v1/groups/{group}/members/{member_id}/heartbeat",
                e(members.heartbeat),
                methods=["POST"],
            ),
            HotRoute("/v1/groups/{group}/records", group_fetch, method="GET"),
            Route("/v1/groups/{group}/offsets", e(members.commit), methods=["POST"]),
            Route("/v1/groups/{group}/offsets", read_offsets, methods=["GET"]),
            Route("/v1/groups/{group}/offsets/reset", e(admin.reset_offsets), methods=["POST"]),
        ]


def routes(settings: Settings, renderer: FetchRenderer | None = None) -> list[BaseRoute]:
    return Groups(settings, renderer).routes()
