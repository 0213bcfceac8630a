"""Wiring: every feature's routes, the error handlers and the lifespan, in one Starlette app.

This module, the lifespan and the OpenAPI document are the only ones that know
every feature. `create_app(settings)` builds an app for one process; the CLI
serves it with uvicorn. `app_from_environment` is the factory for
`uvicorn --factory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway import openapi
from gateway.admin import tenants, tokens, usage
from gateway.console import routes as console
from gateway.coordinator.membership import CoordinatorError
from gateway.groups import routes as groups
from gateway.http.metrics import Metrics
from gateway.http.observe import RequestObserver
from gateway.http.problems import GatewayError, Problem, ProblemType, problem_for
from gateway.http.request_ids import HEADER, SCOPE_KEY
from gateway.http.routing import GatewayApp
from gateway.http.runtime import Drain
from gateway.http.settings import Settings, load_settings
from gateway.lifespan import lifespan_for
from gateway.oauth import routes as oauth
from gateway.ops import health
from gateway.records import routes as records
from gateway.schemas import confluent
from gateway.schemas import routes as schemas
from gateway.streams import routes as streams
from gateway.topics import routes as topics
from storage.errors import StorageError
from tenants.errors import LimitReached, QuotaExceeded, TenantError


def _count_problem(request: Request, problem: Problem, exc: Exception | None = None) -> None:
    """A problem response by type; a quota's refusal by its limit too."""
    metrics: Metrics = request.app.state.metrics
    metrics.problem(problem.type.slug)
    if isinstance(exc, QuotaExceeded | LimitReached):
        metrics.quota_rejection(exc.limit)


async def _problem(request: Request, exc: Exception) -> Response:
    problem = problem_for(exc)
    _count_problem(request, problem, exc)
    return problem.response()


async def _http_problem(request: Request, exc: Exception) -> Response:
    """Routing's own errors (no such path, wrong method) in the problem shape."""
    assert isinstance(exc, HTTPException)
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
    _count_problem(request, problem)
    return problem.response()


async def _internal(request: Request, exc: Exception) -> Response:
    """An unhandled error's 500, answered outside the middleware: its request id here."""
    problem = problem_for(exc)
    _count_problem(request, problem)
    response = problem.response()
    request_id = request.scope.get(SCOPE_KEY)
    if isinstance(request_id, bytes):
        response.raw_headers.append((HEADER, request_id))
    return response


def all_routes(settings: Settings) -> list[BaseRoute]:
    """Every feature's routes (the hot ones are found first by the router anyway).
    The group fetch renders records with the records feature's C renderer, when on."""
    produce_and_fetch = records.Records(settings)
    return [
        *produce_and_fetch.routes(),
        *streams.routes(settings),
        *health.routes,
        *openapi.routes,
        *topics.routes,
        *tenants.routes,
        *tokens.routes,
        *usage.routes,
        *console.routes,
        *oauth.routes,
        *groups.routes(settings, produce_and_fetch.fast),
        *schemas.routes,
        *confluent.routes,
    ]


def create_app(
    settings: Settings,
    *,
    banner_out: TextIO | None = None,
    own_process: bool = False,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """The gateway app for one process. Its runtime is `app.state.runtime` once the
    lifespan has opened it; `app.state.drain` starts its shutdown. `own_process`:
    the app is all the process serves (the CLI, the uvicorn factory), so start-up
    may tune the process (see `lifespan.freeze_startup_heap`)."""
    drain = Drain()
    metrics = Metrics(max_topic_series=settings.metrics_max_topics)
    app = GatewayApp(
        routes=all_routes(settings),
        # Every request, produce and fetch included: its id, its count, its log line.
        middleware=[
            Middleware(RequestObserver, metrics=metrics, log_requests=settings.access_log),
            *middleware,
        ],
        exception_handlers={
            GatewayError: _problem,
            StorageError: _problem,
            CoordinatorError: _problem,
            TenantError: _problem,
            HTTPException: _http_problem,
            Exception: _internal,
        },
        lifespan=lifespan_for(
            settings, drain=drain, metrics=metrics, out=banner_out, freeze_heap=own_process
        ),
    )
    app.state.drain = drain
    app.state.metrics = metrics
    app.state.runtime = None
    metrics.is_ready = lambda: _ready(app)
    return app


def _ready(app: Starlette) -> bool:
    runtime = app.state.runtime
    return runtime is not None and bool(runtime.ready)


def app_from_environment() -> Starlette:
    """For `uvicorn --factory gateway.app:app_from_environment`: settings from env/file."""
    return create_app(load_settings(), own_process=True)
