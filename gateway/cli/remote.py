"""What the client commands share: which server, which key, and how a refusal reads.

`--url` (else `TIDEGATE_URL`, else the local default `http://127.0.0.1:8080`)
names the server; the key comes from `TIDEGATE_API_KEY` only, never from the
command line, where `ps` and shell history would show it. A refusal becomes
one line with the status and the problem's `detail`, and the record errors it
lists.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from gateway.cli.admin import RemoteError

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the server [TIDEGATE_URL, {DEFAULT_URL}]")
    parser.add_argument("--json", action="store_true", help="JSON output instead of tables")


def server_url(args: argparse.Namespace) -> str:
    url: str = args.url or os.environ.get("TIDEGATE_URL") or DEFAULT_URL
    return url.rstrip("/")


def api_key() -> str:
    key = os.environ.get("TIDEGATE_API_KEY")
    if not key:
        raise RemoteError("set TIDEGATE_API_KEY to an API key of the tenant")
    return key


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key()}", "User-Agent": "tidegate-cli"}


def client(args: argparse.Namespace) -> httpx.Client:
    return httpx.Client(base_url=server_url(args), headers=headers(), timeout=TIMEOUT_S)


def async_client(args: argparse.Namespace, *, timeout_s: float = TIMEOUT_S) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server_url(args), headers=headers(), timeout=timeout_s)


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem document of a refusal, or one made of its text."""
    try:
        body = response.json()
    except ValueError:
        return {"status": response.status_code, "detail": response.text.strip()[:200]}
    if not isinstance(body, dict):
        return {"status": response.status_code, "detail": str(body)[:200]}
    return body


def checked(response: httpx.Response) -> httpx.Response:
    """`response` if it succeeded; else RemoteError with its status and detail."""
    if response.status_code < 400:
        return response
    problem = problem_of(response)
    raise RemoteError(f"{response.status_code}: {problem.get('detail', response.reason_phrase)}")
