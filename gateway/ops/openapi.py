"""The OpenAPI paths of the operations routes: liveness, readiness, metrics."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_parts import PROBLEM, problems

SCHEMAS: dict[str, Any] = {}

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {"200": {"description": "the process answers"}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: backend open and not draining",
            "security": [],
            "responses": {"200": {"description": "ready"}, "503": PROBLEM},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "description": "Process figures for anyone. With an operator credential (scope "
            "`admin`) the reply adds the per-tenant `tidegate_tenant_*` series; any other "
            "credential sent is refused (401/403), never silently downgraded.",
            "security": [{}, {"bearer": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **problems(401, 403),
            },
        }
    },
}
