"""Keep secrets and forged lines out of the logs.

Browsers may pass a short-lived token as `?access_token=` on stream
endpoints; the access log would otherwise write it down. Credentials can turn
up anywhere a client chose the text (a path, a header it misplaced), so
anything shaped like an API key (`tg_…`) or a JWT is replaced wherever it
appears, as are bearer credentials. CR and LF in anything a client chose
(paths, names) are escaped so one request cannot forge a second log line.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s\"]*", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)
_API_KEY = re.compile(r"tg_[A-Za-z0-9_\-]{8,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


def redact(text: str) -> str:
    text = _TOKEN_PARAM.sub(r"\1[redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _API_KEY.sub("tg_[redacted]", text)
    text = _JWT.sub("[redacted-jwt]", text)
    return text.replace("\r", "\\r").replace("\n", "\\n")


class RedactingFilter(logging.Filter):
    """Rewrites every record's message, arguments and extra fields through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg) if "%" not in record.msg else record.msg
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        fields = record.__dict__
        for name, value in fields.items():
            if isinstance(value, str) and name not in _STANDARD:
                fields[name] = redact(value)
        return True


def install(*logger_names: str) -> None:
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactingFilter())
