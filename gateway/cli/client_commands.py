"""The client commands (`topics`, `produce`, `consume`): registered and run in one place.

They talk to a server (`--url`/`TIDEGATE_URL`, key in `TIDEGATE_API_KEY`);
any failure is one line on stderr and exit status 1, a server that cannot be
reached included. A reader that stops early (`tidegate consume … | head`)
ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx
from rich.console import Console

from gateway.cli import consume, produce, topics
from gateway.cli.admin import EXIT_FAILED, RemoteError, unreachable_reason
from gateway.cli.remote import server_url

COMMANDS = ("topics", "produce", "consume")


def add_commands(commands: Any) -> None:
    topics.add_commands(commands)
    produce.add_commands(commands)
    consume.add_commands(commands)


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "topics":
            return topics.run(args, Console())
        if args.command == "produce":
            return produce.run(args)
        return consume.run(args)
    except (RemoteError, ValueError) as exc:
        print(f"tidegate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except httpx.TransportError as exc:
        print(
            f"tidegate: cannot reach {server_url(args)}: {unreachable_reason(exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let no flush at exit complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
