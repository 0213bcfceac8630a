"""Who is calling: the verified credential of every data request, and what it may do.

The credential comes from `Authorization: Bearer <credential>` (an API key or
a JWT) and is verified by the tenant directory; the tenant is never taken from
anything else the client sends. No or a bad credential: 401; a scope the
credential lacks or a topic outside its patterns: 403.
"""

from __future__ import annotations

import time
from typing import Protocol

from starlette.requests import HTTPConnection

from gateway.http.headers import header
from gateway.http.problems import GatewayError, ProblemType
from tenants.principal import Principal, Scope

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tidegate"'}


class Authenticator(Protocol):
    """What the gateway needs of the tenant directory."""

    async def authenticate(self, credential: str, *, now_ms: int) -> Principal: ...

    def authenticate_cached(self, credential: str, *, now_ms: int) -> Principal | None: ...


def authorization_of(conn: HTTPConnection) -> str | None:
    """The first `Authorization` field of the request, as Starlette's `headers.get`
    gives it (latin-1): every data request asks (see `headers`)."""
    return header(conn, b"authorization")


def bearer_credential(conn: HTTPConnection) -> str:
    """The credential of `Authorization: Bearer ...`, or 401."""
    header = authorization_of(conn)
    if not header:
        raise GatewayError(
            ProblemType.UNAUTHENTICATED,
            "send a credential: Authorization: Bearer <api key or token>",
            headers=CHALLENGE,
        )
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise GatewayError(
            ProblemType.UNAUTHENTICATED,
            "the Authorization header must be 'Bearer <credential>'",
            headers=CHALLENGE,
        )
    return credential


async def authenticate(
    conn: HTTPConnection, directory: Authenticator, credential: str | None = None
) -> Principal:
    """The principal of the request's credential (`credential` when the caller found it
    elsewhere than the Authorization header: a stream's token); 401 problems come from
    the error table. A key the directory has cached is decided without awaiting the store."""
    if credential is None:
        credential = bearer_credential(conn)
    now_ms = time.time_ns() // 1_000_000
    principal = directory.authenticate_cached(credential, now_ms=now_ms)
    if principal is None:
        principal = await directory.authenticate(credential, now_ms=now_ms)
    return principal


def require_scope(principal: Principal, scope: Scope) -> None:
    if not principal.allows(scope):
        raise GatewayError(
            ProblemType.FORBIDDEN,
            f"the credential lacks the scope {scope.value!r}",
            scope=scope.value,
        )


def require_topic(principal: Principal, topic: str) -> None:
    if not principal.may_use_topic(topic):
        raise GatewayError(
            ProblemType.FORBIDDEN, f"the credential may not use topic {topic!r}", topic=topic
        )
