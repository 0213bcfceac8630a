"""The `tidegate` command: `tidegate serve` runs the gateway under uvicorn.

The only place that turns errors into exit codes: 0 after a clean shutdown,
2 for bad settings, 3 when start-up fails (storage cannot open, port in use).
SIGTERM/SIGINT start a graceful drain at once: readiness turns false and
waiting long-polls are answered before uvicorn waits for in-flight requests.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError

from gateway import admin_cli, logredact
from gateway.app import create_app
from gateway.http_protocol import GatheringHttpProtocol
from gateway.runtime import Runtime
from gateway.settings import ConfigFileError, Settings, describe_settings, load_settings

EXIT_OK = 0
EXIT_SETTINGS = 2
EXIT_STARTUP = 3

DESCRIPTION = "Tidegate: a multi-tenant HTTP gateway in front of a Kafka-style log."
SETTINGS_HELP = (
    "Every setting can also be given as an environment variable or in a config file\n"
    "(TOML or JSON, keys as below without the TIDEGATE_ prefix, path from --config or\n"
    "TIDEGATE_CONFIG_FILE). Priority: command line > environment > file > default.\n\n"
)


class _DrainingServer(uvicorn.Server):
    """A uvicorn server that tells the app to drain the moment a signal arrives.

    uvicorn waits for open requests before it runs the lifespan shutdown; a
    long-poll would hold it for its whole wait. Draining first answers them.
    """

    def __init__(self, config: uvicorn.Config, on_exit: Any) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


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
    return parser


def serve(settings: Settings) -> int:
    app = create_app(settings, own_process=True)
    runtime: Runtime = app.state.runtime
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=GatheringHttpProtocol,
        lifespan="on",
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
    )
    # uvicorn configured its loggers in Config(); filter them before the first request.
    logredact.install("uvicorn.access", "uvicorn.error", "tidegate")
    server = _DrainingServer(config, on_exit=runtime.request_drain)
    server.run()
    return EXIT_OK if server.started else EXIT_STARTUP


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("tenants", "keys"):
        try:
            return admin_cli.run(args)
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
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s: %(message)s")
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
