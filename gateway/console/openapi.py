"""The OpenAPI paths of the console's files."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import problems

SCHEMAS: dict[str, Any] = {}

_FILE = {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
_SERVED = {
    "200": {
        "description": "the file, with a Content-Security-Policy and an ETag "
        "(revalidated on every load: Cache-Control no-cache)",
        "content": {"text/html": {}, "text/css": {}, "text/javascript": {}, "image/svg+xml": {}},
    },
    "304": {"description": "unchanged since the ETag sent in If-None-Match"},
    **problems(404),
}

PATHS: dict[str, Any] = {
    "/console": {
        "get": {
            "summary": "Redirects to the console (/console/)",
            "security": [],
            "responses": {"308": {"description": "to /console/"}},
        }
    },
    "/console/": {
        "get": {
            "summary": "The web console's page",
            "description": "Signs in with an API key and then uses only the public API.",
            "security": [],
            "responses": _SERVED,
        }
    },
    "/console/{file}": {
        "get": {
            "summary": "A file of the console (stylesheet, icon)",
            "security": [],
            "parameters": [_FILE],
            "responses": _SERVED,
        }
    },
    "/console/js/{file}": {
        "get": {
            "summary": "An ES module of the console",
            "security": [],
            "parameters": [_FILE],
            "responses": _SERVED,
        }
    },
}
