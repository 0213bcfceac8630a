"""Consumer-group benchmark: a rebalance of many members, and group fetch against plain fetch.

Run: `make bench-groups` (`python -m loadtests.bench_groups`; about a minute,
`--quick` for a short trial). Not a test: it prints figures and the issue's
aims with PASS or MISS and exits 0 whatever they are; it exits non-zero when a
phase goes wrong (an unexpected error reply), because then it measured
something else.

One real `tidegate serve` process on loopback (its defaults: fsync topics,
commits synced), driven by asyncio httpx clients in this process (a group
member keeps a cursor and reacts to 409, which wrk's scripts cannot do).

- **Rebalance**: `--members` members (100) join one topic of `--partitions`
  (256) at once. Each joins, then heartbeats with its generation and rejoins
  when told to (409), as a client would. Measured: the time from the first
  join until every member holds an assignment of the group's final, stable
  generation (checked by describe: state `stable`, every partition owned,
  each member's count within one of the others), the requests that took, and
  the gateway's CPU time.
- **Fetch**: a topic of 8 partitions holding `--records` records each;
  8 consumers read all of it, `max_records=100` a request. Plain: each reads
  one partition by offset. Group: 8 members of a fresh group, each fetching
  with its cursor (one partition each). Rounds in ABBA order (plain, group,
  group, plain, ...) so a shared machine's drift falls on both. Reported:
  records/s of each, their ratio, and the gateway's CPU µs per record (from
  /proc/<pid>/stat, all threads), the steadier figure on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench_gateway import OPERATOR_KEY, Server, start_gateway
from loadtests.wrk_runner import cpu_seconds

FETCH_TOPIC = "g-fetch"
REBALANCE_TOPIC = "g-rebalance"
FETCH_PARTITIONS = 8
PER_REQUEST = 100
REBALANCE_AIM_S = 1.0
FETCH_AIM_RATIO = 0.7


class PhaseFailed(RuntimeError):
    pass


def _expect(reply: httpx.Response, *statuses: int) -> httpx.Response:
    if reply.status_code not in statuses:
        raise PhaseFailed(f"{reply.request.method} {reply.request.url}: {reply.text[:400]}")
    return reply


def bench_key(url: str) -> str:
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    with httpx.Client(base_url=url, headers=operator, timeout=30) as admin:
        _expect(admin.post("/v1/admin/tenants", json={"name": "bench", "plan": "unlimited"}), 201)
        scopes = ["topics:read", "topics:write", "topics:admin", "groups:read", "groups:write"]
        created = admin.post("/v1/admin/tenants/bench/keys", json={"scopes": scopes})
        key: str = _expect(created, 201).json()["key"]
        return key


def prepare(url: str, key: str, partitions: int, records: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
        _expect(
            api.post("/v1/topics", json={"name": REBALANCE_TOPIC, "partitions": partitions}), 201
        )
        _expect(
            api.post("/v1/topics", json={"name": FETCH_TOPIC, "partitions": FETCH_PARTITIONS}), 201
        )
        value = {"payload": "x" * 86}
        for p in range(FETCH_PARTITIONS):
            for _ in range(records // PER_REQUEST):
                body = {"records": [{"partition": p, "value": value} for _ in range(PER_REQUEST)]}
                _expect(api.post(f"/v1/topics/{FETCH_TOPIC}/records", json=body), 200)


@contextmanager
def gateway(partitions: int, records: int) -> Iterator[tuple[Server, str]]:
    root = Path(tempfile.mkdtemp(prefix="tidegate-bench-groups-"))
    server = start_gateway(root / "data", root, waiters=0)
    try:
        key = bench_key(server.url)
        prepare(server.url, key, partitions, records)
        yield server, key
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def client(url: str, key: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
    )


# -- rebalance ----------------------------------------------------------------------


@dataclass
class Rebalance:
    members: int
    partitions: int
    seconds: float
    requests: int
    cpu_s: float
    generation: int


async def _member(api: httpx.AsyncClient, group: str, index: int, state: dict[str, Any]) -> None:
    """Join, then heartbeat with the generation held; rejoin when told to. Stops once
    the bench says the group has settled."""
    member_id = f"m{index:03d}"
    body = {"topics": [REBALANCE_TOPIC], "member_id": member_id, "session_timeout_ms": 60_000}
    generation = -1
    while not state["settled"]:
        if generation < 0:
            reply = _expect(await api.post(f"/v1/groups/{group}/members", json=body), 200).json()
            generation = reply["generation"]
            state["held"][member_id] = (generation, len(reply["assignment"]))
        else:
            beat = await api.post(
                f"/v1/groups/{group}/members/{member_id}/heartbeat", json={"generation": generation}
            )
            _expect(beat, 200, 409)
            if beat.status_code == 409:
                generation = -1
            else:
                await asyncio.sleep(0.01)  # a client's heartbeat interval, short for the bench
        state["requests"] += 1


def _settled(state: dict[str, Any], members: int, partitions: int) -> bool:
    held = state["held"]
    if len(held) < members:
        return False
    generations = {g for g, _ in held.values()}
    counts = [n for _, n in held.values()]
    return len(generations) == 1 and sum(counts) == partitions and max(counts) - min(counts) <= 1


async def rebalance(server: Server, key: str, members: int, partitions: int) -> Rebalance:
    group = f"rebalance-{time.monotonic_ns()}"
    state: dict[str, Any] = {"settled": False, "held": {}, "requests": 0}
    async with client(server.url, key, members) as api:
        cpu0 = cpu_seconds(server.pid)
        began = time.monotonic()
        tasks = [asyncio.create_task(_member(api, group, i, state)) for i in range(members)]
        deadline = began + 60
        while not _settled(state, members, partitions):
            if time.monotonic() > deadline:
                raise PhaseFailed(f"no stable assignment within 60 s: {len(state['held'])} joined")
            if any(t.done() and t.exception() for t in tasks):
                break
            await asyncio.sleep(0.002)
        seconds = time.monotonic() - began
        cpu = cpu_seconds(server.pid) - cpu0
        state["settled"] = True
        await asyncio.gather(*tasks)
        described = _expect(await api.get(f"/v1/groups/{group}"), 200).json()
    if described["state"] != "stable" or any(
        p["member_id"] is None for p in described["partitions"]
    ):
        raise PhaseFailed(f"the group is not stable after settling: {described['state']}")
    generation = next(iter(state["held"].values()))[0]
    if described["generation"] != generation:
        raise PhaseFailed(f"generation {described['generation']} != the members' {generation}")
    return Rebalance(members, partitions, seconds, state["requests"], cpu, generation)


# -- fetch --------------------------------------------------------------------------


@dataclass
class Round:
    kind: str
    records: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_s / self.records * 1e6


async def _plain_reader(api: httpx.AsyncClient, partition: int, held: int) -> int:
    offset = 0
    while offset < held:
        reply = await api.get(
            f"/v1/topics/{FETCH_TOPIC}/partitions/{partition}/records",
            params={"offset": offset, "max_records": PER_REQUEST},
        )
        offset = _expect(reply, 200).json()["next_offset"]
    return offset


async def _group_reader(api: httpx.AsyncClient, group: str, member_id: str, held: int) -> int:
    params: dict[str, Any] = {"member_id": member_id, "max_records": PER_REQUEST}
    seen = 0
    while seen < held:
        reply = _expect(await api.get(f"/v1/groups/{group}/records", params=params), 200)
        body = reply.json()
        seen += len(body["records"])
        params["cursor"] = body["cursor"]
    return seen


async def _join_group(api: httpx.AsyncClient, group: str) -> list[str]:
    ids = [f"r{i}" for i in range(FETCH_PARTITIONS)]
    body: dict[str, Any] = {"topics": [FETCH_TOPIC], "session_timeout_ms": 60_000}
    for member_id in ids:
        _expect(
            await api.post(f"/v1/groups/{group}/members", json=body | {"member_id": member_id}), 200
        )
    for _ in range(5):  # everyone catches up with the last generation
        replies = [
            _expect(
                await api.post(f"/v1/groups/{group}/members", json=body | {"member_id": m}), 200
            ).json()
            for m in ids
        ]
        if len({r["generation"] for r in replies}) == 1:
            if any(len(r["assignment"]) != 1 for r in replies):
                raise PhaseFailed("8 members of 8 partitions should hold one each")
            return ids
    raise PhaseFailed("the fetch group did not settle")


async def fetch_round(server: Server, key: str, kind: str, held: int) -> Round:
    async with client(server.url, key, FETCH_PARTITIONS) as api:
        group = f"fetch-{time.monotonic_ns()}"
        ids = await _join_group(api, group) if kind == "group" else []
        cpu0 = cpu_seconds(server.pid)
        began = time.monotonic()
        if kind == "plain":
            counts = await asyncio.gather(
                *(_plain_reader(api, p, held) for p in range(FETCH_PARTITIONS))
            )
        else:
            counts = await asyncio.gather(*(_group_reader(api, group, m, held) for m in ids))
        seconds = time.monotonic() - began
        cpu = cpu_seconds(server.pid) - cpu0
    return Round(kind, sum(counts), seconds, cpu)


def abba(rounds: int) -> list[str]:
    order = []
    for i in range(rounds):
        order += ["plain", "group"] if i % 2 == 0 else ["group", "plain"]
    return order


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def run(args: argparse.Namespace) -> int:
    with gateway(args.partitions, args.records) as (server, key):
        print(
            f"gateway pid {server.pid}; rebalance: {args.members} members x "
            f"{args.partitions} partitions; fetch: {FETCH_PARTITIONS} partitions x "
            f"{args.records} records, {PER_REQUEST} a request, {args.rounds} rounds ABBA"
        )
        results = [
            await rebalance(server, key, args.members, args.partitions) for _ in range(args.repeat)
        ]
        for r in results:
            print(
                f"rebalance: stable generation {r.generation} after {r.seconds * 1000:.0f} ms, "
                f"{r.requests} requests, gateway CPU {r.cpu_s * 1000:.0f} ms"
            )
        best = min(r.seconds for r in results)
        print(
            f"  aim < {REBALANCE_AIM_S:.1f} s: best {best:.3f} s  {verdict(best < REBALANCE_AIM_S)}"
        )
        rounds = [await fetch_round(server, key, kind, args.records) for kind in abba(args.rounds)]
        for one in rounds:
            print(
                f"fetch {one.kind:5}: {one.records} records in {one.seconds:.2f} s = "
                f"{one.rate:,.0f} records/s, gateway CPU {one.cpu_us_per_record:.2f} us/record"
            )
        plain = [r for r in rounds if r.kind == "plain"]
        group = [r for r in rounds if r.kind == "group"]
        plain_rate = sum(r.records for r in plain) / sum(r.seconds for r in plain)
        group_rate = sum(r.records for r in group) / sum(r.seconds for r in group)
        plain_cpu = sum(r.cpu_s for r in plain) / sum(r.records for r in plain) * 1e6
        group_cpu = sum(r.cpu_s for r in group) / sum(r.records for r in group) * 1e6
        ratio = group_rate / plain_rate
        print(
            f"fetch: group {group_rate:,.0f} records/s vs plain {plain_rate:,.0f} = {ratio:.2f} "
            f"(aim >= {FETCH_AIM_RATIO})  {verdict(ratio >= FETCH_AIM_RATIO)}; CPU per record "
            f"group {group_cpu:.2f} us vs plain {plain_cpu:.2f} us = {plain_cpu / group_cpu:.2f}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=256)
    parser.add_argument("--records", type=int, default=5_000, help="per fetch partition")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rebalances to time")
    parser.add_argument("--quick", action="store_true", help="a short trial")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.partitions, args.records, args.rounds, args.repeat = 20, 64, 500, 2, 1
    try:
        return asyncio.run(run(args))
    except PhaseFailed as exc:
        print(f"bench-groups: a phase went wrong: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
