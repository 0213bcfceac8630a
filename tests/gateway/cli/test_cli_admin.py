"""`tidegate tenants ...` and `tidegate keys ...`, offline on a data directory and against
a running server, as an operator would type them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.conftest import BOOTSTRAP_KEY, REPO, GatewayProcess, free_port


def tidegate(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None
    return proc.returncode, out, proc.stderr


def test_offline_commands_then_the_server_honours_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    GatewayProcess(data).start().stop()  # first start creates the directory
    code, out, err = tidegate(
        "tenants", "create", "acme", "--plan", "standard", "--data-dir", str(data)
    )
    assert code == 0, err
    assert out["name"] == "acme"
    code, out, err = tidegate("tenants", "create", "acme", "--data-dir", str(data))
    assert code == 1
    assert "already exists" in err
    code, out, _ = tidegate("tenants", "list", "--data-dir", str(data))
    assert {t["name"] for t in out["tenants"]} == {"default", "acme"}
    code, minted, err = tidegate(
        "keys",
        "create",
        "acme",
        "--scope",
        "topics:read",
        "--scope",
        "topics:admin",
        "--data-dir",
        str(data),
    )
    assert code == 0, err
    assert minted["key"].startswith("tg_")
    gateway = GatewayProcess(data).start()
    try:
        headers = {"Authorization": f"Bearer {minted['key']}"}
        assert (
            httpx.post(f"{gateway.url}/v1/topics", json={"name": "x"}, headers=headers).status_code
            == 201
        )
        # revoke through the running server: refused on the very next request
        code, out, err = tidegate(
            "keys",
            "revoke",
            "acme",
            minted["key_id"],
            "--url",
            gateway.url,
            env={"TIDEGATE_API_KEY": BOOTSTRAP_KEY},
        )
        assert code == 0, err
        assert httpx.get(f"{gateway.url}/v1/topics", headers=headers).status_code == 401
        code, out, err = tidegate(
            "tenants",
            "list",
            "--url",
            gateway.url,
            env={"TIDEGATE_API_KEY": "tg_wrong_key_0123456789abcdef0123"},
        )
        assert code == 1
        assert "401" in err
        code, out, err = tidegate(
            "keys",
            "create",
            "acme",
            "--scope",
            "topics:read",
            "--url",
            gateway.url,
            env={"TIDEGATE_API_KEY": BOOTSTRAP_KEY},
        )
        assert code == 0, err
        assert out["key"].startswith("tg_")
    finally:
        gateway.stop()


def test_offline_commands_need_an_existing_data_directory(tmp_path: Path) -> None:
    code, _, err = tidegate("tenants", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 1
    assert "start the server once" in err


def test_a_server_that_is_not_running_is_one_line_and_status_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, _, err = tidegate(
        "tenants", "list", "--url", url, env={"TIDEGATE_API_KEY": BOOTSTRAP_KEY}
    )
    assert code == 1
    assert err.splitlines() == [f"tidegate: cannot reach {url}: connection refused"]


def test_a_server_that_hangs_up_without_a_reply_is_one_line_and_status_1() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        stop = threading.Event()

        def hang_up() -> None:  # accept, read the request, close without a word
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.recv(65536)

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        try:
            code, _, err = tidegate(
                "keys",
                "revoke",
                "acme",
                "k1",
                "--url",
                url,
                env={"TIDEGATE_API_KEY": BOOTSTRAP_KEY},
            )
        finally:
            stop.set()
            thread.join(5)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tidegate: cannot reach {url}: ")
    assert "Traceback" not in err
