"""`tidegate topics list|create|describe|delete`: a tenant's topics, against a server.

Tables for people (rich), the API's own JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.cli.remote import add_target_options, checked, client


def add_commands(commands: Any) -> None:
    topics = commands.add_parser("topics", help="list, create, describe and delete topics")
    sub = topics.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the tenant's topics")
    add_target_options(listing)
    create = sub.add_parser("create", help="create a topic")
    create.add_argument("name")
    create.add_argument("--partitions", type=int, default=1, help="[1]")
    create.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key (repeatable), e.g. retention_ms=86400000, durability=none",
    )
    add_target_options(create)
    describe = sub.add_parser("describe", help="a topic's config and partitions")
    describe.add_argument("name")
    add_target_options(describe)
    delete = sub.add_parser("delete", help="delete a topic and its records")
    delete.add_argument("name")
    add_target_options(delete)


def config_value(text: str) -> Any:
    """`86400000` → 86400000, `null` → None, `none` → "none": JSON when it parses."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def run(args: argparse.Namespace, console: Console) -> int:
    with client(args) as api:
        if args.action == "list":
            reply = checked(api.get("/v1/topics")).json()
            if args.json:
                console.print_json(data=reply)
            else:
                console.print(topics_table(reply["topics"]))
        elif args.action == "create":
            config = {}
            for item in args.config:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"--config takes KEY=VALUE, not {item!r}")
                config[key] = config_value(value)
            body = {"name": args.name, "partitions": args.partitions, "config": config}
            reply = checked(api.post("/v1/topics", json=body)).json()
            if args.json:
                console.print_json(data=reply)
            else:
                console.print(f"created {reply['name']} ({reply['partitions']} partitions)")
        elif args.action == "describe":
            reply = checked(api.get(f"/v1/topics/{args.name}")).json()
            if args.json:
                console.print_json(data=reply)
            else:
                console.print(config_table(reply))
                console.print(partitions_table(reply["partitions"]))
        else:
            checked(api.delete(f"/v1/topics/{args.name}"))
            if args.json:
                console.print_json(data={"deleted": args.name})
            else:
                console.print(f"deleted {args.name}")
    return 0


def topics_table(topics: list[dict[str, Any]]) -> Table:
    table = Table("topic", "partitions", "durability", "retention_ms", "value_format")
    for t in topics:
        config = t.get("config", {})
        table.add_row(
            t["name"],
            str(t["partitions"]),
            str(config.get("durability", "")),
            str(config.get("retention_ms")),
            str(config.get("value_format", "")),
        )
    return table


def config_table(topic: dict[str, Any]) -> Table:
    table = Table("setting", "value", title=f"{topic['name']} ({topic.get('id', '')})")
    table.add_row("partitions", str(len(topic["partitions"])))
    for key, value in sorted(topic.get("config", {}).items()):
        table.add_row(key, json.dumps(value))
    return table


def partitions_table(partitions: list[dict[str, Any]]) -> Table:
    table = Table("partition", "start_offset", "end_offset", "records", "bytes")
    for p in partitions:
        start, end = p["start_offset"], p["end_offset"]
        table.add_row(str(p["partition"]), str(start), str(end), str(end - start), str(p["bytes"]))
    return table
