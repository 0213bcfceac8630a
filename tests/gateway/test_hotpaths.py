"""The hot-path dispatcher takes exactly the requests the produce and fetch routes take."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Match

from gateway import fetch, produce
from gateway.hotpaths import hot_route


def scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


def routed(method: str, path: str) -> tuple[object, dict[str, str]] | None:
    """What Starlette's own routes make of the request: the endpoint and its parameters."""
    for route in (*produce.routes, *fetch.routes):
        match, child = route.matches(scope(method, path))
        if match is Match.FULL:
            return route.endpoint, child["path_params"]
    return None


segments = st.sampled_from(["orders", "a.b-c_d", "x", "", "partitions", "records", "0", "-1"])


@given(st.sampled_from(["GET", "POST", "PUT", "HEAD"]), st.lists(segments, max_size=5))
def test_hot_routes_match_what_starlette_routes_match(method: str, parts: list[str]) -> None:
    for path in ("/v1/topics/" + "/".join(parts), "/v1/topics/" + "/".join(parts) + "/records"):
        hot = hot_route(scope(method, path))
        expected = routed(method, path)
        if method == "HEAD":
            assert hot is None  # Starlette answers HEAD itself
        else:
            assert hot == expected, path


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "/v1/topics/orders/records", {"topic": "orders"}),
        ("GET", "/v1/topics/orders/partitions/3/records", {"topic": "orders", "partition": "3"}),
    ],
)
def test_hot_routes_carry_the_path_parameters(
    method: str, path: str, params: dict[str, str]
) -> None:
    hot = hot_route(scope(method, path))
    assert hot is not None
    assert hot[1] == params
    assert hot_route(scope(method, path, root_path="/behind-a-proxy")) is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/topics/records",
        "/v1/topics//records",
        "/v1/topics/a/b/records",
        "/v1/topics/a/partitions//records",
        "/v1/topics/a/partition/0/records",
        "/v2/topics/a/records",
    ],
)
def test_other_paths_go_through_the_app(path: str) -> None:
    assert hot_route(scope("POST", path)) is None
    assert hot_route(scope("GET", path)) is None
