"""`tidegate topics|produce|consume` against a real server process, as a user runs them."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from tests.gateway.conftest import REPO, GatewayProcess, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(tmp_path_factory.mktemp("cli") / "data").start()
    try:
        yield gateway
    finally:
        gateway.stop()


def env_for(server: GatewayProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env["TIDEGATE_URL"] = server.url
    env["TIDEGATE_API_KEY"] = server.bootstrap_key or ""
    return env


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


Tidegate = Callable[..., Ran]


@pytest.fixture
def tidegate(
    server: GatewayProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Tidegate:
    """The `tidegate` command run in this process (its entry point, `main`), against the
    server process: most tests run many commands, and a fresh interpreter each is slow.
    The tests of what needs a process of its own (a terminal, a follower) start one."""
    for name, value in env_for(server).items():
        if name.startswith("TIDEGATE_"):
            monkeypatch.setenv(name, value)

    def run(*args: str, stdin: str = "") -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def ndjson(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_topics_create_list_describe_delete(tidegate: Tidegate) -> None:
    created = tidegate(
        "topics", "create", "cli-orders", "--partitions", "3", "--config",
        "retention_ms=86400000", "--config", "durability=interval",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created cli-orders (3 partitions)" in created.stdout
    table = tidegate("topics", "list")
    assert table.returncode == 0
    assert "cli-orders" in table.stdout
    assert "interval" in table.stdout
    listed = json.loads(tidegate("topics", "list", "--json").stdout)
    described = json.loads(tidegate("topics", "describe", "cli-orders", "--json").stdout)
    assert "cli-orders" in [t["name"] for t in listed["topics"]]
    assert described["config"]["retention_ms"] == 86_400_000
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    human = tidegate("topics", "describe", "cli-orders")
    assert "end_offset" in human.stdout
    assert "retention_ms" in human.stdout
    assert tidegate("topics", "delete", "cli-orders").returncode == 0
    missing = tidegate("topics", "describe", "cli-orders")
    assert missing.returncode == 1
    assert missing.stderr.startswith("tidegate: 404: ")


def test_produce_ndjson_with_keys_then_consume_into_jq_shape(tidegate: Tidegate) -> None:
    tidegate("topics", "create", "cli-users", "--partitions", "4")
    lines = [json.dumps({"user": f"u{i % 5}", "n": i}) for i in range(23)]
    produced = tidegate(
        "produce", "cli-users", "--key-field", "user", "--batch-size", "5", "--json",
        stdin="\n".join(lines) + "\n\n",
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert json.loads(produced.stdout) == {"appended": 23, "rejected": 0}
    consumed = tidegate("consume", "cli-users")
    assert consumed.returncode == 0, consumed.stderr
    records = ndjson(consumed.stdout)
    assert sorted(r["value"]["n"] for r in records) == list(range(23))  # type: ignore[index]
    for r in records:
        assert r["key"] == r["value"]["user"]  # type: ignore[index]
    by_key: dict[object, set[object]] = {}
    for r in records:
        by_key.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(partitions) == 1 for partitions in by_key.values())  # a key, a partition


def test_lines_from_a_file_and_every_rejected_record_named(
    tidegate: Tidegate, tmp_path: Path
) -> None:
    tidegate(
        "topics", "create", "cli-small", "--config", "max_record_bytes=64",
        "--config", "value_format=string",
    )  # fmt: skip
    source = tmp_path / "lines.txt"
    source.write_text("first\nsecond\n" + "x" * 200 + "\nfourth\n")
    lines = tidegate("produce", "cli-small", "--lines", "--file", str(source), "--batch-size", "2")
    assert lines.returncode == 1
    # Line 3 is too large; line 4 shared its batch (all or nothing), so it is not appended.
    assert "line 3 rejected" in lines.stderr
    assert "line 4 rejected: not appended" in lines.stderr
    assert "2 records appended, 2 rejected" in lines.stderr
    values = [r["value"] for r in ndjson(tidegate("consume", "cli-small").stdout)]
    assert values == ["first", "second"]

    tidegate("topics", "create", "cli-json")
    bad = tidegate("produce", "cli-json", stdin='{"a": 1}\nnot json\n{"b": 2}\n')
    assert bad.returncode == 1
    assert "line 2 rejected: not JSON" in bad.stderr
    assert len(ndjson(tidegate("consume", "cli-json").stdout)) == 2


def test_consume_from_latest_follows_new_records(
    server: GatewayProcess, tidegate: Tidegate
) -> None:
    tidegate("topics", "create", "cli-live", "--partitions", "2")
    tidegate("produce", "cli-live", stdin='"old"\n')
    follower = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "consume", "cli-live", "--from", "latest",
         "--follow", "--max-records", "2"],
        cwd=REPO, env=env_for(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0) as api:
            deadline = time.monotonic() + 20
            # Produce until the follower, which may still be starting, has two records.
            while follower.poll() is None and time.monotonic() < deadline:
                api.post("/v1/topics/cli-live/records", json={"records": [{"value": "new"}]})
                time.sleep(0.2)
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert [r["value"] for r in ndjson(out)] == ["new", "new"]


def test_consume_from_a_time_and_an_offset(server: GatewayProcess, tidegate: Tidegate) -> None:
    tidegate("topics", "create", "cli-times")
    records = [{"value": i, "timestamp": 1_764_000_000_000 + i * 60_000} for i in range(5)]
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0) as api:
        api.post("/v1/topics/cli-times/records", json={"records": records})
    since = tidegate("consume", "cli-times", "--from", "2025-11-24T16:02:00Z")
    assert [r["value"] for r in ndjson(since.stdout)] == [2, 3, 4]
    millis = tidegate("consume", "cli-times", "--from", "@1764000180000")
    assert [r["value"] for r in ndjson(millis.stdout)] == [3, 4]
    offset = tidegate("consume", "cli-times", "--from", "4")
    assert [r["value"] for r in ndjson(offset.stdout)] == [4]
    bad = tidegate("consume", "cli-times", "--from", "yesterday")
    assert bad.returncode == 1
    assert "--from takes" in bad.stderr


def test_a_terminal_gets_a_progress_bar_with_records_per_second(
    server: GatewayProcess, tidegate: Tidegate
) -> None:
    tidegate("topics", "create", "cli-progress")
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "produce", "cli-progress", "--batch-size", "50"],
            cwd=REPO, env={**env_for(server), "COLUMNS": "100"},
            input="".join(f"{i}\n" for i in range(2000)).encode(),
            stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=False,
        )  # fmt: skip
        drawn = b""
        while select.select([controller], [], [], 0.5)[0]:
            chunk = os.read(controller, 65536)
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert b"records/s" in drawn
    assert b"2000 records appended, 0 rejected" in drawn


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env["TIDEGATE_API_KEY"] = "tg_whatever_key_0123456789"
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "topics", "list", "--url", url],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"tidegate: cannot reach {url}: connection refused\n"
