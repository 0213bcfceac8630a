"""The fast router takes exactly what Starlette's routes take, inside the middleware chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import create_app
from gateway.http.routing import MATCH_CACHE_ENTRIES, MATCH_CACHE_PATH, FastRouter, HotRoute
from gateway.http.settings import Settings

KEY = "tg_routing_test_key_0123456789abcdefgh"
TEMPLATES = ["/v1/topics/{topic}/records", "/v1/topics/{topic}/partitions/{partition}/records"]


async def endpoint(request: Request) -> Response:
    return Response()


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": ""}


segments = st.sampled_from(["orders", "a.b-c_d", "x", "", "partitions", "records", "0", "-1"])


@given(st.sampled_from(TEMPLATES), st.lists(segments, max_size=5), st.booleans())
def test_hot_routes_match_what_starlette_routes_match(
    template: str, parts: list[str], trailing: bool
) -> None:
    hot = HotRoute(template, endpoint, method="POST")
    stock = Route(template, endpoint, methods=["POST"])
    for path in ("/v1/topics/" + "/".join(parts), "/v1/topics/" + "/".join(parts) + "/records"):
        path += "/" if trailing else ""
        match, child = stock.matches(scope("POST", path))
        expected = child["path_params"] if match is Match.FULL else None
        assert hot.match_path(path) == expected, path


def test_a_hot_route_refuses_a_template_it_cannot_match_exactly() -> None:
    with pytest.raises(ValueError, match="whole segments"):
        HotRoute("/v1/topics/{topic:path}/records", endpoint, method="POST")
    with pytest.raises(ValueError, match="whole segments"):
        HotRoute("/v1/topics/x-{topic}/records", endpoint, method="POST")


class Recorder:
    """A plain ASGI middleware that notes every request and its status."""

    seen: list[tuple[str, str, int]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                Recorder.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, bootstrap_key=KEY)  # type: ignore[arg-type]
    Recorder.seen = []
    app = create_app(settings, middleware=[Middleware(Recorder)])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as c,
    ):
        yield c


@pytest.mark.anyio
async def test_a_middleware_added_the_ordinary_way_sees_produce_and_fetch(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/topics", json={"name": "t", "partitions": 1})
    assert created.status_code == 201
    produced = await client.post("/v1/topics/t/records", json={"records": [{"value": 1}]})
    assert produced.status_code == 200
    fetched = await client.get("/v1/topics/t/partitions/0/records?offset=0")
    assert fetched.json()["records"][0]["value"] == 1
    missing = await client.post("/v1/topics/nope/records", json={"records": [{"value": 1}]})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert Recorder.seen == [
        ("POST", "/v1/topics", 201),
        ("POST", "/v1/topics/t/records", 200),
        ("GET", "/v1/topics/t/partitions/0/records", 200),
        ("POST", "/v1/topics/nope/records", 404),
    ]


@given(st.sampled_from(["GET", "POST"]), st.lists(segments, max_size=5))
def test_the_remembered_match_is_the_match(method: str, parts: list[str]) -> None:
    routes = [HotRoute(t, endpoint, method=m) for t in TEMPLATES for m in ("GET", "POST")]
    router = FastRouter(routes)
    path = "/v1/topics/" + "/".join(parts)
    for _ in range(2):  # the first is matched, the second remembered
        found = router.match_hot(method, path)
        expected = next(
            (
                (r, p)
                for r in routes
                if r.method == method and (p := r.match_path(path)) is not None
            ),
            None,
        )
        assert found == expected


def test_the_remembered_matches_are_bounded() -> None:
    router = FastRouter([HotRoute(TEMPLATES[0], endpoint, method="POST")])
    for i in range(MATCH_CACHE_ENTRIES + 10):
        router.match_hot("POST", f"/v1/topics/t{i}/records")
    router.match_hot("GET", "/" + "x" * (MATCH_CACHE_PATH + 1))
    assert len(router._matched) <= MATCH_CACHE_ENTRIES
