"""`GET /v1/usage`: a tenant's use against each limit of its plan.

Any valid credential of the tenant may ask; it sees only its own tenant. Asking
does not count against `requests_per_second` (a throttled tenant can see why);
it has its own bound, `USAGE_READS_PER_SECOND` per tenant.
Counts and stored bytes are read fresh from the log; rates are what this
gateway process saw over the last whole second (the limiter, not this
figure, decides admission).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.responses import json_response
from gateway.http.runtime import runtime_of
from tenants.quotas import limits_json


async def usage(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await runtime.usage_reader(request)
    tenant = principal.tenant
    log = runtime.log
    directory = runtime.directory
    record = await directory.get_tenant(tenant)
    limits = directory.limits_of(record)
    stored = await runtime.usage.stored(log, principal.namespace, fresh=True)
    traffic = runtime.usage.traffic[tenant]
    now = time.monotonic()
    used: dict[str, int] = {
        "requests_per_second": traffic.request_rate.rate(now),
        "produce_bytes_per_second": traffic.produce_rate.rate(now),
        "consume_bytes_per_second": traffic.consume_rate.rate(now),
        "max_topics": stored.topics,
        "max_partitions": stored.partitions,
        "max_storage_bytes": stored.bytes,
        "max_connections": runtime.quotas.connections(tenant),
    }
    allowed = limits_json(limits)
    quotas: dict[str, Any] = {
        name: {"limit": allowed.get(name), "used": used.get(name)} for name in allowed
    }
    body = {
        "tenant": tenant,
        "plan": record.plan,
        "quotas": quotas,
        "totals": {
            "requests": traffic.requests,
            "produced_bytes": traffic.produced_bytes,
            "produced_records": traffic.produced_records,
            "consumed_bytes": traffic.consumed_bytes,
            "consumed_records": traffic.consumed_records,
        },
    }
    return json_response(body)


routes = [Route("/v1/usage", usage, methods=["GET"])]
