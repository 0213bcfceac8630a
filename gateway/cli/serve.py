"""`tidegate serve`: the gateway under uvicorn, with a drain that starts at the signal.

Exit codes: 0 after a clean shutdown, 2 for bad settings, 3 when start-up
fails (storage cannot open, port in use).
"""

from __future__ import annotations

from types import FrameType
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.http import logredact
from gateway.http.connlimits import ConnectionLimits, limited_protocol, raise_fd_limit
from gateway.http.runtime import Drain
from gateway.http.settings import Settings

EXIT_OK = 0
EXIT_SETTINGS = 2
EXIT_STARTUP = 3


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


def serve(settings: Settings) -> int:
    app = create_app(settings, own_process=True)
    drain: Drain = app.state.drain
    limits = ConnectionLimits(
        head_timeout_s=settings.head_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        body_min_bytes_per_s=settings.body_min_bytes_per_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=raise_fd_limit(settings.max_connections),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=limited_protocol(limits),
        lifespan="on",
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
    )
    # uvicorn configured its loggers in Config(); filter them before the first request.
    logredact.install("uvicorn.access", "uvicorn.error", "tidegate")
    server = _DrainingServer(config, on_exit=drain.request)
    server.run()
    return EXIT_OK if server.started else EXIT_STARTUP
