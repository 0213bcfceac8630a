"""Wiring: the route modules, the error handlers and the lifespan, in one Starlette app.

`create_app(settings)` builds an app for one process; the CLI serves it with
uvicorn. `app_from_environment` is the factory for `uvicorn --factory`.
"""

from __future__ import annotations

from typing import TextIO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway import admin, fetch, health, produce, tokens, topics, usage
from gateway.errors import GatewayError, Problem, ProblemType, problem_for
from gateway.hotpaths import GatewayApp
from gateway.lifespan import lifespan_for
from gateway.runtime import Runtime, runtime_of
from gateway.settings import Settings, load_settings
from storage.errors import StorageError
from tenants.errors import TenantError


async def _problem(request: Request, exc: Exception) -> Response:
    runtime_of(request).metrics.problems += 1
    return problem_for(exc).response()


async def _http_problem(request: Request, exc: Exception) -> Response:
    """Routing's own errors (no such path, wrong method) in the problem shape."""
    assert isinstance(exc, HTTPException)
    runtime_of(request).metrics.problems += 1
    if exc.status_code == 405:
        problem = Problem(
            ProblemType.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on {request.url.path}",
            headers=dict(exc.headers or {}),
        )
    elif exc.status_code == 404:
        problem = Problem(ProblemType.NOT_FOUND, f"no such resource: {request.url.path}")
    else:
        problem = Problem(ProblemType.BAD_REQUEST, str(exc.detail))
    return problem.response()


async def _internal(request: Request, exc: Exception) -> Response:
    return problem_for(exc).response()


def create_app(
    settings: Settings, *, banner_out: TextIO | None = None, own_process: bool = False
) -> Starlette:
    """The gateway app for one process. Its runtime is `app.state.runtime`.
    `own_process`: the app is all the process serves (the CLI, the uvicorn factory),
    so start-up may tune the process (see `lifespan.freeze_startup_heap`)."""
    runtime = Runtime.from_settings(settings)
    app = GatewayApp(
        routes=[  # produce and fetch also skip routing (GatewayApp); listed first all the same
            *produce.routes,
            *fetch.routes,
            *health.routes,
            *topics.routes,
            *admin.routes,
            *tokens.routes,
            *usage.routes,
        ],
        exception_handlers={
            GatewayError: _problem,
            StorageError: _problem,
            TenantError: _problem,
            HTTPException: _http_problem,
            Exception: _internal,
        },
        lifespan=lifespan_for(runtime, out=banner_out, freeze_heap=own_process),
    )
    app.state.runtime = runtime
    return app


def app_from_environment() -> Starlette:
    """For `uvicorn --factory gateway.app:app_from_environment`: settings from env/file."""
    return create_app(load_settings(), own_process=True)
