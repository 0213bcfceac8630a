"""Every `sh` example in docs/api.md runs against a live server and gets sane answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.conftest import REPO, GatewayProcess

DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def examples() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_docs_have_examples() -> None:
    assert len(examples()) >= 8


def test_docs_examples_run_in_order(gateway: GatewayProcess, tmp_path: Path) -> None:
    env = dict(os.environ, TIDEGATE_URL=gateway.url, TIDEGATE_API_KEY=gateway.bootstrap_key or "")
    for script in examples():
        # The examples keep files in /tmp; each run gets its own, so runs side by side
        # never read each other's keys.
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.replace("/tmp/", f"{tmp_path}/")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (script, done.stdout, done.stderr)
        for reply in replies(done.stdout):
            if isinstance(reply, dict) and "type" in reply:
                # The one error example is the 416 the docs show on purpose.
                assert reply["type"].endswith("/offset-out-of-range"), (script, reply)


def replies(out: str) -> list[object]:
    """The JSON documents in a script's output (curl prints them back to back)."""
    decoder = json.JSONDecoder()
    found: list[object] = []
    pos = 0
    while pos < len(out):
        if out[pos] in "{[":
            value, pos = decoder.raw_decode(out, pos)
            found.append(value)
        else:
            pos += 1
    return found


@pytest.mark.parametrize("flag", ["--help", "serve --help"])
def test_cli_help_documents_the_settings(flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *flag.split()],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")},
    )
    assert done.returncode == 0, done.stderr
    for name in (
        "TIDEGATE_STORAGE",
        "TIDEGATE_DATA_DIR",
        "TIDEGATE_REDIS_URL",
        "TIDEGATE_PORT",
        "TIDEGATE_HOST",
        "TIDEGATE_BOOTSTRAP_KEY",
        "TIDEGATE_OAUTH_ISSUERS",
        "TIDEGATE_REDIS_CLUSTER",
    ):
        assert name in done.stdout


def test_the_docs_list_every_problem_type() -> None:
    from gateway.http.problems import ProblemType

    text = DOC.read_text()
    assert [p.slug for p in ProblemType if f"| `{p.slug}` | {p.status} |" not in text] == []
