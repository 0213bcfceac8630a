"""`tidegate groups list|describe|reset`: consumer groups as tables a person can read.

With `--url` (or `TIDEGATE_URL`) the command asks a running server with the
key in `TIDEGATE_API_KEY` (the groups of that key's tenant). Without it, it
opens the data directory itself, which needs the server stopped (one process
owns a data directory), and shows the groups of `--tenant` (default
`default`). `reset` shows what it would do unless given `--execute` (as
Kafka's kafka-consumer-groups does). `--json` prints the API's JSON instead of
tables. Errors go to stderr in one line with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from gateway.cli.admin import RemoteError, unreachable_reason

DEFAULT_TENANT = "default"  # tenants.directory's, not imported: registering stays light
EXIT_FAILED = 1


def add_commands(commands: Any) -> None:
    groups = commands.add_parser("groups", help="list, describe and reset consumer groups")
    sub = groups.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the tenant's groups: state, members, lag, status")
    _options(listing)
    describe = sub.add_parser("describe", help="a group's members and per-partition lag")
    describe.add_argument("group")
    _options(describe)
    reset = sub.add_parser("reset", help="move an empty group's committed offsets")
    reset.add_argument("group")
    reset.add_argument("--to", required=True, choices=["earliest", "latest", "timestamp", "offset"])
    reset.add_argument("--timestamp", type=int, help="ms since the epoch (--to timestamp)")
    reset.add_argument("--offset", type=int, help="the offset (--to offset)")
    reset.add_argument("--topic", action="append", dest="topics", help="repeatable [all]")
    reset.add_argument("--execute", action="store_true", help="apply it (else a dry run)")
    _options(reset)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="a running server [TIDEGATE_URL]; else the data dir")
    parser.add_argument("--data-dir", help="data directory [TIDEGATE_DATA_DIR, ./data]")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="offline: whose groups")
    parser.add_argument("--json", action="store_true", help="the API's JSON, not tables")


def run(args: argparse.Namespace) -> int:
    # The server's modules load only when a groups command runs.
    from gateway.http.problems import GatewayError
    from storage.errors import StorageError
    from tenants.errors import TenantError

    url = args.url or os.environ.get("TIDEGATE_URL")
    try:
        result = _remote(url, args) if url else asyncio.run(_local(args))
    except (RemoteError, TenantError, StorageError) as exc:
        print(f"tidegate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except GatewayError as exc:
        print(f"tidegate: {exc.problem.detail}", file=sys.stderr)
        return EXIT_FAILED
    except ValidationError as exc:  # e.g. a negative --offset
        print(f"tidegate: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_FAILED
    except httpx.TransportError as exc:
        print(f"tidegate: cannot reach {url}: {unreachable_reason(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result, indent=2) if args.json else render(args.action, result))
    return 0


def _reset_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"to": args.to, "dry_run": not args.execute}
    for name in ("timestamp", "offset", "topics"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    return body


def _remote(url: str, args: argparse.Namespace) -> Any:
    key = os.environ.get("TIDEGATE_API_KEY")
    if not key:
        raise RemoteError("set TIDEGATE_API_KEY to a key of the tenant to use --url")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10.0) as client:
        if args.action == "list":
            response = client.get("/v1/groups")
        elif args.action == "describe":
            response = client.get(f"/v1/groups/{args.group}")
        else:
            response = client.post(f"/v1/groups/{args.group}/offsets/reset", json=_reset_body(args))
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise RemoteError(f"{response.status_code}: {detail}")
    return response.json()


async def _namespace(data_dir: Path, tenant: str, settings: Any) -> str:
    from gateway.lifespan import TENANTS_DB, key_pepper
    from tenants.directory import TenantDirectory
    from tenants.plans import plans_from_config

    if not (data_dir / TENANTS_DB).exists():
        raise RemoteError(f"no tenant directory in {data_dir}; start the server once first")
    directory = await TenantDirectory.open(
        str(data_dir / TENANTS_DB),
        pepper=key_pepper(settings),
        plans=plans_from_config(settings.plans),
    )
    try:
        record = await directory.get_tenant(tenant)
    finally:
        await directory.close()
    return record.uid or record.name


async def _local(args: argparse.Namespace) -> Any:
    from gateway.coordinator.service import GroupService
    from gateway.groups.admin import ResetIn, reset_group
    from gateway.groups.describe import group_json, groups_json
    from gateway.http.names import storage_name
    from gateway.http.settings import load_settings
    from gateway.lifespan import storage_config
    from storage.open import open_backend

    settings = load_settings({"data_dir": args.data_dir} if args.data_dir else {})
    namespace = await _namespace(Path(settings.data_dir), args.tenant, settings)
    backend = await open_backend(storage_config(settings))
    try:
        service = GroupService(backend.groups, backend.log)
        if args.action == "list":
            return {"groups": await groups_json(service, namespace)}
        stored = storage_name(namespace, args.group)
        if args.action == "describe":
            return await group_json(service, stored, namespace)
        body = ResetIn.model_validate(_reset_body(args))
        topics = None if args.topics is None else [storage_name(namespace, t) for t in args.topics]
        shown = await reset_group(service, stored, namespace, body, topics=topics)
        return {"dry_run": body.dry_run, "offsets": shown}
    finally:
        await backend.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned under their headers; numbers to the right, None as '-'."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int) or row[i] is None for row in rows) for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def render(action: str, result: Any) -> str:
    if action == "list":
        groups = result["groups"]
        if not groups:
            return "no consumer groups"
        return table(
            ["GROUP", "STATE", "GENERATION", "MEMBERS", "LAG", "STATUS"],
            [
                [g["group"], g["state"], g["generation"], g["members"], g["lag"], g["status"]]
                for g in groups
            ],
        )
    if action == "describe":
        head = (
            f"group {result['group']}: {result['state']}, generation {result['generation']}, "
            f"{result['assignor']} assignor, status {result['status']}, lag {result['lag']}"
        )
        partitions = table(
            ["TOPIC", "PARTITION", "MEMBER", "COMMITTED", "END", "LAG", "BEHIND_MS", "STATUS"],
            [
                [
                    p["topic"],
                    p["partition"],
                    p["member_id"],
                    p["committed"],
                    p["end_offset"],
                    p["lag"],
                    p["time_behind_ms"],
                    p["status"],
                ]
                for p in result["partitions"]
            ],
        )
        members = table(
            ["MEMBER", "GENERATION", "SESSION_MS", "PARTITIONS"],
            [
                [
                    m["member_id"],
                    m["generation"],
                    m["session_timeout_ms"],
                    ", ".join(f"{a['topic']}/{a['partition']}" for a in m["assignment"]) or "-",
                ]
                for m in result["members"]
            ],
        )
        return "\n\n".join([head, partitions, members if result["members"] else "no members"])
    verb = "would move" if result["dry_run"] else "moved"
    rows = [[o["topic"], o["partition"], o["previous"], o["offset"]] for o in result["offsets"]]
    note = " (a dry run: add --execute to apply)" if result["dry_run"] else ""
    return f"{verb} {len(rows)} offsets{note}\n\n" + table(
        ["TOPIC", "PARTITION", "PREVIOUS", "NEW"], rows
    )
