"""JSON replies and request bodies checked against a pydantic model: one way for every route.

`json_response` is how every route answers a JSON document; `validated` turns
a parsed body into its model or a 422 `invalid-body` whose `errors` name each
failing field by JSON pointer.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from gateway.http.problems import GatewayError, ProblemType

M = TypeVar("M", bound=BaseModel)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


_JSON = (b"content-type", b"application/json")


class JsonBytes(Response):
    """A 200 reply of ready JSON bytes, with the head Starlette's `Response` would give
    it (content-length, content-type), made without Starlette's general header
    assembly: the hot routes answer every request with one, and that assembly
    (header mapping, media type and charset rules) was a tenth of a fetch's cost."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON]


def invalid_body(exc: ValidationError) -> GatewayError:
    """Pydantic's errors as the API's `errors` list with JSON pointers."""
    errors = []
    for err in exc.errors(include_url=False):
        pointer = "".join(f"/{part}" for part in err["loc"])
        errors.append({"pointer": pointer, "message": err["msg"]})
    return GatewayError(ProblemType.INVALID_BODY, "the request body is not valid", errors=errors)


def validated(model: type[M], raw: Any) -> M:
    """`raw` as `model`, or 422 `invalid-body` listing every field's problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_body(exc) from None
