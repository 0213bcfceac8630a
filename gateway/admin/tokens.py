"""Short-lived access tokens: `POST /v1/tokens` and the public `/.well-known/jwks.json`.

A browser live feed should not carry an API key: the key lives on a server,
which trades it here for a JWT that expires within minutes and can do no more
than the key (the same or fewer scopes, the same or narrower topics), and
never outlives the key: it expires no later than the key, and names the key
(claim `key_id`), so revoking the key or suspending the tenant refuses the
token too, as soon as it refuses the key. Tokens are signed with the gateway's rotating keys,
published at `/.well-known/jwks.json` so other services can check them too.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.bodies import parse_json, read_body, require_json_media
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import json_response, validated
from gateway.http.runtime import runtime_of
from tenants.minting import mint_access_token, narrowed_scopes, token_lifetime
from tenants.principal import Principal

TOKEN_BODY_LIMIT = 16 * 1024
WILDCARDS = frozenset("*?[")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    scopes: list[StrictStr] | None = Field(default=None, max_length=16)
    topics: list[StrictStr] | None = Field(default=None, max_length=100)
    ttl_seconds: StrictInt | None = Field(default=None, ge=1)


def pattern_within(requested: str, granted: tuple[str, ...]) -> bool:
    """Whether every topic `requested` can match is matched by one of `granted`.

    An empty `granted` allows every topic. A plain name must match a granted
    pattern; a wildcard pattern must equal a granted one, or sit under a granted
    `prefix*` with only a trailing `*` of its own (`orders-eu*` under `orders*`).
    """
    if not granted:
        return True
    if not WILDCARDS & set(requested):
        return any(fnmatch.fnmatchcase(requested, g) for g in granted)
    for g in granted:
        if requested == g:
            return True
        if (
            g.endswith("*")
            and not WILDCARDS & set(g[:-1])
            and requested.endswith("*")
            and not WILDCARDS & set(requested[:-1])
            and requested.startswith(g[:-1])
        ):
            return True
    return False


def narrowed_topics(principal: Principal, requested: list[str] | None) -> tuple[str, ...]:
    if requested is None:
        return principal.topics
    wider = [t for t in requested if not pattern_within(t, principal.topics)]
    if wider or (principal.topics and not requested):
        raise GatewayError(
            ProblemType.FORBIDDEN,
            "a token may name only topics within the key's topic patterns",
            errors=[{"pointer": "/topics", "message": f"outside the key: {t}"} for t in wider],
        )
    return tuple(dict.fromkeys(requested))


async def create_token(request: Request) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    principal = await runtime.principal(request, None)
    if principal.via != "key":
        raise GatewayError(
            ProblemType.FORBIDDEN, "tokens are issued in exchange for an API key, not a token"
        )
    raw: Any = {}
    data = await read_body(request, TOKEN_BODY_LIMIT)  # bounded: an empty body asks defaults
    if data:
        require_json_media(request)
        raw = parse_json(data, runtime.json_limits)
    body = validated(TokenIn, raw)
    ttl = body.ttl_seconds if body.ttl_seconds is not None else settings.token_ttl_s
    if ttl > settings.token_max_ttl_s:
        raise GatewayError(
            ProblemType.INVALID_BODY,
            f"ttl_seconds may be at most {settings.token_max_ttl_s}",
            errors=[{"pointer": "/ttl_seconds", "message": "too long"}],
        )
    now_s = int(time.time())
    ttl = token_lifetime(principal, ttl, now_s=now_s)
    scopes = narrowed_scopes(principal, body.scopes)
    topics = narrowed_topics(principal, body.topics)
    token = mint_access_token(
        runtime.signer, principal, scopes=scopes, topics=topics, ttl_s=ttl, now_s=now_s
    )
    reply = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
        "topics": list(topics),
    }
    response = json_response(reply, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def jwks(request: Request) -> Response:
    """The public halves of the signing keys, current and recently retired."""
    response = json_response(runtime_of(request).signer.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


routes = [
    Route("/v1/tokens", create_token, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
