"""The server's logs: one handler on stderr, the human format or one JSON event a line.

`TIDEGATE_LOG_FORMAT=text` (default) writes `LEVEL: message`, as before;
`json` writes each record as one JSON object (python-json-logger) with
`time`, `level`, `logger`, `message` and the record's own fields: an access
event (`tidegate.access`, on with `TIDEGATE_ACCESS_LOG`) carries
`request_id`, `tenant`, `method`, `route`, `path`, `status`, `duration_ms`
and `client`. uvicorn's loggers write through the same handler (its own
access log is replaced by `tidegate.access`, which knows the route and the
tenant and never writes the query string).

Every record passes `logredact` on the handler, whichever logger made it:
bearer credentials and `access_token` values are replaced, CR and LF escaped.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from gateway.http.logredact import RedactingFilter
from gateway.http.settings import Settings

TEXT_FORMAT = "%(levelname)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message")
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def handler_for(log_format: str, stream: TextIO) -> logging.Handler:
    """A stderr-like handler writing `log_format` (text or json), with redaction."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                list(JSON_FIELDS),
                rename_fields=JSON_RENAMES,
                datefmt="%Y-%m-%dT%H:%M:%S%z",
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """The root logger at `settings.log_level`, with the one handler; every logger
    (uvicorn's included) propagates to it."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler_for(settings.log_format, stream or sys.stderr))
    root.setLevel(settings.log_level.upper())
