"""Live streams against a real gateway process with real clients (websockets, httpx-sse):
every record once and in order, exact resume, gaps when retention took a position,
credit, and what refuses a stream with which code."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from tenants.tokens import TokenSigner
from tests.gateway.conftest import REPO, GatewayProcess
from tests.support.streams import (
    frame,
    in_order_once,
    positions_after,
    produce,
    sse_records,
    ws_records,
)
from tests.support.waiting import poll_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {"TIDEGATE_RETENTION_INTERVAL_S": "0.2"}
    server = GatewayProcess(tmp_path_factory.mktemp("streams") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def http(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers, timeout=30) as c:
        yield c


def ws_url(gateway: GatewayProcess, topic: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{gateway.port}/v1/topics/{topic}/stream" + (
        f"?{query}" if query else ""
    )


async def create(http: httpx.AsyncClient, topic: str, partitions: int = 1, **config: Any) -> None:
    reply = await http.post(
        "/v1/topics", json={"name": topic, "partitions": partitions, "config": config}
    )
    assert reply.status_code == 201, reply.text


async def token(http: httpx.AsyncClient, **body: Any) -> str:
    reply = await http.post("/v1/tokens", json={"scopes": ["topics:read"], **body})
    assert reply.status_code == 201, reply.text
    value: str = reply.json()["access_token"]
    return value


async def test_a_websocket_and_an_sse_client_each_get_1000_records_once_in_order(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name, partitions=3)
    async with connect(ws_url(gateway, topic_name), additional_headers=gateway.headers) as ws:
        hello = await frame(ws)
        assert hello == {"type": "subscribed", "from": "0:0,1:0,2:0", "partitions": [0, 1, 2]}
        async with aconnect_sse(http, "GET", f"/v1/topics/{topic_name}/events") as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            events = source.aiter_sse()
            first = await anext(events)
            assert (first.event, first.id) == ("subscribed", "0:0,1:0,2:0")
            producing = asyncio.create_task(produce(http, topic_name, list(range(1000))))
            over_ws = await ws_records(ws, 1000)
            over_sse, _last = await sse_records(events, 1000)
            await producing
    for seen in (over_ws, over_sse):
        assert len(seen) == 1000
        assert sorted(v for _p, _o, v in seen) == list(range(1000))  # each exactly once
        assert in_order_once(seen)


async def test_a_websocket_resumes_from_its_position_without_loss_or_repeat(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name, partitions=2)
    await produce(http, topic_name, list(range(600)))
    url = ws_url(gateway, topic_name, "from=earliest")
    async with connect(url, additional_headers=gateway.headers) as ws:
        start = await frame(ws)
        first = await ws_records(ws, 250)
    resume = positions_after(first, {0: 0, 1: 0})
    assert start["from"] == "0:0,1:0"
    await produce(http, topic_name, list(range(600, 1000)))
    token_text = ",".join(f"{p}:{o}" for p, o in sorted(resume.items()))
    async with connect(
        ws_url(gateway, topic_name, f"from={token_text}"), additional_headers=gateway.headers
    ) as ws:
        assert (await frame(ws))["from"] == token_text
        rest = await ws_records(ws, 1000 - len(first))
    seen = first + rest
    assert sorted(v for _p, _o, v in seen) == list(range(1000))
    assert in_order_once(sorted(seen, key=lambda s: (s[0], s[1])))


async def test_sse_resumes_right_after_the_last_event_id(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name, partitions=2)
    await produce(http, topic_name, list(range(600)))
    path = f"/v1/topics/{topic_name}/events"
    async with aconnect_sse(http, "GET", path, params={"from": "earliest"}) as source:
        first, last_id = await sse_records(source.aiter_sse(), 250)
    await produce(http, topic_name, list(range(600, 1000)))
    # The header (what EventSource sends on a reconnect) wins over the page's query.
    headers = {"Last-Event-ID": last_id}
    async with aconnect_sse(
        http, "GET", path, params={"last_event_id": "0:0,1:0"}, headers=headers
    ) as source:
        events = source.aiter_sse()
        subscribed = await anext(events)
        assert subscribed.id == last_id
        rest, _ = await sse_records(events, 750)
    seen = first + rest
    assert sorted(v for _p, _o, v in seen) == list(range(1000))
    assert in_order_once(sorted(seen, key=lambda s: (s[0], s[1])))
    # A browser's first connect: the id it kept, as a query parameter.
    async with aconnect_sse(http, "GET", path, params={"last_event_id": last_id}) as source:
        again, _ = await sse_records(source.aiter_sse(), 1)
    assert again[0] == rest[0]


async def aged_out(gateway: GatewayProcess, http: httpx.AsyncClient, topic: str) -> int:
    """A topic whose first records retention has deleted; its earliest offset now."""
    await create(http, topic, segment_bytes=1024, retention_ms=60_000)
    old = int(time.time() * 1000) - 3_600_000
    await produce(http, topic, [{"pad": "x" * 100, "n": i} for i in range(100)], timestamp=old)

    def start() -> int:
        with gateway.client() as client:
            offset: int = client.get(f"/v1/topics/{topic}").json()["partitions"][0]["start_offset"]
        return offset

    return await asyncio.to_thread(poll_until, start, lambda s: s > 0, what="retention ran")


async def test_a_position_retention_deleted_is_told_as_a_gap_on_both_transports(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    earliest = await aged_out(gateway, http, topic_name)
    gap = {"partition": 0, "requested": 3, "earliest": earliest}
    async with connect(
        ws_url(gateway, topic_name, "from=0:3"), additional_headers=gateway.headers
    ) as ws:
        assert (await frame(ws))["type"] == "subscribed"
        assert await frame(ws) == {"type": "gap", "partitions": [gap]}
        records = await ws_records(ws, 1)
        assert records[0][1] == earliest  # then on from the earliest retained
    path = f"/v1/topics/{topic_name}/events"
    async with aconnect_sse(http, "GET", path, params={"last_event_id": "0:3"}) as source:
        events = source.aiter_sse()
        assert (await anext(events)).event == "subscribed"
        told = await anext(events)
        assert (told.event, orjson.loads(told.data), told.id) == (
            "gap",
            {"partitions": [gap]},
            f"0:{earliest}",
        )
        records, _ = await sse_records(events, 1)
        assert records[0][1] == earliest


async def test_on_gap_close_ends_the_stream_after_the_gap(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    earliest = await aged_out(gateway, http, topic_name)
    url = ws_url(gateway, topic_name, "from=0:0&on_gap=close")
    async with connect(url, additional_headers=gateway.headers) as ws:
        await frame(ws)
        assert (await frame(ws))["partitions"][0]["earliest"] == earliest
        with pytest.raises(ConnectionClosed) as closed:
            await frame(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4410
    path = f"/v1/topics/{topic_name}/events"
    params = {"from": "0:0", "on_gap": "close"}
    async with aconnect_sse(http, "GET", path, params=params) as source:
        kinds = [event.event async for event in source.aiter_sse()]
    assert kinds == ["subscribed", "gap"]  # and the stream ended


async def test_ten_credits_bring_ten_records_then_nothing_until_more(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name)
    await produce(http, topic_name, list(range(50)))
    url = ws_url(gateway, topic_name, "from=earliest&credit=10")
    async with connect(url, additional_headers=gateway.headers) as ws:
        await frame(ws)
        got = await ws_records(ws, 10)
        assert [v for _p, _o, v in got] == list(range(10))
        with pytest.raises(TimeoutError):
            await frame(ws, timeout_s=0.5)  # nothing past the credit
        await ws.send(orjson.dumps({"type": "credit", "records": 5}).decode())
        more = await ws_records(ws, 5)
        assert [v for _p, _o, v in more] == list(range(10, 15))
        with pytest.raises(TimeoutError):
            await frame(ws, timeout_s=0.5)


async def closed_with(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The close code of a refused stream and the error frame before it."""
    async with connect(url, **kwargs) as ws:
        error = await frame(ws)
        with pytest.raises(ConnectionClosed) as closed:
            await frame(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, error


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    document: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return document


def expired_token(gateway: GatewayProcess, like: str) -> str:
    """A token signed by the gateway's own keys that expired five minutes ago."""
    claims = claims_of(like)
    signer = TokenSigner.load_or_create(
        Path(gateway.data_dir) / "token-keys.json",
        issuer=claims["iss"],
        audience=claims["aud"],
        rotate_after_s=86_400,
        keep_s=3_720,
    )
    return signer.sign(
        tenant=claims["tenant"],
        key_id=claims["key_id"],
        subject=claims["sub"],
        scopes=claims["scope"].split(),
        topics=claims["topics"],
        ttl_s=60,
        now_s=time.time() - 400,
    )


async def test_streams_are_refused_with_the_documented_codes(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name)
    url = ws_url(gateway, topic_name)
    code, error = await closed_with(url)
    assert (code, error["type"], error["problem"]["status"]) == (4401, "error", 401)
    code, _ = await closed_with(url + f"?access_token={gateway.bootstrap_key}")
    assert code == 4401  # an API key never goes in a URL
    other = await token(http, topics=["elsewhere*"])
    code, error = await closed_with(url + f"?access_token={other}")
    assert (code, error["problem"]["status"]) == (4403, 403)
    fresh = await token(http)
    code, _ = await closed_with(url + f"?access_token={expired_token(gateway, fresh)}")
    assert code == 4401
    code, _ = await closed_with(
        ws_url(gateway, "no-such-topic"), additional_headers=gateway.headers
    )
    assert code == 4404
    code, _ = await closed_with(url + "?from=later", additional_headers=gateway.headers)
    assert code == 4400
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url + f"?access_token={fresh}", origin=Origin("https://evil.example")):
            pass
    assert refused.value.response.status_code == 403
    # The gateway's own pages (same origin) and browsers' subprotocol way in.
    same = f"http://127.0.0.1:{gateway.port}"
    offered = [Subprotocol("tidegate.v1"), Subprotocol(f"bearer.{fresh}")]
    async with connect(url, origin=Origin(same), subprotocols=offered) as ws:
        assert ws.subprotocol == "tidegate.v1"
        assert (await frame(ws))["type"] == "subscribed"
    plain = await http.get(f"/v1/topics/{topic_name}/stream")
    assert plain.status_code == 426
    assert plain.headers["content-type"] == "application/problem+json"


async def test_sse_takes_a_token_in_the_url_and_refuses_like_any_request(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name)
    path = f"{gateway.url}/v1/topics/{topic_name}/events"
    async with httpx.AsyncClient(timeout=10) as anonymous:
        assert (await anonymous.get(path)).status_code == 401
        fresh = await token(http)
        expired = expired_token(gateway, fresh)
        assert (await anonymous.get(path, params={"access_token": expired})).status_code == 401
        other = await token(http, topics=["elsewhere*"])
        assert (await anonymous.get(path, params={"access_token": other})).status_code == 403
        async with aconnect_sse(anonymous, "GET", path, params={"access_token": fresh}) as source:
            assert (await anext(source.aiter_sse())).event == "subscribed"


async def test_a_stream_ends_when_its_token_expires(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name)
    short = await token(http, ttl_seconds=1)
    began = time.monotonic()
    async with connect(ws_url(gateway, topic_name, f"access_token={short}")) as ws:
        assert (await frame(ws))["type"] == "subscribed"
        error = await frame(ws, timeout_s=5)
        with pytest.raises(ConnectionClosed) as closed:
            await frame(ws)
    assert error["problem"]["status"] == 401
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token expired")
    assert time.monotonic() - began < 5
    path = f"/v1/topics/{topic_name}/events"
    short = await token(http, ttl_seconds=1)
    params = {"access_token": short}
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous,
        aconnect_sse(anonymous, "GET", path, params=params) as source,
    ):
        kinds = [(e.event, e.data) async for e in source.aiter_sse()]
    assert [k for k, _ in kinds] == ["subscribed", "error"]
    assert orjson.loads(kinds[1][1])["status"] == 401


async def test_the_tenants_connection_quota_refuses_one_stream_too_many(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    tenant = f"q{topic_name[-6:]}".replace("-", "")
    assert (await http.post("/v1/admin/tenants", json={"name": tenant})).status_code == 201
    reply = await http.post(
        f"/v1/admin/tenants/{tenant}/keys", json={"scopes": ["topics:read", "topics:admin"]}
    )
    key = reply.json()["key"]
    reply = await http.put(f"/v1/admin/tenants/{tenant}/quotas", json={"max_connections": 2})
    assert reply.status_code == 200, reply.text
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as own:
        assert (await own.post("/v1/topics", json={"name": "feed"})).status_code == 201
    url = ws_url(gateway, "feed")
    async with (
        connect(url, additional_headers=headers) as one,
        connect(url, additional_headers=headers) as two,
    ):
        await frame(one)
        await frame(two)
        code, error = await closed_with(url, additional_headers=headers)
    assert (code, error["problem"]["limit"]) == (4429, "max_connections")


async def test_the_docs_websocket_example_runs(
    gateway: GatewayProcess, http: httpx.AsyncClient
) -> None:
    text = (REPO / "docs" / "api.md").read_text()
    section = text[text.index("## Live streams") :]
    script = section[section.index("```python\n") + 10 :]
    script = script[: script.index("```")]
    if (await http.get("/v1/topics/orders")).status_code == 404:
        await create(http, "orders", partitions=3)
    await produce(http, "orders", [{"n": i} for i in range(30)])
    env = dict(os.environ, TIDEGATE_URL=gateway.url, TIDEGATE_API_KEY=gateway.bootstrap_key or "")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "'type': 'subscribed'" in lines[0]
    assert len(lines) >= 2


async def test_a_filtered_stream_gets_only_its_records_and_resumes_exactly(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name, partitions=2)
    batch = [
        {"key": f"user-{i % 3}", "value": i, "headers": {"trace": "t1" if i % 2 else "t2"}}
        for i in range(60)
    ]
    reply = await http.post(f"/v1/topics/{topic_name}/records", json={"records": batch})
    assert reply.status_code == 200
    mine = sorted(i for i in range(60) if i % 3 == 1)
    url = ws_url(gateway, topic_name, "from=earliest&key=user-1")
    async with connect(url, additional_headers=gateway.headers) as ws:
        await frame(ws)
        seen = await ws_records(ws, len(mine))
        with pytest.raises(TimeoutError):
            await frame(ws, timeout_s=0.3)  # nothing else
    assert sorted(v for _p, _o, v in seen) == mine
    path = f"/v1/topics/{topic_name}/events"
    params = {"from": "earliest", "header": "trace:t1", "key": "user-1"}
    both = sorted(i for i in mine if i % 2)
    async with aconnect_sse(http, "GET", path, params=params) as source:
        first, last_id = await sse_records(source.aiter_sse(), 3)
    async with aconnect_sse(
        http, "GET", path, params=params, headers={"Last-Event-ID": last_id}
    ) as source:
        rest, _ = await sse_records(source.aiter_sse(), len(both) - 3)
    assert sorted(v for _p, _o, v in first + rest) == both


async def test_streams_of_every_partition_follow_partitions_added_while_they_are_open(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    await create(http, topic_name, partitions=1)
    headers = gateway.headers
    async with (
        connect(ws_url(gateway, topic_name), additional_headers=headers) as every,
        connect(ws_url(gateway, topic_name, "partitions=0"), additional_headers=headers) as some,
        aconnect_sse(http, "GET", f"/v1/topics/{topic_name}/events") as source,
    ):
        assert (await frame(every))["partitions"] == [0]
        assert (await frame(some))["partitions"] == [0]
        events = source.aiter_sse()
        assert (await anext(events)).event == "subscribed"
        await produce(http, topic_name, ["before"])
        assert [v for _p, _o, v in await ws_records(every, 1)] == ["before"]
        assert [v for _p, _o, v in await ws_records(some, 1)] == ["before"]
        assert [v for _p, _o, v in (await sse_records(events, 1))[0]] == ["before"]
        # Parked on the feed, with nothing to read: the topic grows to three partitions.
        grown = await http.patch(f"/v1/topics/{topic_name}", json={"partitions": 3})
        assert grown.status_code == 200, grown.text
        records = [{"value": f"p{p}", "partition": p} for p in (2, 1, 0)]
        reply = await http.post(f"/v1/topics/{topic_name}/records", json={"records": records})
        assert reply.status_code == 200, reply.text
        over_ws = await ws_records(every, 3)
        over_sse, last_id = await sse_records(events, 3)
        for seen in (over_ws, over_sse):
            assert sorted((p, o, v) for p, o, v in seen) == [
                (0, 1, "p0"),
                (1, 0, "p1"),
                (2, 0, "p2"),
            ]
        assert last_id == "0:2,1:1,2:1"  # the resume token names the new partitions too
        # A stream of a subset keeps to it.
        assert [(p, v) for p, _o, v in await ws_records(some, 1)] == [(0, "p0")]
        with pytest.raises(TimeoutError):
            await frame(some, 1.5)
