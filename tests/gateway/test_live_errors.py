"""Every error path of a real server answers problem+json with the right status and type."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.http.problems import PROBLEM_BASE
from tests.gateway.conftest import GatewayProcess

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gateway(gateway_on_both_paths: GatewayProcess) -> GatewayProcess:
    """Every test here runs with the C fast paths and with the reference paths only."""
    return gateway_on_both_paths


@pytest.fixture(scope="module")
def topics(gateway: Any) -> dict[str, str]:
    with gateway.client() as api:
        api.post("/v1/topics", json={"name": "err-json", "partitions": 2})
        api.post(
            "/v1/topics",
            json={"name": "err-small", "config": {"max_record_bytes": 64}},
        )
        api.post("/v1/topics", json={"name": "err-bin", "config": {"value_format": "binary"}})
        api.post("/v1/topics/err-json/records", json={"records": [{"value": 1}]})
    return {"json": "err-json", "small": "err-small", "bin": "err-bin"}


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in r.text
    return body


RECORDS = "/v1/topics/err-json/records"
FETCH = "/v1/topics/err-json/partitions/0/records"

CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # (id, method, path, request kwargs, status, problem slug)
    ("bad name", "GET", "/v1/topics/bad~name", {}, 400, "invalid-name"),
    ("dot name", "POST", "/v1/topics", {"json": {"name": ".."}}, 400, "invalid-name"),
    ("newline name", "POST", "/v1/topics", {"json": {"name": "orders\n"}}, 400, "invalid-name"),
    ("dots newline", "POST", "/v1/topics", {"json": {"name": "..\n"}}, 400, "invalid-name"),
    (
        "newline tenant",
        "POST",
        "/v1/admin/tenants",
        {"json": {"name": "alpha\n"}},
        400,
        "invalid-tenant-name",
    ),
    ("unknown topic", "GET", "/v1/topics/nope", {}, 404, "topic-not-found"),
    (
        "unknown topic fetch",
        "GET",
        "/v1/topics/nope/partitions/0/records",
        {},
        404,
        "topic-not-found",
    ),
    (
        "bad partition",
        "GET",
        "/v1/topics/err-json/partitions/9/records",
        {},
        404,
        "partition-not-found",
    ),
    (
        "partition not int",
        "GET",
        "/v1/topics/err-json/partitions/x/records",
        {},
        400,
        "invalid-parameter",
    ),
    ("offset past end", "GET", FETCH, {"params": {"offset": 50}}, 416, "offset-out-of-range"),
    ("negative offset", "GET", FETCH, {"params": {"offset": -3}}, 400, "invalid-parameter"),
    ("offset word", "GET", FETCH, {"params": {"offset": "middle"}}, 400, "invalid-parameter"),
    ("bad max_records", "GET", FETCH, {"params": {"max_records": 0}}, 400, "invalid-parameter"),
    ("bad max_wait", "GET", FETCH, {"params": {"max_wait_ms": "soon"}}, 400, "invalid-parameter"),
    (
        "offset and time",
        "GET",
        FETCH,
        {"params": {"offset": 0, "timestamp": 1}},
        400,
        "invalid-parameter",
    ),
    ("topic exists", "POST", "/v1/topics", {"json": {"name": "err-json"}}, 409, "topic-exists"),
    (
        "bad config",
        "POST",
        "/v1/topics",
        {"json": {"name": "x1", "config": {"retention_ms": "a"}}},
        422,
        "invalid-body",
    ),
    (
        "unknown config",
        "POST",
        "/v1/topics",
        {"json": {"name": "x2", "config": {"colour": 1}}},
        422,
        "invalid-body",
    ),
    (
        "zero partitions",
        "POST",
        "/v1/topics",
        {"json": {"name": "x3", "partitions": 0}},
        422,
        "invalid-body",
    ),
    (
        "create not json",
        "POST",
        "/v1/topics",
        {"content": b"name=x", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported-media-type",
    ),
    ("no media type", "POST", RECORDS, {"content": b"{}"}, 415, "unsupported-media-type"),
    (
        "xml",
        "POST",
        RECORDS,
        {"content": b"<r/>", "headers": {"Content-Type": "application/xml"}},
        415,
        "unsupported-media-type",
    ),
    (
        "malformed json",
        "POST",
        RECORDS,
        {"content": b'{"records": [', "headers": JSON},
        400,
        "malformed-json",
    ),
    (
        "invalid utf-8",
        "POST",
        RECORDS,
        {"content": b'{"records": ["\xff"]}', "headers": JSON},
        400,
        "malformed-json",
    ),
    ("not a records body", "POST", RECORDS, {"json": [1, 2]}, 422, "invalid-body"),
    ("no records", "POST", RECORDS, {"json": {"records": []}}, 422, "invalid-records"),
    (
        "deep bomb",
        "POST",
        RECORDS,
        {"content": b"[" * 100_000, "headers": JSON},
        413,
        "json-too-complex",
    ),
    (
        "wide bomb",
        "POST",
        RECORDS,
        {"content": b"[" + b"{}," * 400_000 + b"{}]", "headers": JSON},
        413,
        "json-too-complex",
    ),
    (
        "body too large",
        "POST",
        RECORDS,
        {"content": b" " * (17 * 1024 * 1024), "headers": JSON},
        413,
        "body-too-large",
    ),
    (
        "too many records",
        "POST",
        RECORDS,
        {"json": {"records": [{"value": 1}] * 10_001}},
        413,
        "too-many-records",
    ),
    (
        "record too large",
        "POST",
        "/v1/topics/err-small/records",
        {"json": {"records": [{"value": "x" * 100}]}},
        413,
        "record-too-large",
    ),
    (
        "bad base64",
        "POST",
        "/v1/topics/err-bin/records",
        {"json": {"records": [{"value": "%%"}]}},
        422,
        "invalid-records",
    ),
    (
        "raw json topic not json",
        "POST",
        RECORDS,
        {"content": b"nope", "headers": {"Content-Type": "text/plain"}},
        422,
        "invalid-records",
    ),
    (
        "raw bad partition",
        "POST",
        RECORDS,
        {"content": b"1", "params": {"partition": "x"}, "headers": {"Content-Type": "text/plain"}},
        400,
        "invalid-parameter",
    ),
    (
        "bad idempotency key",
        "POST",
        RECORDS,
        {"json": {"records": [{"value": 1}]}, "headers": {"Idempotency-Key": "a b"}},
        400,
        "invalid-parameter",
    ),
    ("no route", "GET", "/v2/anything", {}, 404, "not-found"),
    ("wrong method", "PUT", "/v1/topics", {}, 405, "method-not-allowed"),
    (
        "patch format of used topic",
        "PATCH",
        "/v1/topics/err-json",
        {"json": {"config": {"value_format": "binary"}}},
        422,
        "invalid-config",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "slug"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_error_paths_answer_problem_json(
    api: httpx.Client,
    topics: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    slug: str,
) -> None:
    assert_problem(api.request(method, path, **kwargs), status, slug)


def test_every_bad_record_is_listed_and_nothing_is_appended(
    api: httpx.Client, topics: dict[str, str]
) -> None:
    before = api.get("/v1/topics/err-json").json()["partitions"]
    records: list[Any] = [
        {"value": 1},
        {"value": 2, "partition": 5},
        "not an object",
        {"value": 3},
        {"value": 4, "key": 7, "timestamp": "now"},
    ]
    body = assert_problem(api.post(RECORDS, json={"records": records}), 422, "invalid-records")
    assert [e["record"] for e in body["errors"]] == [1, 2, 4, 4]
    assert {e["pointer"] for e in body["errors"]} == {
        "/records/1/partition",
        "/records/2",
        "/records/4/key",
        "/records/4/timestamp",
    }
    assert api.get("/v1/topics/err-json").json()["partitions"] == before


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_the_depth_limit_holds_inside_records_whatever_else_is_wrong(
    api: httpx.Client, topics: dict[str, str]
) -> None:
    """The default limit is 64 levels for the whole body: a value may nest 61 deep
    inside `{"records": [{"value": ...}]}`, never 62, and a body too deep is 413
    even when it is also wrong in other ways."""
    topic = "/v1/topics/err-deep"
    assert api.post("/v1/topics", json={"name": "err-deep"}).status_code == 201
    ok = api.post(topic + "/records", json={"records": [{"value": nested(61)}]})
    assert ok.status_code == 200, ok.text
    deep = nested(62)
    bodies: list[Any] = [
        {"records": [{"value": 1}, {"value": deep}]},
        {"records": [{"value": 1, "bogus": True}, {"value": deep}]},
        {"records": [{"value": deep, "headers": {"h": "v"}}]},
        {"records": [{"value": 1}, [deep]]},
        {"records": [{"value": nested(300)}]},
        {"records": 5, "note": nested(64)},
        {"records": [], "note": nested(64)},
        {"records": [{"value": 1}] * 10_001 + [{"value": deep}]},
    ]
    for doc in bodies:
        r = api.post(topic + "/records", json=doc)
        body = assert_problem(r, 413, "json-too-complex")
        assert (body["limit"], body["value"]) == ("depth", 64)
        assert body["position"] > 0
    assert api.get(topic).json()["partitions"][0]["end_offset"] == 1


def test_record_too_large_names_the_record(api: httpx.Client, topics: dict[str, str]) -> None:
    records = [{"value": "ok"}, {"value": "x" * 100}, {"value": "y" * 100}]
    r = api.post("/v1/topics/err-small/records", json={"records": records})
    body = assert_problem(r, 413, "record-too-large")
    assert [e["record"] for e in body["errors"]] == [1, 2]


def test_malformed_ndjson_names_the_line(api: httpx.Client, topics: dict[str, str]) -> None:
    r = api.post(
        RECORDS,
        content=b'{"value": 1}\n{"value": 2}\n{"value": \n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    body = assert_problem(r, 400, "malformed-json")
    assert body["line"] == 3


def test_offset_out_of_range_gives_the_valid_range(
    api: httpx.Client, topics: dict[str, str]
) -> None:
    body = assert_problem(api.get(FETCH, params={"offset": 99}), 416, "offset-out-of-range")
    assert (body["start_offset"], body["end_offset"], body["requested"]) == (0, 1, 99)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tg_wrong_key_000000000000000000000000"},
        {"Authorization": "Basic abc"},
    ],
    ids=["none", "wrong key", "wrong scheme"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/topics"),
        ("POST", "/v1/topics"),
        ("GET", "/v1/topics/err-json"),
        ("POST", RECORDS),
        ("GET", FETCH),
        ("DELETE", "/v1/topics/err-json"),
    ],
)
def test_data_endpoints_need_a_valid_credential(
    gateway: Any, topics: dict[str, str], headers: dict[str, str], method: str, path: str
) -> None:
    r = httpx.request(
        method, gateway.url + path, headers=headers, content=json.dumps({"records": []})
    )
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_operations_endpoints_are_open(gateway: Any) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(gateway.url + path).status_code == 200
