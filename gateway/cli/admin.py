"""`tidegate tenants ...` and `tidegate keys ...`: operator commands, offline or remote.

With `--url` (or `TIDEGATE_URL`) the command calls a running server's admin
API with the operator key from `TIDEGATE_API_KEY`; a revocation takes effect
there at once. Without it, the command opens the tenant directory in the data
directory directly (SQLite in WAL mode, safe beside a running server); a
running server then notices a revocation or suspension within its few
seconds of key caching. Output is JSON on stdout; errors go to stderr in one
line with exit status 1, also when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tenants.errors import TenantError

EXIT_FAILED = 1


def add_commands(commands: Any) -> None:
    """Register the `tenants` and `keys` sub-commands on the main parser."""
    tenants = commands.add_parser("tenants", help="create and list tenants")
    t_sub = tenants.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = t_sub.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--plan", help="plan name [TIDEGATE_DEFAULT_PLAN, free]")
    _target_options(create)
    listing = t_sub.add_parser("list", help="list tenants")
    _target_options(listing)

    keys = commands.add_parser("keys", help="create and revoke API keys")
    k_sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    kcreate = k_sub.add_parser("create", help="mint a key (printed once)")
    kcreate.add_argument("tenant")
    kcreate.add_argument(
        "--scope", action="append", required=True, dest="scopes", help="repeatable"
    )
    kcreate.add_argument("--topic", action="append", default=[], dest="topics", help="pattern")
    kcreate.add_argument("--expires-in", type=int, dest="expires_in_s", help="seconds")
    _target_options(kcreate)
    revoke = k_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("tenant")
    revoke.add_argument("key_id")
    _target_options(revoke)


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="a running server [TIDEGATE_URL]; else the data dir")
    parser.add_argument("--data-dir", help="data directory [TIDEGATE_DATA_DIR, ./data]")


def run(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("TIDEGATE_URL")
    try:
        result = _remote(url, args) if url else asyncio.run(_local(args))
    except (TenantError, RemoteError) as exc:
        print(f"tidegate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except httpx.TransportError as exc:  # refused, timed out, no such host, cut off
        print(f"tidegate: cannot reach {url}: {unreachable_reason(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result, indent=2))
    return 0


def unreachable_reason(exc: httpx.TransportError) -> str:
    """Why a server could not be reached, in a few words (never a traceback)."""
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed without a reply"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection was cut off"
    text = str(exc).strip() or type(exc).__name__
    return text[:1].lower() + text[1:]


class RemoteError(Exception):
    """The server refused the call; the message is its problem detail."""


def _remote(url: str, args: argparse.Namespace) -> Any:
    key = os.environ.get("TIDEGATE_API_KEY")
    if not key:
        raise RemoteError("set TIDEGATE_API_KEY to an operator key to use --url")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10.0) as client:
        if args.command == "tenants" and args.action == "create":
            body: dict[str, Any] = {"name": args.name}
            if args.plan:
                body["plan"] = args.plan
            response = client.post("/v1/admin/tenants", json=body)
        elif args.command == "tenants":
            response = client.get("/v1/admin/tenants")
        elif args.action == "create":
            body = {"scopes": args.scopes, "topics": args.topics}
            if args.expires_in_s is not None:
                body["expires_in_s"] = args.expires_in_s
            response = client.post(f"/v1/admin/tenants/{args.tenant}/keys", json=body)
        else:
            response = client.delete(f"/v1/admin/tenants/{args.tenant}/keys/{args.key_id}")
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise RemoteError(f"{response.status_code}: {detail}")
    return response.json() if response.content else {"revoked": args.key_id}


async def _local(args: argparse.Namespace) -> Any:
    # Loaded here, not at import: the client commands share this module's helpers
    # and should not pay for the server's modules.
    from gateway.http.settings import load_settings
    from gateway.lifespan import TENANTS_DB, key_pepper
    from tenants.directory import TenantDirectory
    from tenants.plans import plans_from_config

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = load_settings(overrides)
    path = Path(settings.data_dir)
    if not (path / TENANTS_DB).exists():
        raise RemoteError(f"no tenant directory in {path}; start the server once first")
    pepper = key_pepper(settings)
    directory = await TenantDirectory.open(
        str(path / TENANTS_DB), pepper=pepper, plans=plans_from_config(settings.plans)
    )
    try:
        if args.command == "tenants" and args.action == "create":
            record = await directory.create_tenant(args.name, args.plan or settings.default_plan)
            return {"name": record.name, "plan": record.plan, "status": record.status}
        if args.command == "tenants":
            return {
                "tenants": [
                    {"name": r.name, "plan": r.plan, "status": r.status}
                    for r in await directory.list_tenants()
                ]
            }
        if args.action == "create":
            expires_ms = None
            if args.expires_in_s is not None:
                expires_ms = int(time.time() * 1000) + args.expires_in_s * 1000
            key_id, key = await directory.create_key(
                args.tenant, args.scopes, args.topics, expires_ms=expires_ms
            )
            return {"key_id": key_id, "key": key, "tenant": args.tenant}
        await directory.revoke_key(args.tenant, args.key_id)
        return {"revoked": args.key_id}
    finally:
        await directory.close()
