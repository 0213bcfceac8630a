"""The close codes a WebSocket stream ends with, and which problem gets which.

Browsers show a closed WebSocket's code and reason but never the HTTP status
of a refused handshake, so a stream refused for its credential, its topic or a
quota is accepted and then closed with one of these codes, after an `error`
frame that carries the problem document. Only a forbidden `Origin` is refused
before the upgrade (HTTP 403): a cross-site page is never given an open socket.
"""

from __future__ import annotations

from enum import IntEnum

from gateway.http.problems import Problem, ProblemType


class CloseCode(IntEnum):
    NORMAL = 1000  # the client closed, or asked to end the stream
    GOING_AWAY = 1001  # the server is shutting down; the reason names the resume position
    UNSUPPORTED_DATA = 1003  # a binary frame from the client
    TOO_BIG = 1009  # a client message past TIDEGATE_STREAM_MAX_MESSAGE_BYTES (decompressed)
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # the backend is unavailable, or the server is full
    BAD_REQUEST = 4400  # a bad parameter or client frame
    UNAUTHORIZED = 4401  # no credential, a bad one, or it expired while streaming
    FORBIDDEN = 4403  # the credential may not read this topic
    TOPIC_GONE = 4404  # no such topic, or it was deleted while streaming
    STALLED = 4408  # the client did not read for TIDEGATE_STREAM_STALL_TIMEOUT_S
    GAP = 4410  # a position was no longer retained and the client asked on_gap=close
    QUOTA = 4429  # the tenant's max_connections or request rate


def close_code_for(problem: Problem) -> CloseCode:
    """The close code of a stream ended by `problem`."""
    kind, status = problem.type, problem.type.status
    if kind is ProblemType.LIMIT_REACHED or status == 429:
        return CloseCode.QUOTA
    if status == 401:
        return CloseCode.UNAUTHORIZED
    if status == 403:
        return CloseCode.FORBIDDEN
    if status == 404:
        return CloseCode.TOPIC_GONE
    if 400 <= status < 500:
        return CloseCode.BAD_REQUEST
    if status == 503:
        return CloseCode.TRY_AGAIN_LATER
    return CloseCode.INTERNAL_ERROR


MAX_REASON_BYTES = 123
"""What a close frame's reason may hold (RFC 6455: 125 bytes of payload, less the code)."""


def close_reason(text: str) -> str:
    """`text` cut to fit a close frame (on a character boundary)."""
    raw = text.encode()
    if len(raw) <= MAX_REASON_BYTES:
        return text
    return raw[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
