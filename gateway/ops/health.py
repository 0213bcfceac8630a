"""Operations routes: liveness, readiness and Prometheus metrics.

`/healthz` says the process answers; `/readyz` says it should get traffic:
the backend is open and shutdown has not begun. Neither needs a credential,
and neither reveals anything about tenants or data.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.metrics import PROMETHEUS_TEXT
from gateway.http.problems import Problem, ProblemType
from gateway.http.runtime import DRAINING_HEADERS, drain_of, open_runtime, runtime_of
from tenants.principal import Scope


async def healthz(request: Request) -> Response:
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


async def readyz(request: Request) -> Response:
    runtime = open_runtime(request)
    if runtime is not None and runtime.ready:
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")
    if drain_of(request).started:
        problem = Problem(
            ProblemType.SHUTTING_DOWN, "the server is shutting down", headers=dict(DRAINING_HEADERS)
        )
    else:
        problem = Problem(
            ProblemType.BACKEND_UNAVAILABLE,
            "the storage backend is not open",
            headers={"Retry-After": "1"},
        )
    return problem.response()


async def metrics(request: Request) -> Response:
    """Process figures for anyone; per-tenant series only for an operator credential,
    since tenant names are not public (scrape with `authorization: credentials`)."""
    runtime = runtime_of(request)
    operator = "authorization" in request.headers
    if operator:
        await runtime.principal(request, Scope.ADMIN)
        await runtime.metrics.refresh_group_lag()
    return Response(runtime.metrics.render(operator=operator), media_type=PROMETHEUS_TEXT)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
