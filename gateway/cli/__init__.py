"""The `tidegate` command: `tidegate serve` runs the gateway under uvicorn.

The only place that turns errors into exit codes: 0 after a shutdown by
signal, 2 for bad settings, 3 when start-up fails (port in use, data directory
in use, storage cannot open), 1 when an admin command fails. SIGTERM/SIGINT
start a drain at once in which every accepted request is answered (serve.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from gateway.cli import admin as admin_cli
from gateway.cli import client_commands
from gateway.cli import groups as groups_cli
from gateway.http.logs import configure_logging
from gateway.http.settings import ConfigFileError, describe_settings, load_settings

DESCRIPTION = "Tidegate: a multi-tenant HTTP gateway in front of a Kafka-style log."
SETTINGS_HELP = (
    "Every setting can also be given as an environment variable or in a config file\n"
    "(TOML or JSON, keys as below without the TIDEGATE_ prefix, path from --config or\n"
    "TIDEGATE_CONFIG_FILE). Priority: command line > environment > file > default.\n\n"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidegate",
        description=DESCRIPTION,
        epilog=SETTINGS_HELP + describe_settings(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway (uvicorn with uvloop and httptools).",
        epilog=SETTINGS_HELP + describe_settings(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="interface to listen on [TIDEGATE_HOST, 127.0.0.1]")
    serve.add_argument("--port", type=int, help="TCP port [TIDEGATE_PORT, 8080]")
    serve.add_argument("--data-dir", help="data directory [TIDEGATE_DATA_DIR, ./data]")
    serve.add_argument(
        "--storage", choices=["file", "redis"], help="storage engine [TIDEGATE_STORAGE, file]"
    )
    serve.add_argument("--redis-url", help="Redis node URL [TIDEGATE_REDIS_URL]")
    serve.add_argument(
        "--config", type=Path, help="TOML or JSON settings file [TIDEGATE_CONFIG_FILE]"
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="[info]")
    admin_cli.add_commands(commands)
    client_commands.add_commands(commands)
    groups_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)
    # The server's modules load only for the commands that need them: a client
    # command starts in a fraction of the time.
    from gateway.cli.serve import EXIT_OK, EXIT_SETTINGS, serve

    if args.command in ("tenants", "keys"):
        try:
            return admin_cli.run(args)
        except (ValidationError, ConfigFileError) as exc:
            print(f"tidegate: invalid settings:\n{exc}", file=sys.stderr)
            return EXIT_SETTINGS
    if args.command == "groups":
        try:
            return groups_cli.run(args)
        except (ValidationError, ConfigFileError) as exc:
            print(f"tidegate: invalid settings:\n{exc}", file=sys.stderr)
            return EXIT_SETTINGS
    if args.command != "serve":
        parser.print_help()
        return EXIT_OK
    overrides = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "storage": args.storage,
        "redis_url": args.redis_url,
        "log_level": args.log_level,
    }
    try:
        settings = load_settings(overrides, config_file=args.config)
    except (ValidationError, ConfigFileError) as exc:
        print(f"tidegate: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings)
    return serve(settings)
