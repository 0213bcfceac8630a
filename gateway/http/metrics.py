"""The few process-wide figures the gateway exposes at `/metrics` (Prometheus text).

Plain integers updated on the event loop; no locks are needed because every
update happens on it. Gauges say what is happening now (waiting long-polls),
counters what has happened since start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway.http.tenant_usage import TenantUsage


@dataclass
class Metrics:
    longpoll_waiters: int = 0
    inflight_appends: int = 0
    produced_records: int = 0
    produced_requests: int = 0
    fetched_records: int = 0
    fetch_requests: int = 0
    idempotent_replays: int = 0
    problems: int = 0
    # Kept by the connection bounds (connlimits.py) when `tidegate serve` runs them.
    http_connections: int = 0
    connections_refused: dict[str, int] = field(default_factory=dict)

    def render(self, *, ready: bool) -> str:
        """The Prometheus text exposition of every figure."""
        rows = [
            ("tidegate_up", "gauge", "1 while the server is ready to serve", int(ready)),
            (
                "tidegate_longpoll_waiters",
                "gauge",
                "fetches currently waiting for data",
                self.longpoll_waiters,
            ),
            (
                "tidegate_inflight_appends",
                "gauge",
                "produce requests whose append is in progress",
                self.inflight_appends,
            ),
            (
                "tidegate_produced_records_total",
                "counter",
                "records appended",
                self.produced_records,
            ),
            (
                "tidegate_produce_requests_total",
                "counter",
                "successful produce requests",
                self.produced_requests,
            ),
            ("tidegate_fetched_records_total", "counter", "records served", self.fetched_records),
            (
                "tidegate_fetch_requests_total",
                "counter",
                "successful fetch requests",
                self.fetch_requests,
            ),
            (
                "tidegate_idempotent_replays_total",
                "counter",
                "produce retries answered from the idempotency store",
                self.idempotent_replays,
            ),
            (
                "tidegate_problem_responses_total",
                "counter",
                "problem+json responses",
                self.problems,
            ),
        ]
        rows.append(
            (
                "tidegate_http_connections",
                "gauge",
                "open HTTP connections (WebSockets not included)",
                self.http_connections,
            )
        )
        out = []
        for name, kind, help_text, value in rows:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {value}\n")
        name = "tidegate_connections_closed_total"
        out.append(
            f"# HELP {name} connections closed by a bound, by reason (head-timeout, "
            f"body-timeout, head-too-large, displaced, over-cap)\n# TYPE {name} counter\n"
        )
        for reason, count in sorted(self.connections_refused.items()):
            out.append(f'{name}{{reason="{reason}"}} {count}\n')
        return "".join(out)


_TENANT_SERIES = (
    ("tidegate_tenant_requests_total", "counter", "authenticated requests", "requests"),
    ("tidegate_tenant_produced_bytes_total", "counter", "produce body bytes", "produced_bytes"),
    ("tidegate_tenant_produced_records_total", "counter", "records appended", "produced_records"),
    ("tidegate_tenant_consumed_bytes_total", "counter", "record bytes served", "consumed_bytes"),
    ("tidegate_tenant_consumed_records_total", "counter", "records served", "consumed_records"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_tenants(
    usage: TenantUsage,
    throttled: Mapping[tuple[str, str], int],
    connections: Callable[[str], int],
) -> str:
    """Per-tenant series: traffic, open connections and quota refusals by limit."""
    out: list[str] = []
    tenants = sorted(usage.traffic)
    for name, kind, help_text, attr in _TENANT_SERIES:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        for tenant in tenants:
            value = getattr(usage.traffic[tenant], attr)
            out.append(f'{name}{{tenant="{_label(tenant)}"}} {value}\n')
    name = "tidegate_tenant_connections"
    out.append(f"# HELP {name} waiting fetches and streams held\n# TYPE {name} gauge\n")
    for tenant in tenants:
        out.append(f'{name}{{tenant="{_label(tenant)}"}} {connections(tenant)}\n')
    name = "tidegate_tenant_throttled_total"
    out.append(f"# HELP {name} requests refused by a rate quota\n# TYPE {name} counter\n")
    for (tenant, limit), count in sorted(throttled.items()):
        out.append(f'{name}{{tenant="{_label(tenant)}",limit="{limit}"}} {count}\n')
    return "".join(out)
