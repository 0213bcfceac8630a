"""`tidegate groups list|describe|reset`, against a running server and offline.

The first command runs as a process (the installed entry point); the others
call the CLI's `main` in this process, which saves a second of start-up each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from tests.gateway.conftest import BOOTSTRAP_KEY, REPO, GatewayProcess
from tests.gateway.groups.client import Member


def tidegate_process(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def tidegate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in list(os.environ):
        if name.startswith("TIDEGATE_"):
            monkeypatch.delenv(name)

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        with monkeypatch.context() as scoped:
            for name, value in (env or {}).items():
                scoped.setenv(name, value)
            code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_groups_commands_online_and_offline(tmp_path: Path, tidegate: Any) -> None:
    data = tmp_path / "data"
    server = GatewayProcess(data).start()
    try:
        with server.client() as api:
            assert (
                api.post("/v1/topics", json={"name": "orders", "partitions": 2}).status_code == 201
            )
            records = [{"partition": p, "value": i} for p in (0, 1) for i in range(4)]
            assert (
                api.post("/v1/topics/orders/records", json={"records": records}).status_code == 200
            )
            member = Member(api, "billing", ["orders"], session_timeout_ms=120_000)
            member.join()
            assert member.commit({("orders", 0): 3, ("orders", 1): 1}).status_code == 204
        remote = {"TIDEGATE_URL": server.url, "TIDEGATE_API_KEY": BOOTSTRAP_KEY}
        code, out, err = tidegate_process("groups", "list", env=remote)
        assert code == 0, err
        header, row = out.splitlines()
        assert header.split() == ["GROUP", "STATE", "GENERATION", "MEMBERS", "LAG", "STATUS"]
        assert row.split() == ["billing", "stable", "1", "1", "4", "OK"]
        code, out, err = tidegate("groups", "describe", "billing", env=remote)
        assert code == 0, err
        assert "group billing: stable, generation 1" in out
        lines = [line.split() for line in out.splitlines()]
        assert ["orders", "0", member.member_id, "3", "4", "1"] == lines[3][:6]
        code, _, err = tidegate("groups", "reset", "billing", "--to", "earliest", env=remote)
        assert code == 1
        assert "active members" in err
        with server.client() as api:
            member.api = api
            member.leave()
    finally:
        server.stop()

    offline = ["--data-dir", str(data)]
    code, out, err = tidegate("groups", "reset", "billing", "--to", "earliest", *offline)
    assert code == 0, err
    assert out.startswith("would move 2 offsets (a dry run")
    assert [line.split() for line in out.splitlines()[-2:]] == [
        ["orders", "0", "3", "0"],
        ["orders", "1", "1", "0"],
    ]
    code, out, err = tidegate(
        "groups", "reset", "billing", "--to", "offset", "--offset", "2", "--execute", *offline
    )
    assert code == 0, err
    assert out.startswith("moved 2 offsets")
    code, out, err = tidegate("groups", "describe", "billing", "--json", *offline)
    assert code == 0, err
    assert '"committed": 2' in out
    code, out, err = tidegate("groups", "describe", "nope", *offline)
    assert code == 1
    assert "does not exist" in err
