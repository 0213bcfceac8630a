"""A Starlette request as authlib's `OAuth2Request`, and the form rules authlib leaves to us.

authlib's server classes are synchronous and framework-neutral: they read a
request's method, URI, headers and form through `OAuth2Request`. The form is
read here once, bounded, before authlib runs. What RFC 6749 asks of every
request to these endpoints and authlib does not check is checked here too
(`request_problem`): the form media type, UTF-8, no parameter twice (§3.1,
§3.2), one client authentication mechanism at a time (§2.3), and for the token
endpoint a `grant_type` (§4.4.2). Each failure is authlib's `invalid_request`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Payload, OAuth2Request
from starlette.datastructures import Headers
from starlette.requests import Request

from gateway.http.bodies import read_body

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: A form of these endpoints carries a few short parameters; a token is at most 8 KiB.
FORM_BODY_LIMIT = 16 * 1024
MAX_PARAMETERS = 32


class FormPayload(OAuth2Payload):  # type: ignore[misc]  # authlib is untyped
    """The request's form parameters: `data` the single values, `datalist` every value."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):  # type: ignore[misc]  # authlib is untyped
    """One POST to an OAuth2 endpoint, as authlib reads it."""

    def __init__(self, uri: str, headers: Headers, payload: FormPayload) -> None:
        # Raises authlib's InsecureTransportError for a plain-http URI off loopback.
        super().__init__("POST", uri, headers=headers)
        self.payload = payload

    @property
    def args(self) -> dict[str, Any]:
        return {}  # parameters in the query string are not read (RFC 6749 §3.2)

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


async def read_form(request: Request) -> list[tuple[str, str]] | InvalidRequestError:
    """The form's (name, value) pairs in order, or the `invalid_request` to answer.
    A body over `FORM_BODY_LIMIT` is 413 `body-too-large`, as everywhere."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, FORM_BODY_LIMIT)
    if media != FORM_MEDIA_TYPE:
        return InvalidRequestError(f"send the parameters as {FORM_MEDIA_TYPE}")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except (UnicodeDecodeError, ValueError):
        return InvalidRequestError("the form is not valid UTF-8 form encoding")
    return pairs


def request_problem(
    payload: FormPayload, headers: Headers, *, needs_grant_type: bool
) -> InvalidRequestError | None:
    """The `invalid_request` this request deserves before authlib looks at it, or None."""
    repeated = sorted(name for name, values in payload.datalist.items() if len(values) > 1)
    if repeated:
        return InvalidRequestError(f"parameters given more than once: {', '.join(repeated)}")
    if "authorization" in headers and "client_secret" in payload.data:
        return InvalidRequestError(
            "authenticate the client one way: HTTP Basic or client_secret in the form, not both"
        )
    if needs_grant_type and not payload.data.get("grant_type"):
        return InvalidRequestError("the grant_type parameter is required")
    return None
