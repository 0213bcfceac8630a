"""Request ids on every reply, one JSON event a line, and no secret in any log line.

A real server with `TIDEGATE_LOG_FORMAT=json` and the access log on is sent
the operator key, a tenant's key and a token minted from it, in the
`Authorization` header, as `access_token` in URLs and in other headers, on
routes that succeed and that fail; then the whole of its log output is
searched for each secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.http.connlimits import FD_HEADROOM, segment_file_bound
from tests.gateway.conftest import GatewayProcess
from tests.support.waiting import poll_until

ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {
        "TIDEGATE_LOG_FORMAT": "json",
        "TIDEGATE_ACCESS_LOG": "true",
        "TIDEGATE_LOG_LEVEL": "info",
    }
    gateway = GatewayProcess(tmp_path_factory.mktemp("logs") / "data", env=env).start()
    try:
        yield gateway
    finally:
        gateway.stop()


def events(server: GatewayProcess) -> list[dict[str, object]]:
    """Every log line of the server, each one JSON object. (The harness writes stdout,
    where a first start prints its banner for people, into the same file.)"""
    lines = server.output().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_every_reply_carries_a_request_id_the_client_may_choose(server: GatewayProcess) -> None:
    with server.client() as api:
        mine = api.get("/v1/topics", headers={"X-Request-ID": "order-1234:retry.2"})
        assert mine.headers["x-request-id"] == "order-1234:retry.2"
        fresh = api.get("/v1/topics")
        assert ID.fullmatch(fresh.headers["x-request-id"])
        forged = api.get("/v1/topics", headers={"X-Request-ID": "x" * 200})
        assert ID.fullmatch(forged.headers["x-request-id"])
        for reply in (
            api.post("/v1/topics/absent/records", json={"records": [{"value": 1}]}),  # hot, 404
            api.get("/no/such/path"),
            api.delete("/healthz"),  # 405
            httpx.get(f"{server.url}/v1/topics"),  # 401, no credential
            api.post("/v1/topics", content=b"{", headers={"content-type": "application/json"}),
        ):
            assert reply.status_code >= 400
            assert ID.fullmatch(reply.headers["x-request-id"]), reply.status_code


def test_the_access_log_is_one_json_event_a_request(server: GatewayProcess) -> None:
    with server.client() as api:
        api.post("/v1/topics", json={"name": "logged", "partitions": 1})
        reply = api.post(
            "/v1/topics/logged/records",
            json={"records": [{"value": 1}]},
            headers={"X-Request-ID": "produce-one"},
        )
        assert reply.status_code == 200

    def produced() -> list[dict[str, object]]:
        return [e for e in events(server) if e.get("request_id") == "produce-one"]

    found = poll_until(produced, lambda found: len(found) == 1, what="the access event")
    event = found[0]
    assert event["event"] == "request"
    assert event["logger"] == "tidegate.access"
    assert event["tenant"] == "default"
    assert event["route"] == "/v1/topics/{topic}/records"
    assert event["path"] == "/v1/topics/logged/records"
    assert event["status"] == 200
    assert isinstance(event["duration_ms"], float)
    assert {"time", "level", "message"} <= event.keys()


def test_no_key_or_token_appears_in_any_log_line(server: GatewayProcess, tmp_path: Path) -> None:
    operator = server.bootstrap_key
    assert operator is not None
    with server.client() as api:
        api.post("/v1/admin/tenants", json={"name": "secretive"})
        minted = api.post(
            "/v1/admin/tenants/secretive/keys", json={"scopes": ["topics:read", "topics:write"]}
        ).json()
        key = minted["key"]
        token = httpx.post(
            f"{server.url}/v1/tokens", headers={"Authorization": f"Bearer {key}"}
        ).json()["access_token"]
    secrets = [operator, key, token]
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        for secret in secrets:
            bearer = {"Authorization": f"Bearer {secret}"}
            c.post("/v1/topics", json={"name": "s", "partitions": 1}, headers=bearer)
            c.get("/v1/topics", headers=bearer)
            c.post("/v1/topics/s/records", json={"records": [{"value": 1}]}, headers=bearer)
            c.get(f"/v1/topics/s/partitions/0/records?offset=0&access_token={secret}")
            c.get(f"/v1/topics?access_token={secret}", headers=bearer)
            c.get(f"/no/such/{secret}?access_token={secret}")
            c.get("/v1/topics", headers={"Authorization": f"Basic {secret}"})  # wrong scheme
            c.get("/v1/topics", headers={"Authorization": f"Bearer {secret}x"})  # a bad key
            c.get("/v1/topics", headers={**bearer, "X-Request-ID": secret})
            c.get("/metrics", headers=bearer)
    assert server.stop() == 0  # the drain and close log lines are in the output too
    output = server.output()
    access = [e for e in events(server) if e.get("event") == "request"]
    assert len(access) >= 10 * len(secrets)
    for secret in secrets:
        # A path may carry anything a client sent; the key's id part alone is no secret.
        assert secret not in output
        # The last 24 characters are secret material in a key and a token; a "_"-split
        # tail may be two random letters that appear anywhere by chance.
        assert secret[-24:] not in output
    server.start()  # the module's other tests may run after this one


BOUND = re.compile(
    r"keeping at most (\d+) segment files open \(derived from the descriptor limit (\d+)"
)


def test_the_start_states_the_bound_on_open_segment_files(server: GatewayProcess) -> None:
    """Unset, TIDEGATE_MAX_OPEN_FILES is derived from the descriptor limit the
    server raised itself to, and the start says which bound it took: room for it
    half as much again, the 1,000 connections and the spare below the limit."""
    found = [m for e in events(server) if (m := BOUND.match(str(e.get("message"))))]
    assert found  # once a start
    for match in found:
        bound, limit = int(match[1]), int(match[2])
        assert bound == segment_file_bound(None, 1000, limit)
        assert bound * 3 // 2 + 1000 + FD_HEADROOM <= limit or bound == 1024
