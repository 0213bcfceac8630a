"""Group mode over a real gateway process and the `websockets` client: two WebSocket
members of one group share a topic's partitions, commit frames land (and are fenced by
generation), a member that closes hands its partitions over at the committed offsets, a
member assigned nothing waits for a share, and a drained shutdown leaves the group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import GatewayProcess
from tests.support.streams import frame
from tests.support.waiting import poll_until

pytestmark = pytest.mark.anyio

PARTITIONS = 4
PER_PARTITION = 10


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    server = GatewayProcess(tmp_path_factory.mktemp("group-streams") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def http(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.headers, timeout=30) as c:
        yield c


def member_url(gateway: GatewayProcess, topic: str, group: str) -> str:
    # A short session: heartbeats (a third of it) tell a member of a rebalance quickly.
    return (
        f"ws://127.0.0.1:{gateway.port}/v1/topics/{topic}/stream"
        f"?group={group}&session_timeout_ms=1500"
    )


async def until(
    ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool], seen: list[dict[str, Any]]
) -> dict[str, Any]:
    """Frames until one is `wanted` (every frame read is kept in `seen`)."""
    async with asyncio.timeout(15):
        while True:
            document = await frame(ws)
            seen.append(document)
            if wanted(document):
                return document


def records_of(seen: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [
        (r["partition"], r["offset"]) for f in seen if f["type"] == "records" for r in f["records"]
    ]


async def produce_each(http: httpx.AsyncClient, topic: str, count: int, base: int) -> None:
    records = [{"value": base + i, "partition": p} for p in range(PARTITIONS) for i in range(count)]
    reply = await http.post(f"/v1/topics/{topic}/records", json={"records": records})
    assert reply.status_code == 200, reply.text


async def test_two_members_split_the_partitions_and_one_takes_over_at_the_commits(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    reply = await http.post("/v1/topics", json={"name": topic_name, "partitions": PARTITIONS})
    assert reply.status_code == 201, reply.text
    group = f"{topic_name}-g"
    url = member_url(gateway, topic_name, group)
    a_seen: list[dict[str, Any]] = []
    b_seen: list[dict[str, Any]] = []
    a_ws = await connect(url, additional_headers=gateway.headers)
    try:
        alone = await frame(a_ws)
        assert alone["type"] == "assigned"
        assert alone["assignment"] == list(range(PARTITIONS))
        async with connect(url, additional_headers=gateway.headers) as b_ws:
            b_assigned = await frame(b_ws)
            assert b_assigned["type"] == "assigned"
            generation = b_assigned["generation"]
            assert generation > alone["generation"]
            # `a` hears of the rebalance from its heartbeat: revoked, then its new share.
            a_assigned = await until(a_ws, lambda f: f["type"] == "assigned", a_seen)
            assert a_assigned["generation"] == generation
            revoked = [f for f in a_seen if f["type"] == "revoked"]
            assert [f["partitions"] for f in revoked] == [b_assigned["assignment"]]
            mine, theirs = set(a_assigned["assignment"]), set(b_assigned["assignment"])
            assert mine
            assert theirs
            assert not mine & theirs
            assert mine | theirs == set(range(PARTITIONS))

            await produce_each(http, topic_name, PER_PARTITION, 0)
            want = len(mine) * PER_PARTITION
            await until(a_ws, lambda _f: len(records_of(a_seen)) >= want, a_seen)
            await until(
                b_ws, lambda _f: len(records_of(b_seen)) >= len(theirs) * PER_PARTITION, b_seen
            )
            assert {p for p, _o in records_of(a_seen)} == mine
            assert {p for p, _o in records_of(b_seen)} == theirs
            assert len(records_of(a_seen)) == want  # each once

            # `a` commits: all of one partition, part of the others.
            done, *partial = sorted(mine)
            committed = {done: PER_PARTITION, **{p: 6 for p in partial}}
            offsets = [{"partition": p, "offset": o} for p, o in committed.items()]
            offsets[0]["metadata"] = "by-a"
            await a_ws.send(orjson.dumps({"type": "commit", "offsets": offsets}).decode())
            ack = await until(a_ws, lambda f: f["type"] != "records", a_seen)
            assert ack == {
                "type": "committed",
                "generation": generation,
                "offsets": [{"partition": p, "offset": o} for p, o in sorted(committed.items())],
            }
            listed = await http.get(f"/v1/groups/{group}/offsets")
            assert listed.status_code == 200, listed.text
            stored = {o["partition"]: o for o in listed.json()["offsets"]}
            assert {p: o["offset"] for p, o in stored.items()} == committed
            assert stored[done]["metadata"] == "by-a"

            # A commit in the generation before the rebalance is refused; the stream stays.
            stale = {"type": "commit", "generation": alone["generation"], "offsets": offsets}
            await a_ws.send(orjson.dumps(stale).decode())
            error = await until(a_ws, lambda f: f["type"] != "records", a_seen)
            assert error["type"] == "error"
            assert error["problem"]["type"].endswith("/stale-generation")
            assert error["problem"]["status"] == 409
            # ... nothing of it stored, and `a` still commits in its generation.
            again = await http.get(f"/v1/groups/{group}/offsets")
            assert {o["partition"]: o["offset"] for o in again.json()["offsets"]} == committed

            # `a` closes: it leaves, `b` is assigned all and goes on from `a`'s commits.
            await a_ws.close()
            b_all = await until(b_ws, lambda f: f["type"] == "assigned", b_seen)
            assert b_all["assignment"] == list(range(PARTITIONS))
            assert b_all["generation"] > generation
            before = len(records_of(b_seen))
            await produce_each(http, topic_name, 1, 100)
            # From `a`'s partitions: the uncommitted rest, then the new record each.
            handed = [(p, o) for p in partial for o in range(6, PER_PARTITION + 1)]
            handed += [(done, PER_PARTITION)]
            want_b = len(handed) + len(theirs)
            await until(b_ws, lambda _f: len(records_of(b_seen)) - before >= want_b, b_seen)
            after = records_of(b_seen)[before:]
            assert sorted(x for x in after if x[0] in mine) == sorted(handed)
            assert sorted(x for x in after if x[0] in theirs) == [
                (p, PER_PARTITION) for p in sorted(theirs)
            ]
    finally:
        await a_ws.close()
    # `b` closed too: once the server has seen the close, the group has no members left.
    with gateway.client() as client:
        members = await asyncio.to_thread(
            poll_until,
            lambda: client.get(f"/v1/groups/{group}").json()["members"],
            lambda m: m == [],
            what="both members left",
            timeout_s=10,
        )
    assert members == []


async def test_a_member_assigned_nothing_waits_and_takes_over_when_the_other_leaves(
    gateway: GatewayProcess, http: httpx.AsyncClient, topic_name: str
) -> None:
    reply = await http.post("/v1/topics", json={"name": topic_name, "partitions": 1})
    assert reply.status_code == 201, reply.text
    group = f"{topic_name}-g"
    url = member_url(gateway, topic_name, group)
    a = await connect(url, additional_headers=gateway.headers)
    b = await connect(url, additional_headers=gateway.headers)
    try:
        assert (await frame(a))["assignment"] == [0]
        seen: dict[ClientConnection, list[dict[str, Any]]] = {a: [], b: []}
        b_assigned = await frame(b)
        generation = b_assigned["generation"]
        a_assigned = await until(a, lambda f: f["type"] == "assigned", seen[a])
        assert a_assigned["generation"] == generation
        # One partition, two members: one of them holds it, the other has none.
        shares = {a: a_assigned["assignment"], b: b_assigned["assignment"]}
        assert sorted(shares.values()) == [[], [0]]
        holder, idle = (a, b) if shares[a] == [0] else (b, a)
        reply = await http.post(
            f"/v1/topics/{topic_name}/records", json={"records": [{"value": 1}]}
        )
        assert reply.status_code == 200, reply.text
        await until(holder, lambda _f: len(records_of(seen[holder])) >= 1, seen[holder])
        # The member with nothing gets no records, answers a commit of what it does not
        # own with an error frame, and outlives several heartbeats.
        bad = {"type": "commit", "offsets": [{"partition": 0, "offset": 1}]}
        await idle.send(orjson.dumps(bad).decode())
        refused = await until(idle, lambda _f: True, seen[idle])
        assert refused["type"] == "error", refused
        await asyncio.sleep(1.5)  # three heartbeats of its 1.5 s session
        # The holder leaves: the other member is assigned the partition and reads it
        # from the start (nothing was committed).
        await holder.close()
        moved = await until(idle, lambda f: f["type"] == "assigned", seen[idle])
        assert moved["assignment"] == [0]
        assert moved["generation"] > generation
        await until(idle, lambda _f: len(records_of(seen[idle])) >= 1, seen[idle])
        assert records_of(seen[idle]) == [(0, 0)]
        assert [f["type"] for f in seen[idle]] == ["error", "assigned", "records"]
    finally:
        await a.close()
        await b.close()


async def test_a_drained_shutdown_takes_each_member_out_of_its_group(
    tmp_path: Path, topic_name: str
) -> None:
    # The listener stays open for the grace: room for the stream's own close on a
    # loaded machine before the server's shutdown would close what is left (1012).
    env = {"TIDEGATE_DRAIN_GRACE_S": "3"}
    server = GatewayProcess(tmp_path / "data", env=env).start()
    group = f"{topic_name}-g"
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers=server.headers, timeout=30
        ) as client:
            reply = await client.post("/v1/topics", json={"name": topic_name, "partitions": 2})
            assert reply.status_code == 201, reply.text
        # A long session: without a leave the member would still be listed after the restart.
        url = (
            f"ws://127.0.0.1:{server.port}/v1/topics/{topic_name}/stream"
            f"?group={group}&session_timeout_ms=60000"
        )
        async with connect(url, additional_headers=server.headers) as ws:
            assert (await frame(ws))["assignment"] == [0, 1]
            stopping = asyncio.ensure_future(asyncio.to_thread(server.stop))
            closing = await frame(ws, 15)
            assert closing["type"] == "closing"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 15)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
            assert await stopping == 0
        server.start()
        with server.client() as client:
            described = client.get(f"/v1/groups/{group}")
        assert described.status_code == 200, described.text
        assert described.json()["members"] == []
    finally:
        server.stop()
