"""Query and path parameters: integers within bounds, read the same way by every route.

Query text is percent-decoded as UTF-8, strictly: a parameter whose bytes are
not UTF-8 once decoded (`?key=%ED%A0%80`, a lone surrogate) is refused with
400 naming it, never turned into U+FFFD and stored as something the client
did not send.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from starlette.requests import HTTPConnection

from gateway.http.problems import GatewayError, ProblemType

MAX_INT64 = 2**63 - 1


def query_of(conn: HTTPConnection) -> Mapping[str, str]:
    """The query parameters, the last value of each name; split in one pass when the
    query has nothing escaped (`%`, `+`) in it. 400 for a name or value that is not
    UTF-8 once percent-decoded."""
    raw: bytes = conn.scope["query_string"]
    if b"%" in raw or b"+" in raw or not raw.isascii():
        return decoded_query(raw)
    params: dict[str, str] = {}
    for part in raw.decode("ascii").split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def decoded_query(raw: bytes) -> dict[str, str]:
    """`raw` (a query string) split on `&`, each name and value `+`- and
    percent-decoded and read as UTF-8, strictly; the last value of each name."""
    params: dict[str, str] = {}
    for part in raw.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _utf8(raw_name)
        if name is None:
            shown = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
            raise _not_utf8(shown)
        value = _utf8(raw_value)
        if value is None:
            raise _not_utf8(name)
        params[name] = value
    return params


def _utf8(escaped: bytes) -> str | None:
    try:
        return unquote_to_bytes(escaped.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _not_utf8(name: str) -> GatewayError:
    return GatewayError(
        ProblemType.INVALID_PARAMETER,
        f"query parameter {name!r} is not valid UTF-8 once percent-decoded",
        parameter=name,
    )


def parse_int(text: str) -> int | None:
    """A decimal int64, or None. Bounded length, so no huge-int conversion cost."""
    if len(text) < 19 and text.isdigit() and text.isascii():  # the common case: small, >= 0
        return int(text)
    body = text[1:] if text.startswith("-") else text
    if not body.isascii() or not body.isdigit() or len(body) > 19:
        return None
    value = int(text)
    return value if -MAX_INT64 - 1 <= value <= MAX_INT64 else None


def int_param(
    params: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    """An integer query parameter, clamped to `maximum`; 400 if malformed or below `minimum`."""
    text = params.get(name)
    if text is None:
        return default
    value = parse_int(text)
    if value is None or value < minimum:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            f"{name} must be an integer >= {minimum}",
            parameter=name,
        )
    return value if maximum is None else min(value, maximum)
