"""The OpenAPI document and the route table describe the same API: no undocumented routes."""

from __future__ import annotations

import orjson
from starlette.routing import Route, WebSocketRoute

from gateway.app import create_app
from gateway.http.problems import ProblemType
from gateway.http.settings import Settings
from gateway.openapi import document


def route_table() -> set[tuple[str, str]]:
    app = create_app(Settings())
    pairs = set()
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            # Documented as the GET of its path, which a plain request (426) shares.
            assert (route.path, "get") in documented(), route.path
            continue
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                pairs.add((route.path, method.lower()))
    return pairs


def documented() -> set[tuple[str, str]]:
    doc = orjson.loads(document())
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in methods}


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    assert route_table() == documented()


def test_the_document_lists_every_problem_type() -> None:
    doc = orjson.loads(document())
    listed = doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert listed == [p.uri for p in ProblemType]


def test_problem_types_are_unique_and_stable() -> None:
    slugs = [p.slug for p in ProblemType]
    assert len(slugs) == len(set(slugs))
    assert ProblemType.TOPIC_NOT_FOUND.uri == "https://tidegate.dev/problems/topic-not-found"


def test_every_operation_lists_the_refusals_made_before_any_route() -> None:
    """A head over the limit (431) or past its deadline (408) can meet any operation."""
    doc = orjson.loads(document())
    methods = {"get", "post", "put", "patch", "delete"}
    missing = [
        (path, method, status)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in methods
        for status in ("408", "431")
        if status not in op["responses"]
    ]
    assert missing == []
