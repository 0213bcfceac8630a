"""Committed offsets outlive the process: a clean restart, and a SIGKILL right after
the 204 of a commit."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.gateway.conftest import GatewayProcess
from tests.gateway.groups.client import Member


def committed(server: GatewayProcess, group: str) -> dict[tuple[str, int], int]:
    with server.client() as api:
        r = api.get(f"/v1/groups/{group}/offsets")
        assert r.status_code == 200, r.text
        return {(o["topic"], o["partition"]): o["offset"] for o in r.json()["offsets"]}


def test_commits_survive_a_restart_and_a_sigkill_after_the_204(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            assert api.post("/v1/topics", json={"name": "t", "partitions": 2}).status_code == 201
            records = [{"partition": p, "value": i} for p in (0, 1) for i in range(5)]
            assert api.post("/v1/topics/t/records", json={"records": records}).status_code == 200
            member = Member(api, "g", ["t"])
            member.join()
            assert member.commit({("t", 0): 3}).status_code == 204
            member_id = member.member_id
        server.stop()
        server.start()
        assert committed(server, "g") == {("t", 0): 3}

        with server.client() as api:
            member = Member(api, "g", ["t"])
            member.member_id = member_id  # membership outlives the restart too
            member.join()
            r = member.commit({("t", 0): 4, ("t", 1): 5})
            assert r.status_code == 204, r.text
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)  # at once after the 204
            server.proc.wait()
            server.proc = None
        server.start()
        assert committed(server, "g") == {("t", 0): 4, ("t", 1): 5}
        with server.client() as api:
            lag = {p["partition"]: p["lag"] for p in api.get("/v1/groups/g").json()["partitions"]}
            assert lag == {0: 1, 1: 0}
    finally:
        server.stop()
