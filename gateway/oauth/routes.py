"""`POST /oauth/token`, `/oauth/introspect`, `/oauth/revoke` and the RFC 8414 metadata.

Each POST reads its form (bounded), refuses what RFC 6749 rules out before
authlib looks (`requests.request_problem`), then runs authlib through a
`server.RequestServer`: load, respond, settle. Answers of authlib are the
RFC 6749 §5.2 JSON (`error`, `error_description`). What the rest of the API
answers in its problem shape (429 over a rate or after too many failed client
authentications, 503 while starting or draining, 413 for a body past 16 KiB)
stays a problem here, with `error` and `error_description` members added so an
OAuth2 client library reports it as an error too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from authlib.oauth2.rfc6749 import InsecureTransportError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.problems import GatewayError, problem_for
from gateway.http.responses import json_response
from gateway.http.runtime import runtime_of
from gateway.oauth import metadata
from gateway.oauth.requests import FormPayload, FormRequest, read_form, request_problem
from gateway.oauth.server import INTROSPECTION, REVOCATION, TOKEN, RequestServer
from storage.errors import StorageError
from tenants.errors import TenantError

Handler = Callable[[Request], Awaitable[Response]]

# The RFC 6749 §5.2 code a problem answer carries, by status.
_ERROR_CODES = {400: "invalid_request", 401: "invalid_client", 413: "invalid_request"}


def _with_oauth_error(handler: Handler) -> Handler:
    """Problems raised while serving an OAuth2 endpoint gain `error`/`error_description`."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (GatewayError, TenantError, StorageError) as exc:
            problem = problem_for(exc)
            status = problem.type.status
            code = _ERROR_CODES.get(status, "temporarily_unavailable" if status >= 429 else "")
            extensions = dict(problem.extensions)
            if code:
                extensions |= {"error": code, "error_description": problem.detail}
            raise GatewayError(
                problem.type, problem.detail, headers=problem.headers, **extensions
            ) from exc

    return endpoint


async def _serve(request: Request, endpoint: str, path: str) -> Response:
    runtime = runtime_of(request)
    server = RequestServer(runtime, runtime.now_ms())
    pairs = await read_form(request)
    if isinstance(pairs, InvalidRequestError):
        return server.error_response(pairs)
    payload = FormPayload(pairs)
    problem = request_problem(payload, request.headers, needs_grant_type=endpoint == TOKEN)
    if problem is not None:
        return server.error_response(problem)
    try:
        oauth_request = FormRequest(
            metadata.base_url(runtime.settings, request) + path, request.headers, payload
        )
    except InsecureTransportError as error:
        return server.error_response(error)
    basic_id, _ = extract_basic_authorization(request.headers)
    await server.load(
        (basic_id, payload.data.get("client_id")),
        token=None if endpoint == TOKEN else payload.data.get("token"),
    )
    response = server.respond(endpoint, oauth_request)
    await server.settle()
    return response


@_with_oauth_error
async def token(request: Request) -> Response:
    """RFC 6749 §4.4: an API key's id and the key itself for a short-lived at+jwt."""
    return await _serve(request, TOKEN, metadata.TOKEN_PATH)


@_with_oauth_error
async def introspect(request: Request) -> Response:
    """RFC 7662: whether a token minted here is active, and what it may do."""
    return await _serve(request, INTROSPECTION, metadata.INTROSPECTION_PATH)


@_with_oauth_error
async def revoke(request: Request) -> Response:
    """RFC 7009: a token minted here refused from now on, everywhere."""
    return await _serve(request, REVOCATION, metadata.REVOCATION_PATH)


async def server_metadata(request: Request) -> Response:
    """RFC 8414: public, like the JWKS it points to."""
    settings = runtime_of(request).settings
    response = json_response(metadata.server_metadata(metadata.base_url(settings, request)))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


routes = [
    Route(metadata.TOKEN_PATH, token, methods=["POST"]),
    Route(metadata.INTROSPECTION_PATH, introspect, methods=["POST"]),
    Route(metadata.REVOCATION_PATH, revoke, methods=["POST"]),
    Route(metadata.METADATA_PATH, server_metadata, methods=["GET"]),
]
