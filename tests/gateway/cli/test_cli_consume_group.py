"""`tidegate consume TOPIC --group G` against a real server process: a member that
commits what it prints and leaves when it stops."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from tests.gateway.cli import test_cli_client as client_cli
from tests.gateway.cli.test_cli_client import Tidegate, env_for, ndjson
from tests.gateway.conftest import REPO, GatewayProcess
from tests.support.waiting import poll_until

server = client_cli.server  # the same fixtures: a server process of this module's own
tidegate = client_cli.tidegate


def _produce(server: GatewayProcess, topic: str, values: list[int]) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0) as api:
        records = [{"key": f"k{v}", "value": v} for v in values]
        reply = api.post(f"/v1/topics/{topic}/records", json={"records": records})
        assert reply.status_code == 200, reply.text


def _group(server: GatewayProcess, group: str) -> dict[str, object]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0) as api:
        reply = api.get(f"/v1/groups/{group}")
        assert reply.status_code == 200, reply.text
        described: dict[str, object] = reply.json()
        return described


def test_a_group_reads_each_record_once_across_runs_and_leaves(
    server: GatewayProcess, tidegate: Tidegate
) -> None:
    tidegate("topics", "create", "cli-group", "--partitions", "3")
    _produce(server, "cli-group", list(range(8)))

    first = tidegate("consume", "cli-group", "--group", "cli-g", "--max-records", "3")
    assert first.returncode == 0, first.stderr
    assert len(ndjson(first.stdout)) == 3
    assert _group(server, "cli-g")["members"] == []  # it left on exit
    rest = tidegate("consume", "cli-group", "--group", "cli-g")
    assert rest.returncode == 0, rest.stderr

    seen = [*ndjson(first.stdout), *ndjson(rest.stdout)]
    assert sorted(r["value"] for r in seen) == list(range(8))  # type: ignore[type-var]
    assert {r["topic"] for r in seen} == {"cli-group"}
    described = _group(server, "cli-g")
    assert described["lag"] == 0  # every printed record committed
    assert ndjson(tidegate("consume", "cli-group", "--group", "cli-g").stdout) == []
    # Another group has its own commits: it reads everything.
    assert len(ndjson(tidegate("consume", "cli-group", "--group", "cli-other").stdout)) == 8


def test_from_latest_is_the_reset_policy_and_offsets_are_refused(
    server: GatewayProcess, tidegate: Tidegate
) -> None:
    tidegate("topics", "create", "cli-group-latest")
    _produce(server, "cli-group-latest", [1, 2])
    latest = tidegate("consume", "cli-group-latest", "--group", "cli-l", "--from", "latest")
    assert latest.returncode == 0, latest.stderr
    assert ndjson(latest.stdout) == []
    bad = tidegate("consume", "cli-group-latest", "--group", "cli-l", "--from", "4")
    assert bad.returncode == 1
    assert "--from takes earliest or latest" in bad.stderr


def test_ctrl_c_commits_what_was_printed_and_leaves_at_once(server: GatewayProcess) -> None:
    env = env_for(server)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0) as api:
        api.post("/v1/topics", json={"name": "cli-group-follow", "partitions": 2})
    _produce(server, "cli-group-follow", [10, 11, 12])
    follower = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "consume", "cli-group-follow", "--group", "cli-f",
         "--follow"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        lines = [follower.stdout.readline() for _ in range(3)]  # blocks until printed
        described = poll_until(
            lambda: _group(server, "cli-f"), lambda g: g["lag"] == 0, what="the commit"
        )
        assert described["members"] != []
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert {r["value"] for r in ndjson("".join(lines))} == {10, 11, 12}
    assert _group(server, "cli-f")["members"] == []  # left, not waiting out its session
