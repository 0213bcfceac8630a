"""Request bodies read within bounds and parsed as JSON within bounds.

The body size is checked against `Content-Length` before reading and again
while streaming (a chunked body has no length); JSON is bounded by
`jsonlimits` before orjson parses it. Every failure is a GatewayError with a
precise status: 413 for size, 400 for malformed JSON with line and column.
"""

from __future__ import annotations

from typing import Any, NoReturn

import orjson
from starlette.requests import ClientDisconnect, Request

from gateway.http.jsonlimits import (
    JsonLimitExceeded,
    JsonLimits,
    check_json_limits,
    may_be_too_deep,
    needs_scan,
    too_deep,
)
from gateway.http.problems import GatewayError, ProblemType


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 `body-too-large` once it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise GatewayError(ProblemType.BAD_REQUEST, "Content-Length is not a number") from None
        if length > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:  # the ASGI messages themselves: `request.stream()` is an async generator
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        ProblemType.BODY_TOO_LARGE,
        f"the request body is larger than {limit} bytes",
        limit=limit,
    )


def check_limits(body: bytes, limits: JsonLimits) -> None:
    """413 `json-too-complex` if the raw body nests, counts or stretches past `limits`."""
    try:
        check_json_limits(body, limits)
    except JsonLimitExceeded as exc:
        raise GatewayError(
            ProblemType.JSON_TOO_COMPLEX,
            str(exc),
            limit=exc.limit,
            value=exc.value,
            position=exc.position,
        ) from None


def loads(body: bytes, *, line_offset: int = 0) -> Any:
    """orjson.loads, with a malformed document as 400 naming its line and column."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            ProblemType.MALFORMED_JSON,
            f"{exc.msg} at line {exc.lineno + line_offset}, column {exc.colno}",
            line=exc.lineno + line_offset,
            column=exc.colno,
        ) from None


def parse_json(
    body: bytes, limits: JsonLimits, *, line_offset: int = 0, check_depth: bool = True
) -> Any:
    """Parse one JSON document within `limits` (413 `json-too-complex` past them).

    Byte counts decide in C whether the body could exceed the item or string
    limits; only then is it scanned before parsing. Depth is checked on the
    parsed tree when the body has enough brackets to matter, and the precise
    scanner runs only to describe a crossing, so a typical batch costs one
    orjson parse plus a walk over its containers. With `check_depth=False` the
    caller checks depth itself (produce does, record by record, while it
    validates); orjson's own limit of 1024 levels is still reported as 413.
    """
    if needs_scan(body, limits):
        check_limits(body, limits)
    if check_depth and not may_be_too_deep(body, limits):
        return loads(body, line_offset=line_offset)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        check_limits(body, limits)  # too deep for orjson: say which limit
        return loads(body, line_offset=line_offset)  # else: the parser's own error
    if check_depth and too_deep(doc, limits.max_depth):
        check_limits(body, limits)
    return doc


def refuse_too_deep(body: bytes, limits: JsonLimits) -> NoReturn:
    """413 `json-too-complex` for a body already found to nest past the depth limit."""
    check_limits(body, limits)  # names the limit and the byte where it is crossed
    raise GatewayError(
        ProblemType.JSON_TOO_COMPLEX,
        f"JSON depth limit of {limits.max_depth} exceeded",
        limit="depth",
        value=limits.max_depth,
    )


def require_json_media(request: Request) -> None:
    """415 unless the request's media type says JSON (`application/json` or `*+json`)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise GatewayError(
            ProblemType.UNSUPPORTED_MEDIA_TYPE,
            f"send application/json, not {media or 'no Content-Type'}",
            accepted=["application/json"],
        )


async def read_json(request: Request, *, limit: int, limits: JsonLimits) -> Any:
    """A JSON request body (any media type that says JSON), bounded and parsed."""
    require_json_media(request)
    return parse_json(await read_body(request, limit), limits)
