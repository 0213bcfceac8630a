"""Request header fields read straight from the ASGI scope, one scan a field.

Starlette's `request.headers.get(name)` builds a `Headers` view and, for
each lookup, lower-cases and encodes the name and goes through the generic
`Mapping.get`; the hot routes read three or four fields a request, so they
read them here instead, with the same answer: the first field of that name,
decoded as latin-1 (as Starlette decodes it). Names are given in lower case,
as ASGI servers hand them over.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header `name` (lower case) among ASGI `headers`."""
    for key, value in headers:
        if key == name:
            return value
    return None


def header(conn: HTTPConnection, name: bytes) -> str | None:
    """The first `name` field of the request as `conn.headers.get` gives it, or None."""
    value = header_value(conn.scope["headers"], name)
    return None if value is None else value.decode("latin-1")
