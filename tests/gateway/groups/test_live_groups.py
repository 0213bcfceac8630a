"""Consumer groups against a real gateway process on loopback: membership and
rebalances, fenced commits, retry-safe fetches, bounded waits, lag, isolation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess
from tests.gateway.groups.client import FetchInThread, Member, settle
from tests.support.waiting import poll_until

SHORT_SESSION_MS = 600
STORM_JOINS = 600


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {"TIDEGATE_GROUP_MIN_SESSION_TIMEOUT_MS": "100"}
    server = GatewayProcess(tmp_path_factory.mktemp("gateway") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


def make_topic(api: httpx.Client, name: str, partitions: int) -> None:
    r = api.post("/v1/topics", json={"name": name, "partitions": partitions})
    assert r.status_code == 201, r.text


def produce(api: httpx.Client, topic: str, records: list[dict[str, Any]]) -> None:
    r = api.post(f"/v1/topics/{topic}/records", json={"records": records})
    assert r.status_code == 200, r.text


def test_three_members_share_six_partitions_and_rebalance(
    api: httpx.Client, topic_name: str
) -> None:
    make_topic(api, topic_name, 6)
    group = f"g-{topic_name}"
    a, b, c = (Member(api, group, [topic_name], session_timeout_ms=5_000) for _ in range(3))
    c.session_timeout_ms = SHORT_SESSION_MS
    for m in (a, b, c):
        m.join()
    first = settle([a, b, c])
    owned = [m.assignment for m in (a, b, c)]
    assert [len(o) for o in owned] == [2, 2, 2]
    assert set().union(*owned) == {(topic_name, p) for p in range(6)}

    # b leaves: a and c share its partitions in the next generation, keeping theirs.
    b.leave()
    second = settle([a, c])
    assert second > first
    assert len(a.assignment) == len(c.assignment) == 3
    assert a.assignment | c.assignment == {(topic_name, p) for p in range(6)}
    assert owned[0] <= a.assignment

    # c goes silent: after its session a is told to rejoin and gets everything.
    silent_generation = c.generation
    reply = poll_until(
        lambda: a.heartbeat(), lambda r: r.status_code == 409, what="c expired", timeout_s=5
    )
    assert reply.json()["type"].endswith("/rebalance-in-progress")
    a.join()
    assert a.assignment == {(topic_name, p) for p in range(6)}
    assert a.generation > second

    # c's commit of its old generation is refused, telling it how to come back.
    late = c.commit({(topic_name, 0): 0})
    assert late.status_code == 409
    problem = late.json()
    assert problem["type"].endswith("/stale-generation")
    assert problem["member_id"] == c.member_id
    assert problem["generation"] == silent_generation
    assert "rejoin" in problem["detail"]
    assert api.get(f"/v1/groups/{group}/offsets").json() == {"offsets": []}
    # Rejoining with the old member id is the way back.
    c.join()
    assert settle([a, c]) == c.generation


def test_commits_are_fenced_and_read_back(api: httpx.Client, topic_name: str) -> None:
    make_topic(api, topic_name, 2)
    produce(api, topic_name, [{"partition": p, "value": i} for p in (0, 1) for i in range(3)])
    group = f"g-{topic_name}"
    a = Member(api, group, [topic_name])
    a.join()
    r = a.commit({(topic_name, 0): 2})
    assert r.status_code == 204, r.text
    stale = a.generation
    b = Member(api, group, [topic_name])
    b.join()  # a new generation: a's next commit must rejoin first
    a.generation = stale
    refused = a.commit({(topic_name, 0): 3})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/rebalance-in-progress")
    settle([a, b])
    mine = sorted(a.assignment)[0]
    theirs = sorted(b.assignment)[0]
    assert a.commit({theirs: 1}).status_code == 409  # not a's partition
    too_far = a.commit({mine: 99})
    assert too_far.status_code == 422
    assert too_far.json()["errors"][0]["pointer"] == "/offsets/0/offset"
    assert a.commit({mine: 3}).status_code == 204
    offsets = api.get(f"/v1/groups/{group}/offsets").json()["offsets"]
    expected = {(topic_name, 0): 2}
    expected[mine] = 3
    assert {(o["topic"], o["partition"]): o["offset"] for o in offsets} == expected


def test_at_least_once_with_members_coming_and_going(api: httpx.Client, topic_name: str) -> None:
    """Producers write keyed records while members join, leave and stop; every record
    is processed, and a committed record is never read again."""
    make_topic(api, topic_name, 4)
    group = f"g-{topic_name}"
    total = 240
    produced: set[str] = set()
    processed: set[str] = set()
    committed: dict[tuple[str, int], int] = {}
    members = [Member(api, group, [topic_name], session_timeout_ms=SHORT_SESSION_MS)]
    members[0].join()
    step = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        step += 1
        if len(produced) < total:
            batch = [f"v{len(produced) + i}" for i in range(12)]
            produce(api, topic_name, [{"key": v, "value": v} for v in batch])
            produced.update(batch)
        if step % 5 == 0 and len(members) < 4:  # a member joins
            joining = Member(api, group, [topic_name], session_timeout_ms=SHORT_SESSION_MS)
            joining.join()
            members.append(joining)
        if step % 7 == 0 and len(members) > 1:  # one leaves cleanly, one simply stops
            gone = members.pop(0)
            if step % 14 == 0:
                gone.leave()
        for m in members:
            records = m.fetch(max_records=10)
            if records is None:
                m.join()
                continue
            reached: dict[tuple[str, int], int] = {}
            for rec in records:
                tp = (rec["topic"], rec["partition"])
                # Commit-after-processing: nothing below a commit is read again.
                assert rec["offset"] >= committed.get(tp, 0), (rec, committed.get(tp))
                processed.add(rec["value"])
                reached[tp] = rec["offset"] + 1
            if reached:
                r = m.commit(reached)
                if r.status_code == 204:
                    committed.update(reached)
                else:
                    assert r.status_code == 409, r.text
        if len(produced) >= total and produced <= processed:
            break
    assert len(produced) == total
    missing = produced - processed
    assert not missing, f"{len(missing)} records never processed"


def test_a_client_that_loses_every_third_reply_processes_everything_once(
    api: httpx.Client, topic_name: str
) -> None:
    """kafka-rest #582: there a lost consume reply loses its records. Here the client
    retries with the same cursor and gets the same records again."""
    make_topic(api, topic_name, 3)
    values = [f"r{i}" for i in range(90)]
    produce(api, topic_name, [{"key": v, "value": v} for v in values])
    member = Member(api, f"g-{topic_name}", [topic_name])
    member.join()
    processed: list[tuple[int, int, str]] = []
    replies = 0
    while len(processed) < len(values) and replies < 200:
        r = member.fetch_raw(max_records=7)
        assert r.status_code == 200, r.text
        replies += 1
        if replies % 3 == 0:
            continue  # lost on the way: the cursor stays, the fetch is retried
        reply = r.json()
        member.cursor = reply["cursor"]
        processed += [(x["partition"], x["offset"], x["value"]) for x in reply["records"]]
    assert sorted(v for _, _, v in processed) == sorted(values)  # each once: no gap, no repeat
    by_partition: dict[int, list[int]] = {}
    for p, o, _ in processed:
        by_partition.setdefault(p, []).append(o)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))


def test_the_same_cursor_returns_the_same_records(api: httpx.Client, topic_name: str) -> None:
    make_topic(api, topic_name, 2)
    produce(api, topic_name, [{"partition": i % 2, "value": i} for i in range(10)])
    member = Member(api, f"g-{topic_name}", [topic_name])
    member.join()
    first = member.fetch(max_records=4)
    assert first is not None
    again = member.fetch_raw(max_records=4).json()
    produce(api, topic_name, [{"partition": 0, "value": "later"}])
    repeated = member.fetch_raw(max_records=4).json()
    assert repeated == again  # a retry, even after more records arrived
    member.cursor = again["cursor"]
    rest = member.fetch(max_records=100)
    assert rest is not None
    seen = [(r["partition"], r["offset"]) for r in first + again["records"] + rest]
    assert len(seen) == len(set(seen)) == 11


def test_an_empty_reply_keeps_the_cursor_and_loses_nothing(
    api: httpx.Client, topic_name: str
) -> None:
    """A reply that reads nothing moves nothing: it answers the cursor it came with,
    which still reads on from the same place, and a retry loses nothing either."""
    make_topic(api, topic_name, 2)
    produce(api, topic_name, [{"partition": i % 2, "value": i} for i in range(4)])
    member = Member(api, f"g-{topic_name}", [topic_name])
    member.join()
    first = member.fetch(max_records=100)
    assert first is not None
    assert len(first) == 4
    held = member.cursor
    for _ in range(3):  # idle polls, each answered and acknowledged
        idle = member.fetch_raw(max_wait_ms=20).json()
        assert (idle["records"], idle["cursor"]) == ([], held)
    produce(api, topic_name, [{"partition": 1, "value": "late"}])
    lost = member.fetch_raw().json()  # its reply is lost: the same cursor is sent again
    assert [r["value"] for r in lost["records"]] == ["late"]
    retried = member.fetch_raw().json()
    assert retried == lost
    member.cursor = retried["cursor"]
    assert member.fetch() == []


def test_a_fetch_during_a_rebalance_returns_within_its_wait(
    api: httpx.Client, topic_name: str
) -> None:
    make_topic(api, topic_name, 4)
    group = f"g-{topic_name}"
    waiting = Member(api, group, [topic_name])
    waiting.join()
    poll = FetchInThread(waiting, max_wait_ms=800, timeout_s=10).start()
    joining = Member(api, group, [topic_name])
    joining.join()  # a rebalance while the fetch waits
    assert poll.join(5).status_code in (200, 409)
    assert poll.elapsed < 0.8 + 0.2
    # The next fetch of the old generation is told to rejoin, at once.
    began = time.monotonic()
    r = waiting.fetch_raw(max_wait_ms=800)
    assert r.status_code == 409
    assert time.monotonic() - began < 0.2


def test_lag_is_end_minus_committed(api: httpx.Client, topic_name: str) -> None:
    make_topic(api, topic_name, 3)
    old = int(time.time() * 1000) - 7_000
    produce(api, topic_name, [{"partition": 0, "value": i, "timestamp": old} for i in range(5)])
    produce(api, topic_name, [{"partition": 1, "value": i} for i in range(3)])
    group = f"g-{topic_name}"
    member = Member(api, group, [topic_name])
    member.join()
    assert member.commit({(topic_name, 0): 2, (topic_name, 1): 3}).status_code == 204
    described = api.get(f"/v1/groups/{group}").json()
    rows = {r["partition"]: r for r in described["partitions"]}
    assert [(rows[p]["committed"], rows[p]["end_offset"], rows[p]["lag"]) for p in range(3)] == [
        (2, 5, 3),
        (3, 3, 0),
        (None, 0, 0),
    ]
    assert rows[0]["time_behind_ms"] >= 7_000
    assert rows[1]["time_behind_ms"] == 0
    assert described["lag"] == 3
    assert described["state"] == "stable"
    assert described["members"][0]["member_id"] == member.member_id
    listed = api.get("/v1/groups").json()["groups"]
    assert {"group": group, "lag": 3}.items() <= next(
        g for g in listed if g["group"] == group
    ).items()


def test_admin_delete_and_reset_wait_for_an_empty_group(api: httpx.Client, topic_name: str) -> None:
    make_topic(api, topic_name, 2)
    produce(api, topic_name, [{"partition": p, "value": i} for p in (0, 1) for i in range(4)])
    group = f"g-{topic_name}"
    member = Member(api, group, [topic_name])
    member.join()
    assert member.commit({(topic_name, 0): 1}).status_code == 204
    busy = api.post(f"/v1/groups/{group}/offsets/reset", json={"to": "latest"})
    assert busy.status_code == 409
    assert busy.json()["type"].endswith("/group-not-empty")
    assert api.delete(f"/v1/groups/{group}").status_code == 409
    member.leave()
    dry = api.post(f"/v1/groups/{group}/offsets/reset", json={"to": "latest", "dry_run": True})
    assert dry.json() == {
        "dry_run": True,
        "offsets": [
            {"topic": topic_name, "partition": 0, "previous": 1, "offset": 4},
            {"topic": topic_name, "partition": 1, "previous": None, "offset": 4},
        ],
    }
    assert api.get(f"/v1/groups/{group}/offsets").json()["offsets"][0]["offset"] == 1
    explicit = api.post(f"/v1/groups/{group}/offsets/reset", json={"to": "offset", "offset": 2})
    assert [o["offset"] for o in explicit.json()["offsets"]] == [2, 2]
    offsets = api.get(f"/v1/groups/{group}/offsets").json()["offsets"]
    assert [o["offset"] for o in offsets] == [2, 2]
    earliest = api.post(
        f"/v1/groups/{group}/offsets/reset", json={"to": "timestamp", "timestamp": 0}
    )
    assert [o["offset"] for o in earliest.json()["offsets"]] == [0, 0]
    assert api.delete(f"/v1/groups/{group}").status_code == 204
    assert api.get(f"/v1/groups/{group}").status_code == 404


def test_groups_are_isolated_by_tenant_and_scope(api: httpx.Client, topic_name: str) -> None:
    make_topic(api, topic_name, 1)
    group = f"g-{topic_name}"
    Member(api, group, [topic_name]).join()
    tenant = f"t{abs(hash(topic_name)) % 10**8}"
    assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    key = api.post(
        f"/v1/admin/tenants/{tenant}/keys",
        json={"scopes": ["topics:read", "topics:admin", "groups:read", "groups:write"]},
    ).json()["key"]
    other = {"Authorization": f"Bearer {key}"}
    assert api.get(f"/v1/groups/{group}", headers=other).status_code == 404
    assert api.get(f"/v1/groups/{group}/offsets", headers=other).status_code == 404
    assert api.get("/v1/groups", headers=other).json() == {"groups": []}
    assert api.delete(f"/v1/groups/{group}", headers=other).status_code == 404
    # The other tenant's group of the same name is its own; deleting the tenant purges it.
    assert api.post("/v1/topics", json={"name": topic_name}, headers=other).status_code == 201
    r = api.post(f"/v1/groups/{group}/members", json={"topics": [topic_name]}, headers=other)
    assert r.status_code == 200
    assert r.json()["generation"] == 1
    assert [g["group"] for g in api.get("/v1/groups", headers=other).json()["groups"]] == [group]
    reader = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": ["topics:read"]})
    narrow = {"Authorization": f"Bearer {reader.json()['key']}"}
    denied = api.post(f"/v1/groups/{group}/members", json={"topics": [topic_name]}, headers=narrow)
    assert denied.status_code == 403
    assert api.delete(f"/v1/admin/tenants/{tenant}").status_code == 204
    assert api.post("/v1/admin/tenants", json={"name": tenant}).status_code == 201
    again = api.post(f"/v1/admin/tenants/{tenant}/keys", json={"scopes": ["groups:read"]}).json()[
        "key"
    ]
    assert api.get("/v1/groups", headers={"Authorization": f"Bearer {again}"}).json() == {
        "groups": []
    }


def test_a_fetch_in_a_join_storm_returns_within_its_wait(
    api: httpx.Client, topic_name: str
) -> None:
    """kafka-rest #396/#597: there a consumer hangs while its group rebalances. Here
    a fetch does not wait on its group (the lock, behind a storm of joins each
    held up by other groups' synced commits) past max_wait_ms and a small
    margin: it answers 409 or its records in time. Without that bound such a
    fetch waits for the joins queued before it (0.8-0.9 s here, on a loaded
    2-core machine; 0.3 s with it, the event loop being busy with the joins)."""
    make_topic(api, topic_name, 64)  # each join of the storm reassigns all of them
    group = f"g-{topic_name}"
    fetching = Member(api, group, [topic_name])
    fetching.join()
    stop = threading.Event()
    joins = [0]

    def storm() -> None:
        with httpx.Client(base_url=str(api.base_url), headers=api.headers, timeout=60) as own:
            while not stop.is_set() and joins[0] < STORM_JOINS:  # each a new generation
                r = own.post(f"/v1/groups/{group}/members", json={"topics": [topic_name]})
                assert r.status_code == 200, r.text
                joins[0] += 1

    def commits(index: int) -> None:
        """Another group's member committing (synced writes), so that the store's
        writes queue and each join holds the group's lock the longer."""
        with httpx.Client(base_url=str(api.base_url), headers=api.headers, timeout=60) as own:
            committer = Member(own, f"{group}-c{index}", [topic_name])
            committer.join()
            while not stop.is_set() and joins[0] < STORM_JOINS:
                r = committer.commit({(topic_name, index): 0})
                assert r.status_code == 204, r.text

    joiners = [threading.Thread(target=storm) for _ in range(24)]
    joiners += [threading.Thread(target=commits, args=(i,)) for i in range(8)]
    for t in joiners:
        t.start()
    slowest = 0.0
    answers: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and joins[0] < STORM_JOINS:
            began = time.monotonic()
            r = fetching.fetch_raw(max_wait_ms=200)
            slowest = max(slowest, time.monotonic() - began)
            answers[r.status_code] = answers.get(r.status_code, 0) + 1
            assert r.status_code in (200, 409), r.text
            if r.status_code == 409:
                fetching.join()  # as a client would (a join may wait: it has no max_wait)
            else:
                fetching.cursor = r.json()["cursor"]
    finally:
        stop.set()
        for t in joiners:
            t.join(60)
    assert joins[0] > 100, "the storm did not happen"
    assert answers.get(409, 0) > 0, "no fetch met a rebalance"
    assert slowest < 0.2 + 0.3, f"a fetch took {slowest:.3f} s ({answers}, {joins[0]} joins)"


def test_a_parked_fetch_hears_of_another_members_expiry_at_once(
    api: httpx.Client, topic_name: str
) -> None:
    """A member waiting in a long fetch learns that another member's session ran
    out (a new generation) when it runs out, not after its own max_wait_ms."""
    make_topic(api, topic_name, 2)
    group = f"g-{topic_name}"
    parked = Member(api, group, [topic_name])
    silent = Member(api, group, [topic_name], session_timeout_ms=SHORT_SESSION_MS)
    parked.join()
    silent.join()
    settle([parked, silent])
    assert parked.fetch() == []  # a cursor and a position, so the poll below is a plain wait
    began = time.monotonic()
    r = parked.fetch_raw(max_wait_ms=8_000)
    elapsed = time.monotonic() - began
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/rebalance-in-progress")
    assert elapsed < 5, f"told after {elapsed:.1f} s"  # the session is 0.6 s, the poll 8 s
    parked.join()
    assert parked.assignment == {(topic_name, 0), (topic_name, 1)}


@pytest.mark.parametrize("change", ["join", "leave"])
def test_a_parked_fetch_hears_of_a_join_or_a_leave_at_once(
    api: httpx.Client, topic_name: str, change: str
) -> None:
    """A member waiting in a long fetch is told of another member joining or leaving
    (a new generation) with a 409 at once, not when its max_wait_ms runs out."""
    make_topic(api, topic_name, 2)
    group = f"g-{topic_name}"
    parked = Member(api, group, [topic_name], session_timeout_ms=30_000)
    other = Member(api, group, [topic_name], session_timeout_ms=30_000)
    parked.join()
    if change == "leave":
        other.join()
        settle([parked, other])
    assert parked.fetch() == []  # a cursor and a position, so the poll below is a plain wait
    poll = FetchInThread(parked, max_wait_ms=8_000).start()  # a daemon thread: never left hanging
    poll_until(
        lambda: api.get("/metrics").text,
        lambda text: "tidegate_longpoll_waiters 1" in text,
        what="the fetch parks",
    )
    if change == "join":
        other.join()
    else:
        assert api.delete(f"/v1/groups/{group}/members/{other.member_id}").status_code == 204
    changed = time.monotonic()
    reply = poll.join(15)
    assert reply.status_code == 409, reply.text
    assert reply.json()["type"].endswith("/rebalance-in-progress")
    late = poll.answered - changed
    assert late < 2, f"told {late:.1f} s after the {change} (the poll was for 8 s)"
    parked.join()
    assert len(parked.assignment) == (1 if change == "join" else 2)


def test_a_poll_longer_than_the_session_keeps_the_member(
    api: httpx.Client, topic_name: str
) -> None:
    """A fetch that waits longer than its member's session keeps it alive: another
    member's requests meanwhile (which remove expired members) leave it in."""
    make_topic(api, topic_name, 2)
    group = f"g-{topic_name}"
    polling = Member(api, group, [topic_name], session_timeout_ms=SHORT_SESSION_MS)
    other = Member(api, group, [topic_name])
    polling.join()
    other.join()
    settle([polling, other])
    assert polling.fetch() == []
    poll = FetchInThread(polling, max_wait_ms=2_000, timeout_s=10).start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert other.heartbeat().status_code == 200  # would expire a silent member
        if poll.wait(0.1):  # a heartbeat every 0.1 s until the long-poll answers
            break
    assert poll.join(0).status_code == 200
    assert polling.heartbeat().status_code == 200


def test_describe_and_list_show_an_expired_member_gone(api: httpx.Client, topic_name: str) -> None:
    """Nobody else asks the group anything: describe and list still show the silent
    member removed and its partitions handed on, as the next fetch would see."""
    make_topic(api, topic_name, 4)
    group = f"g-{topic_name}"
    staying = Member(api, group, [topic_name], session_timeout_ms=30_000)
    silent = Member(api, group, [topic_name], session_timeout_ms=SHORT_SESSION_MS)
    staying.join()
    silent.join()
    generation = settle([staying, silent])
    described = poll_until(
        lambda: api.get(f"/v1/groups/{group}").json(),
        lambda d: len(d["members"]) == 1,
        what="describe to drop the silent member",
        timeout_s=SHORT_SESSION_MS / 1000 + 10,
        every_s=0.1,
    )
    assert [m["member_id"] for m in described["members"]] == [staying.member_id]
    assert described["generation"] == generation + 1
    assert described["state"] == "rebalancing"  # the one left has yet to rejoin
    assert {p["member_id"] for p in described["partitions"]} == {staying.member_id}
    listed = {g["group"]: g for g in api.get("/v1/groups").json()["groups"]}
    assert (listed[group]["members"], listed[group]["state"]) == (1, "rebalancing")
    assert staying.heartbeat().status_code == 409  # what describe showed is what it meets
