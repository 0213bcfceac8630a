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

from gateway.http.headers import header
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
    declared = header(request, b"content-length")
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


def malformed_json(body: bytes, position: int, reason: str) -> GatewayError:
    """400 `malformed-json` for `body`, broken at byte `position`, naming the line and
    column there (1-based, as editors count them)."""
    line = body.count(b"\n", 0, position) + 1
    column = position - (body.rfind(b"\n", 0, position) + 1) + 1
    return GatewayError(
        ProblemType.MALFORMED_JSON,
        f"{reason} at line {line}, column {column}",
        line=line,
        column=column,
    )


def loads(body: bytes) -> Any:
    """orjson.loads, with a malformed document as 400 naming its line and column."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed_json(body, exc.pos, exc.msg) from None


def parse_json(body: bytes, limits: JsonLimits) -> Any:
    """Parse one JSON document within `limits` (413 `json-too-complex` past them).

    Byte counts decide in C whether the body could exceed the item or string
    limits; only then is it scanned before parsing. Depth is checked on the
    parsed tree when the body has enough brackets to matter, and the precise
    scanner runs only to describe a crossing, so a typical body costs one
    orjson parse plus a walk over its containers. orjson's own limit of 1024
    levels is reported as 413 too.
    """
    if needs_scan(body, limits):
        check_limits(body, limits)
    if not may_be_too_deep(body, limits):
        return loads(body)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        check_limits(body, limits)  # too deep for orjson: say which limit
        return loads(body)  # else: the parser's own error
    if too_deep(doc, limits.max_depth):
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
