"""Request ids: the client's `X-Request-ID` when it is a safe one, else a new one.

A request id ties a client's report to the server's log line. The client's own
id is kept when it is 1 to `MAX_REQUEST_ID` characters of letters, digits and
`-_.:`, so a log line cannot be forged or flooded through it; anything else
(too long, other characters, or starting with `tg_`, the prefix of an API key,
so that a key pasted into the wrong header is not written to the log) gets a
new id of 32 hex digits. The id is returned in the `X-Request-ID` header of
every reply the app gives, errors included.
"""

from __future__ import annotations

import itertools
import os
import re

HEADER = b"x-request-id"
MAX_REQUEST_ID = 64
_SAFE = re.compile(rb"[A-Za-z0-9._:\-]{1,%d}" % MAX_REQUEST_ID)
_KEY_PREFIX = b"tg_"

SCOPE_KEY = "tidegate.request_id"
"""Where the request's id is kept in the ASGI scope (for the error handlers)."""
TENANT_SCOPE_KEY = "tidegate.tenant"
"""Where authentication notes the caller's tenant in the ASGI scope (for the log)."""


_PROCESS = os.urandom(8).hex().encode()
_SEQUENCE = itertools.count()


def new_request_id() -> bytes:
    """32 hex digits: this process's random half, then a sequence number (unique
    across processes and restarts without a system call per request)."""
    return b"%s%016x" % (_PROCESS, next(_SEQUENCE))


def request_id_from(given: bytes | None) -> bytes:
    """The id a request goes by: `given` (the client's header) if it is safe, else new."""
    if given is not None and _SAFE.fullmatch(given) and not given.startswith(_KEY_PREFIX):
        return given
    return new_request_id()
