"""The README: its configuration table names every setting the gateway reads, and
its command lines work as written."""

import json
import os
import shlex
import subprocess
from pathlib import Path

from gateway.http.settings import Settings
from tests.gateway.conftest import BOOTSTRAP_KEY, REPO, GatewayProcess

README = REPO / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    missing = [
        f"TIDEGATE_{name.upper()}"
        for name in Settings.model_fields
        if f"`TIDEGATE_{name.upper()}`" not in text
    ]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block
    assert "make test" in first_block


def _readme_cli_lines() -> list[str]:
    """Every `./tidegate …` line of the README's shell blocks, comments dropped."""
    lines = []
    for block in README.read_text().split("```sh")[1:]:
        for line in block.split("```", 1)[0].splitlines():
            if "./tidegate" in line:
                lines.append(shlex.join(shlex.split(line, comments=True)))
    return lines


def test_the_readmes_cli_lines_run_as_written(tmp_path: Path) -> None:
    """In a directory where `./tidegate` is this checkout's (as after `make run`),
    beside a running server on `./data`: only the URL's port, `$KEY` and the
    `<key_id>` placeholder are filled in."""
    lines = _readme_cli_lines()
    assert len(lines) >= 5, lines
    (tmp_path / "tidegate").symlink_to(REPO / "tidegate")
    server = GatewayProcess(tmp_path / "data").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env["KEY"] = BOOTSTRAP_KEY
    key_id = None
    try:
        for line in lines:
            command = line.replace("http://127.0.0.1:8080", server.url)
            if "'<key_id>'" in command:
                assert key_id is not None, "a key id is used before a key is created"
                command = command.replace("'<key_id>'", key_id)
            # shlex.join quoted $KEY; the README's shell expands it.
            command = command.replace("'TIDEGATE_API_KEY=$KEY'", 'TIDEGATE_API_KEY="$KEY"')
            done = subprocess.run(
                ["sh", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{line}\n{done.stderr}"
            reply = json.loads(done.stdout)
            key_id = reply.get("key_id", key_id)
    finally:
        server.stop()
