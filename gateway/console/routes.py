"""`/console/`: the console's files, for anyone (the pages hold no data; the API asks
for a credential on every call the console makes).

The console is a single page: `/console/` is `index.html`, and the views are
chosen by the URL's fragment (`#/topics/orders`), so no other path needs to
answer with the page. Files are read whole (the largest is a few KiB) and kept
with their ETag until the file changes on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.console.headers import console_headers
from gateway.console.webroot import MEDIA_TYPES, servable, web_root
from gateway.http.problems import GatewayError, ProblemType


@dataclass(frozen=True)
class ServedFile:
    stamp: tuple[int, int]  # (mtime_ns, size) when read
    body: bytes
    etag: str


_files: dict[Path, ServedFile] = {}


def _read(path: Path) -> ServedFile:
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _files.get(path)
    if cached is not None and cached.stamp == stamp:
        return cached
    body = path.read_bytes()
    served = ServedFile(stamp, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    _files[path] = served
    return served


def _not_found(request: Request) -> GatewayError:
    return GatewayError(ProblemType.NOT_FOUND, f"no such resource: {request.url.path}")


def _serve(request: Request, segments: list[str]) -> Response:
    root = web_root()
    path = None if root is None else servable(root, segments)
    if path is None:
        raise _not_found(request)
    served = _read(path)
    headers = console_headers(request.headers.get("host")) | {"ETag": served.etag}
    if served.etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(served.body, media_type=MEDIA_TYPES[path.suffix], headers=headers)


async def console_redirect(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


async def console_index(request: Request) -> Response:
    return _serve(request, ["index.html"])


async def console_file(request: Request) -> Response:
    return _serve(request, [request.path_params["file"]])


async def console_module(request: Request) -> Response:
    return _serve(request, ["js", request.path_params["file"]])


routes = [
    Route("/console", console_redirect, methods=["GET"]),
    Route("/console/", console_index, methods=["GET"]),
    Route("/console/{file}", console_file, methods=["GET"]),
    Route("/console/js/{file}", console_module, methods=["GET"]),
]
