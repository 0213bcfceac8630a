"""Who may open a stream: the credential a browser can send, and the Origin check.

Browsers cannot set headers on a WebSocket or an `EventSource`, so besides
`Authorization: Bearer` a stream takes a short-lived token (from
`POST /v1/tokens`) as the `access_token` query parameter or, on a WebSocket,
as the subprotocol `bearer.<jwt>` offered beside `tidegate.v1`. API keys are
refused there: a URL ends up in logs and histories (the gateway's own logs
redact it, see `gateway.http.logredact`), and a leaked token dies in minutes.

A WebSocket's `Origin` must be the gateway's own (same-origin pages, the
console) or one of `TIDEGATE_STREAM_ALLOWED_ORIGINS`; clients that send no
Origin (not browsers) are not affected. This is the defence against
cross-site WebSocket hijacking: browsers attach cookies and ambient
credentials to cross-site WebSocket handshakes, which CORS does not cover.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from gateway.http.params import query_of
from gateway.http.problems import GatewayError, ProblemType

SUBPROTOCOL = "tidegate.v1"
BEARER_PREFIX = "bearer."
API_KEY_PREFIX = "tg_"


def _no_keys_here(where: str) -> GatewayError:
    return GatewayError(
        ProblemType.UNAUTHENTICATED,
        f"{where} takes only a short-lived token from POST /v1/tokens, never an API key",
        headers={"WWW-Authenticate": 'Bearer realm="tidegate"'},
    )


def url_credential(conn: HTTPConnection) -> str | None:
    """The `access_token` query parameter, when there is no Authorization header."""
    if conn.headers.get("authorization"):
        return None
    token = query_of(conn).get("access_token")
    if token is None:
        return None
    if token.startswith(API_KEY_PREFIX):
        raise _no_keys_here("access_token")
    return token


def subprotocol_credential(offered: Sequence[str]) -> tuple[str | None, str | None]:
    """(credential, subprotocol to accept) from the offered subprotocols: a
    `bearer.<jwt>` entry is a credential, `tidegate.v1` the protocol. 400 when
    a token is offered without `tidegate.v1` (the server must accept one of the
    offered protocols, and never echoes the token back)."""
    token: str | None = None
    for entry in offered:
        if entry.startswith(BEARER_PREFIX):
            token = entry[len(BEARER_PREFIX) :]
    speaks = SUBPROTOCOL in offered
    if token is not None:
        if not speaks:
            raise GatewayError(
                ProblemType.BAD_REQUEST,
                f"offer the subprotocol {SUBPROTOCOL!r} beside bearer.<token>",
            )
        if token.startswith(API_KEY_PREFIX):
            raise _no_keys_here("the bearer.<token> subprotocol")
    return token, SUBPROTOCOL if speaks else None


def origin_allowed(conn: HTTPConnection, allowed: Collection[str]) -> bool:
    """Whether the request's Origin may open a WebSocket: absent, the gateway's own
    (same scheme-less host and port as the Host header), or listed in `allowed`
    (`*` allows every origin)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    if origin in allowed or "*" in allowed:
        return True
    host = conn.headers.get("host")
    if host is None or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
