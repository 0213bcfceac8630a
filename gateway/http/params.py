"""Query and path parameters: integers within bounds, read the same way by every route."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import HTTPConnection

from gateway.http.problems import GatewayError, ProblemType

MAX_INT64 = 2**63 - 1


def query_of(conn: HTTPConnection) -> Mapping[str, str]:
    """The query parameters, the last value of each name, as `conn.query_params`
    gives them; split in one pass when the query has nothing escaped (`%`, `+`) in it."""
    raw: bytes = conn.scope["query_string"]
    if b"%" in raw or b"+" in raw or not raw.isascii():
        return conn.query_params
    params: dict[str, str] = {}
    for part in raw.decode("ascii").split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def parse_int(text: str) -> int | None:
    """A decimal int64, or None. Bounded length, so no huge-int conversion cost."""
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
