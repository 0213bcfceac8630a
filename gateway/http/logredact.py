"""Keep secrets and forged lines out of the logs.

Browsers may pass a short-lived token as `?access_token=` on stream
endpoints; the access log would otherwise write it down. CR and LF in
anything a client chose (paths, names) are escaped so one request cannot
forge a second log line.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s\"]*", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    text = _TOKEN_PARAM.sub(r"\1[redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    return text.replace("\r", "\\r").replace("\n", "\\n")


class RedactingFilter(logging.Filter):
    """Rewrites every record's arguments (and message) through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg) if "%" not in record.msg else record.msg
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*logger_names: str) -> None:
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactingFilter())
