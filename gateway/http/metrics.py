"""The gateway's Prometheus metrics (prometheus-client), on registries of its own app.

Two registries, because tenant names are not public:

* `public`: process figures anyone may scrape at `/metrics`: requests by route
  template and status with their latency, open connections and those each
  bound closed, waiting long-polls, appends in flight, storage append and sync
  latency and storage errors, quota refusals by limit, problem responses by
  type, and the process's own CPU, memory and file descriptors.
* `tenants`: series labelled by tenant, or by tenant and topic, added for an
  operator credential only: records and bytes produced and fetched per topic,
  and each tenant's traffic, connections and rate refusals.

Labels are bounded: route templates (never paths), status codes, problem
types, limit names, error classes. Topics are the one open-ended label; at
most `max_topic_series` (tenant, topic) pairs get series of their own, and
every topic past that cap is counted under `topic="other"` of its tenant.

The hot path pays a dictionary lookup and a counter increment per figure:
every labelled child is created once and cached (`topic`, `RequestSeries`), so
a request allocates no label tuple. Gauges that the code also decides by (the
long-poll cap, the connection cap) are plain integers read when scraped.
Updates come from the event loop, and from the storage writer threads through
`StorageObserver`; prometheus-client's values are thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.http.tenant_usage import TenantUsage
from storage.errors import StorageError
from storage.observer import SyncKind

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_MAX_TOPIC_SERIES = 1000
OTHER_TOPIC = "other"
UNMATCHED_ROUTE = "unmatched"
CLOSE_REASONS = ("head-timeout", "body-timeout", "head-too-large", "displaced", "over-cap")

# Seconds. Requests include long-polls, which may wait up to TIDEGATE_MAX_WAIT_MS.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


@dataclass(frozen=True, slots=True)
class TopicSeries:
    """The four counters of one (tenant, topic), created once."""

    produced_records: Counter
    produced_bytes: Counter
    fetched_records: Counter
    fetched_bytes: Counter


class RequestSeries:
    """The children of one route and method: its latency, and its count per status."""

    __slots__ = ("_requests", "_route", "by_status", "duration", "method")

    def __init__(self, requests: Counter, duration: Histogram, method: str, route: str) -> None:
        self._requests = requests
        self._route = route
        self.method = method
        self.duration = duration.labels(method, route)
        self.by_status: dict[int, Counter] = {}

    def count(self, status: int) -> None:
        child = self.by_status.get(status)
        if child is None:
            child = self._requests.labels(self.method, self._route, str(status))
            self.by_status[status] = child
        child.inc()


@dataclass
class _TenantSource:
    usage: TenantUsage
    throttled: Mapping[tuple[str, str], int]
    connections: Callable[[str], int]


class _TenantFigures(Collector):
    """Each tenant's traffic, connections and rate refusals, read when scraped from
    what the request path already keeps (`TenantUsage`, the quota service)."""

    SERIES = (
        ("tidegate_tenant_requests", "authenticated requests", "requests"),
        ("tidegate_tenant_produced_bytes", "produce body bytes", "produced_bytes"),
        ("tidegate_tenant_produced_records", "records appended", "produced_records"),
        ("tidegate_tenant_consumed_bytes", "record bytes served", "consumed_bytes"),
        ("tidegate_tenant_consumed_records", "records served", "consumed_records"),
    )

    def __init__(self) -> None:
        self.source: _TenantSource | None = None

    def collect(self) -> Iterator[Metric]:
        source = self.source
        if source is None:
            return
        traffic = source.usage.traffic
        tenants = sorted(traffic)
        for name, help_text, attr in self.SERIES:
            family = CounterMetricFamily(name, help_text, labels=["tenant"])
            for tenant in tenants:
                family.add_metric([tenant], getattr(traffic[tenant], attr))
            yield family
        held = GaugeMetricFamily(
            "tidegate_tenant_connections", "waiting fetches and streams held", labels=["tenant"]
        )
        for tenant in tenants:
            held.add_metric([tenant], source.connections(tenant))
        yield held
        throttled = CounterMetricFamily(
            "tidegate_tenant_throttled",
            "requests refused by a rate quota",
            labels=["tenant", "limit"],
        )
        for (tenant, limit), count in sorted(source.throttled.items()):
            throttled.add_metric([tenant, limit], count)
        yield throttled


class Metrics:
    """Every figure of one gateway app. `is_ready` says whether it serves (`tidegate_up`)."""

    def __init__(self, *, max_topic_series: int = DEFAULT_MAX_TOPIC_SERIES) -> None:
        self.public = CollectorRegistry()
        self.tenants = CollectorRegistry()
        self.max_topic_series = max_topic_series
        self.is_ready: Callable[[], bool] = lambda: False
        # Plain integers: the caps decide by them; the gauges read them when scraped.
        self.longpoll_waiters = 0
        self.inflight_appends = 0
        self.http_connections = 0
        public = self.public

        def gauge(name: str, help_text: str, read: Callable[[], float]) -> None:
            Gauge(name, help_text, registry=public).set_function(read)

        gauge("tidegate_up", "1 while the server is ready to serve", lambda: self.is_ready())
        gauge(
            "tidegate_longpoll_waiters",
            "fetches currently waiting for data",
            lambda: self.longpoll_waiters,
        )
        gauge(
            "tidegate_inflight_appends",
            "produce requests whose append is in progress",
            lambda: self.inflight_appends,
        )
        gauge(
            "tidegate_http_connections",
            "open HTTP connections (WebSockets not included)",
            lambda: self.http_connections,
        )
        closed = Counter(
            "tidegate_connections_closed",
            "connections closed by a bound, by reason (head-timeout, body-timeout, "
            "head-too-large, displaced, over-cap)",
            ["reason"],
            registry=public,
        )
        self._closed = {reason: closed.labels(reason) for reason in CLOSE_REASONS}
        self._closed_family = closed

        self._requests = Counter(
            "tidegate_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=public,
        )
        self._durations = Histogram(
            "tidegate_http_request_duration_seconds",
            "time from a request's arrival at the app to its last reply byte, by route",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=public,
        )
        self._routes: dict[str, dict[str, RequestSeries]] = {}

        self.produced_records = Counter(
            "tidegate_produced_records", "records appended", registry=public
        )
        self.produce_requests = Counter(
            "tidegate_produce_requests", "successful produce requests", registry=public
        )
        self.fetched_records = Counter(
            "tidegate_fetched_records", "records served", registry=public
        )
        self.fetch_requests = Counter(
            "tidegate_fetch_requests", "successful fetch requests", registry=public
        )
        self.idempotent_replays = Counter(
            "tidegate_idempotent_replays",
            "produce retries answered from the idempotency store",
            registry=public,
        )
        self._problems = Counter(
            "tidegate_problem_responses",
            "problem+json responses, by problem type",
            ["type"],
            registry=public,
        )
        self._problem_children: dict[str, Counter] = {}
        self._quota = Counter(
            "tidegate_quota_rejections",
            "requests refused by a quota (rates and count limits), by limit",
            ["limit"],
            registry=public,
        )
        self._quota_children: dict[str, Counter] = {}

        self._append_seconds = Histogram(
            "tidegate_storage_append_seconds",
            "time from an append's hand-over to the storage engine to its acknowledgement",
            buckets=STORAGE_BUCKETS,
            registry=public,
        )
        sync = Histogram(
            "tidegate_storage_fsync_seconds",
            "time of one sync by the storage writers (durable-write, fdatasync, syncfs)",
            ["kind"],
            buckets=STORAGE_BUCKETS,
            registry=public,
        )
        self._sync_children: dict[str, Histogram] = {
            kind: sync.labels(kind) for kind in ("durable-write", "fdatasync", "syncfs")
        }
        self._storage_errors = Counter(
            "tidegate_storage_errors",
            "appends the storage engine answered with an error, by error",
            ["error"],
            registry=public,
        )
        self._error_children: dict[type[StorageError], Counter] = {}
        ProcessCollector(registry=public)

        tenants = self.tenants
        self._topic_families = (
            Counter(
                "tidegate_topic_produced_records",
                "records appended, by tenant and topic",
                ["tenant", "topic"],
                registry=tenants,
            ),
            Counter(
                "tidegate_topic_produced_bytes",
                "produce body bytes accepted, by tenant and topic",
                ["tenant", "topic"],
                registry=tenants,
            ),
            Counter(
                "tidegate_topic_fetched_records",
                "records served, by tenant and topic",
                ["tenant", "topic"],
                registry=tenants,
            ),
            Counter(
                "tidegate_topic_fetched_bytes",
                "record bytes served, by tenant and topic",
                ["tenant", "topic"],
                registry=tenants,
            ),
        )
        self._topics: dict[str, TopicSeries] = {}
        self._others: dict[str, TopicSeries] = {}  # by tenant: its topics past the cap
        self._tenant_figures = _TenantFigures()
        tenants.register(self._tenant_figures)

    # -- the request path ---------------------------------------------------------

    def request_series(self, template: str, method: str) -> RequestSeries:
        """The cached children of the route `template` and `method`."""
        by_method = self._routes.get(template)
        if by_method is None:
            by_method = self._routes[template] = {}
        series = by_method.get(method)
        if series is None:
            series = RequestSeries(self._requests, self._durations, method, template)
            by_method[method] = series
        return series

    def topic(self, key: str, tenant: str, topic: str) -> TopicSeries:
        """The counters of `topic` of `tenant`, cached under `key` (its storage name);
        past `max_topic_series` topics, the tenant's `other` series."""
        series = self._topics.get(key)
        if series is not None:
            return series
        families = self._topic_families
        if len(self._topics) < self.max_topic_series:
            series = TopicSeries(*(family.labels(tenant, topic) for family in families))
            self._topics[key] = series
            return series
        other = self._others.get(tenant)
        if other is None:
            other = TopicSeries(*(family.labels(tenant, OTHER_TOPIC) for family in families))
            self._others[tenant] = other
        return other

    def problem(self, problem_type: str) -> None:
        child = self._problem_children.get(problem_type)
        if child is None:
            child = self._problem_children[problem_type] = self._problems.labels(problem_type)
        child.inc()

    def quota_rejection(self, limit: str) -> None:
        child = self._quota_children.get(limit)
        if child is None:
            child = self._quota_children[limit] = self._quota.labels(limit)
        child.inc()

    def connection_closed(self, reason: str) -> None:
        child = self._closed.get(reason)
        if child is None:
            child = self._closed[reason] = self._closed_family.labels(reason)
        child.inc()

    # -- storage (StorageObserver) ---------------------------------------------------

    def appended(self, seconds: float) -> None:
        self._append_seconds.observe(seconds)

    def synced(self, seconds: float, kind: SyncKind) -> None:
        self._sync_children[kind].observe(seconds)

    def failed(self, error: StorageError) -> None:
        kind = type(error)
        child = self._error_children.get(kind)
        if child is None:
            child = self._storage_errors.labels(kind.__name__)
            self._error_children[kind] = child
        child.inc()

    # -- exposition -----------------------------------------------------------------

    def watch_tenants(
        self,
        usage: TenantUsage,
        throttled: Mapping[tuple[str, str], int],
        connections: Callable[[str], int],
    ) -> None:
        """Serve the tenants' traffic figures from these (the lifespan, once open)."""
        self._tenant_figures.source = _TenantSource(usage, throttled, connections)

    def render(self, *, operator: bool) -> bytes:
        """The Prometheus text exposition; the tenant series too for an operator."""
        text = generate_latest(self.public)
        if operator:
            text += generate_latest(self.tenants)
        return text
