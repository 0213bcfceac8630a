"""The gateway's Prometheus metrics (prometheus-client), on registries of its own app.

Two registries, because tenant names are not public:

* `public`: process figures anyone may scrape at `/metrics`: requests by route
  template and status with their latency, open connections and those each
  bound closed, waiting long-polls, appends in flight, storage append and sync
  latency and storage errors, quota refusals by limit, problem responses by
  type, and the process's own CPU, memory and file descriptors.
* `tenants`: series labelled by tenant, or by tenant and topic, added for an
  operator credential only: records and bytes produced and fetched per topic,
  and each tenant's traffic, connections and rate refusals, and consumer-group
  lag by tenant, group and topic (computed when scraped: `refresh_group_lag`).

Labels are bounded: route templates (never paths), status codes, problem
types, limit names, error classes. Topics are the one open-ended label; at
most `max_topic_series` (tenant, topic) pairs get series of their own, and
every topic past that cap is counted under `topic="other"` of its tenant
(group lag too). Group names are bounded by the group source's own cap on
the groups a scrape reads.

The hot path pays a dictionary lookup and an integer addition per figure.
What only the event loop updates (request and record counts, problems, quota
refusals, the gauges the caps decide by) is kept in plain integers on objects
created once per route, topic or label (`RequestSeries`, `TopicSeries`) and
read by collectors when scraped (prometheus-client's custom-collector API):
a request allocates no label tuple and takes no lock, where a
prometheus-client `Counter.inc` costs about 0.35 µs. The request latency
histogram is kept the same way (a list of bucket counts a route, found with
`bisect`, where prometheus-client's `Histogram.observe` walks its buckets and
takes two locks, about 0.7 µs). What the storage writer threads report through
`StorageObserver` uses prometheus-client's own metrics, whose values are
thread-safe; their labelled children are cached.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.http.tenant_usage import TenantUsage
from storage.errors import StorageError
from storage.observer import SyncKind

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_MAX_TOPIC_SERIES = 1000
OTHER_TOPIC = "other"
UNMATCHED_ROUTE = "unmatched"
CLOSE_REASONS = ("head-timeout", "body-timeout", "head-too-large", "displaced", "over-cap")
STREAM_KINDS = ("websocket", "sse")

# Seconds. Requests include long-polls, which may wait up to TIDEGATE_MAX_WAIT_MS.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REQUEST_LE: tuple[str, ...] = tuple(
    floatToGoString(bound)  # type: ignore[no-untyped-call]
    for bound in (*REQUEST_BUCKETS, float("inf"))
)  # the `le` labels, as prometheus-client writes them
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


class TopicSeries:
    """The counts of one (tenant, topic): plain integers, read when scraped."""

    __slots__ = ("fetched_bytes", "fetched_records", "produced_bytes", "produced_records")

    def __init__(self) -> None:
        self.produced_records = 0
        self.produced_bytes = 0
        self.fetched_records = 0
        self.fetched_bytes = 0


class RequestSeries:
    """One route and method: its count per status and its latency histogram, plain
    numbers the event loop updates (`answered`) and the collector reads when scraped."""

    __slots__ = ("buckets", "by_status", "seconds")

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}
        # Requests by the first bound of REQUEST_BUCKETS at or above their duration;
        # the last slot is +Inf. Not cumulative: summed when scraped.
        self.buckets = [0] * (len(REQUEST_BUCKETS) + 1)
        self.seconds = 0.0

    def answered(self, status: int, seconds: float) -> None:
        """One request answered with `status` after `seconds`."""
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1
        self.buckets[bisect.bisect_left(REQUEST_BUCKETS, seconds)] += 1
        self.seconds += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        """The histogram's buckets as Prometheus writes them: `le` and requests at or under."""
        rows: list[tuple[str, float]] = []
        total = 0
        for le, count in zip(_REQUEST_LE, self.buckets, strict=True):
            total += count
            rows.append((le, total))
        return rows


@dataclass
class _TenantSource:
    usage: TenantUsage
    throttled: Mapping[tuple[str, str], int]
    connections: Callable[[str], int]


def _counter(
    name: str, help_text: str, labels: list[str], rows: Iterable[tuple[list[str], float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=labels)
    for values, count in rows:
        family.add_metric(values, count)
    return family


class _LoopCounts(Collector):
    """The public counters only the event loop updates, read from `Metrics` when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter(
            "tidegate_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            (
                ([method, route, str(status)], count)
                for route, by_method in sorted(m.routes.items())
                for method, series in sorted(by_method.items())
                for status, count in sorted(series.by_status.items())
            ),
        )
        durations = HistogramMetricFamily(
            "tidegate_http_request_duration_seconds",
            "time from a request's arrival at the app to its last reply byte, by route",
            labels=["method", "route"],
        )
        for route, by_method in sorted(m.routes.items()):
            for method, series in sorted(by_method.items()):
                durations.add_metric([method, route], series.cumulative(), series.seconds)
        yield durations
        for name, help_text, value in (
            ("tidegate_produced_records", "records appended", m.produced_records),
            ("tidegate_produce_requests", "successful produce requests", m.produce_requests),
            ("tidegate_fetched_records", "records served", m.fetched_records),
            ("tidegate_fetch_requests", "successful fetch requests", m.fetch_requests),
            (
                "tidegate_idempotent_replays",
                "produce retries answered from the idempotency store",
                m.idempotent_replays,
            ),
        ):
            yield _counter(name, help_text, [], [([], value)])
        yield _counter(
            "tidegate_problem_responses",
            "problem+json responses, by problem type",
            ["type"],
            (([t], c) for t, c in sorted(m.problems.items())),
        )
        yield _counter(
            "tidegate_quota_rejections",
            "requests refused by a quota (rates and count limits), by limit",
            ["limit"],
            (([limit], c) for limit, c in sorted(m.quota_rejections.items())),
        )
        streams = GaugeMetricFamily(
            "tidegate_streams_open", "live streams open now, by kind", labels=["kind"]
        )
        for kind, count in sorted(m.streams_open.items()):
            streams.add_metric([kind], count)
        yield streams
        yield _counter(
            "tidegate_connections_closed",
            "connections closed by a bound, by reason (head-timeout, body-timeout, "
            "head-too-large, displaced, over-cap)",
            ["reason"],
            (([reason], c) for reason, c in sorted(m.connections_closed.items())),
        )


class _TenantFigures(Collector):
    """Series by tenant and by topic, read when scraped from what the request path
    already keeps (`TopicSeries`, `TenantUsage`, the quota service)."""

    SERIES = (
        ("tidegate_tenant_requests", "authenticated requests", "requests"),
        ("tidegate_tenant_produced_bytes", "produce body bytes", "produced_bytes"),
        ("tidegate_tenant_produced_records", "records appended", "produced_records"),
        ("tidegate_tenant_consumed_bytes", "record bytes served", "consumed_bytes"),
        ("tidegate_tenant_consumed_records", "records served", "consumed_records"),
    )
    TOPIC_SERIES = (
        ("tidegate_topic_produced_records", "records appended", "produced_records"),
        ("tidegate_topic_produced_bytes", "produce body bytes accepted", "produced_bytes"),
        ("tidegate_topic_fetched_records", "records served", "fetched_records"),
        ("tidegate_topic_fetched_bytes", "record bytes served", "fetched_bytes"),
    )

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.source: _TenantSource | None = None

    def collect(self) -> Iterator[Metric]:
        labelled = sorted(self.metrics.topic_labels.items())
        for name, help_text, attr in self.TOPIC_SERIES:
            yield _counter(
                name,
                f"{help_text}, by tenant and topic",
                ["tenant", "topic"],
                (([tenant, topic], getattr(series, attr)) for (tenant, topic), series in labelled),
            )
        source = self.source
        if source is None:
            return
        traffic = source.usage.traffic
        tenants = sorted(traffic)
        for name, help_text, attr in self.SERIES:
            yield _counter(
                name, help_text, ["tenant"], (([t], getattr(traffic[t], attr)) for t in tenants)
            )
        held = GaugeMetricFamily(
            "tidegate_tenant_connections", "waiting fetches and streams held", labels=["tenant"]
        )
        for tenant in tenants:
            held.add_metric([tenant], source.connections(tenant))
        yield held
        yield _counter(
            "tidegate_tenant_throttled",
            "requests refused by a rate quota",
            ["tenant", "limit"],
            (([t, limit], c) for (t, limit), c in sorted(source.throttled.items())),
        )


@dataclass(frozen=True, slots=True)
class GroupLag:
    """Records a group has left to read of one topic (summed over its partitions)."""

    tenant: str
    group: str
    topic: str
    stored_topic: str  # the topic's storage name: the key of its topic series
    lag: int


@dataclass(frozen=True, slots=True)
class GroupLags:
    """A scrape's group lag, and how many groups past the source's cap it left out."""

    rows: list[GroupLag]
    omitted: int = 0


GroupLagSource = Callable[[], Awaitable[GroupLags]]


class _GroupLagFigures(Collector):
    """`tidegate_group_lag_records` by tenant, group and topic, from the last refresh;
    a topic without a series of its own (past the topic cap) is summed as `other`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.lags = GroupLags([])

    def collect(self) -> Iterator[Metric]:
        if self.metrics.group_lag_source is None:
            return
        summed: dict[tuple[str, str, str], int] = {}
        for row in self.lags.rows:
            series = self.metrics.topic(row.stored_topic, row.tenant, row.topic)
            topic = (
                row.topic
                if self.metrics.topic_labels.get((row.tenant, row.topic)) is series
                else OTHER_TOPIC
            )
            key = (row.tenant, row.group, topic)
            summed[key] = summed.get(key, 0) + row.lag
        lag = GaugeMetricFamily(
            "tidegate_group_lag_records",
            "records a consumer group has left to read (end offset - committed), "
            "by tenant, group and topic",
            labels=["tenant", "group", "topic"],
        )
        for labels, value in sorted(summed.items()):
            lag.add_metric(list(labels), value)
        yield lag
        yield GaugeMetricFamily(
            "tidegate_group_lag_groups_omitted",
            "groups past the cap on the groups a scrape reads, left out of the lag",
            value=self.lags.omitted,
        )


class Metrics:
    """Every figure of one gateway app. `is_ready` says whether it serves (`tidegate_up`)."""

    def __init__(self, *, max_topic_series: int = DEFAULT_MAX_TOPIC_SERIES) -> None:
        self.public = CollectorRegistry()
        self.tenants = CollectorRegistry()
        self.max_topic_series = max_topic_series
        self.is_ready: Callable[[], bool] = lambda: False
        # Plain integers, updated on the event loop only and read when scraped; the
        # caps decide by some of them.
        self.longpoll_waiters = 0
        self.inflight_appends = 0
        self.http_connections = 0
        self.produced_records = 0
        self.produce_requests = 0
        self.fetched_records = 0
        self.fetch_requests = 0
        self.idempotent_replays = 0
        self.problems: dict[str, int] = {}
        self.quota_rejections: dict[str, int] = {}
        self.connections_closed: dict[str, int] = dict.fromkeys(CLOSE_REASONS, 0)
        self.streams_open: dict[str, int] = dict.fromkeys(STREAM_KINDS, 0)
        self.routes: dict[str, dict[str, RequestSeries]] = {}
        self.topic_labels: dict[tuple[str, str], TopicSeries] = {}
        self._topics: dict[str, TopicSeries] = {}  # by storage name
        self._others: dict[str, TopicSeries] = {}  # by tenant: its topics past the cap
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
        public.register(_LoopCounts(self))
        # Histograms and counters the storage writer threads update: prometheus-client's
        # own, which are thread-safe.
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

        self._tenant_figures = _TenantFigures(self)
        self.tenants.register(self._tenant_figures)
        self.group_lag_source: GroupLagSource | None = None
        self._group_lag = _GroupLagFigures(self)
        self.tenants.register(self._group_lag)

    # -- the request path ---------------------------------------------------------

    def request_series(self, template: str, method: str) -> RequestSeries:
        """The series of the route `template` and `method`, created once."""
        by_method = self.routes.get(template)
        if by_method is None:
            by_method = self.routes[template] = {}
        series = by_method.get(method)
        if series is None:
            series = by_method[method] = RequestSeries()
        return series

    def topic(self, key: str, tenant: str, topic: str) -> TopicSeries:
        """The counts of `topic` of `tenant`, cached under `key` (its storage name);
        past `max_topic_series` topics, the tenant's `other` series."""
        series = self._topics.get(key)
        if series is not None:
            return series
        if len(self._topics) < self.max_topic_series:
            series = self._topics[key] = TopicSeries()
            self.topic_labels[(tenant, topic)] = series
            return series
        other = self._others.get(tenant)
        if other is None:
            other = self._others[tenant] = TopicSeries()
            self.topic_labels[(tenant, OTHER_TOPIC)] = other
        return other

    @contextlib.contextmanager
    def stream_open(self, kind: str) -> Iterator[None]:
        """Count a live stream (`websocket` or `sse`) as open while the block runs."""
        self.streams_open[kind] = self.streams_open.get(kind, 0) + 1
        try:
            yield
        finally:
            self.streams_open[kind] -= 1

    def problem(self, problem_type: str) -> None:
        self.problems[problem_type] = self.problems.get(problem_type, 0) + 1

    def quota_rejection(self, limit: str) -> None:
        self.quota_rejections[limit] = self.quota_rejections.get(limit, 0) + 1

    def connection_closed(self, reason: str) -> None:
        self.connections_closed[reason] = self.connections_closed.get(reason, 0) + 1

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

    def watch_group_lag(self, source: GroupLagSource) -> None:
        """Compute group lag with `source` at each operator scrape (the lifespan)."""
        self.group_lag_source = source

    async def refresh_group_lag(self) -> None:
        """Read the groups' lag now, for the next render (the metrics route, per scrape)."""
        if self.group_lag_source is not None:
            self._group_lag.lags = await self.group_lag_source()

    def render(self, *, operator: bool) -> bytes:
        """The Prometheus text exposition; the tenant series too for an operator."""
        text = generate_latest(self.public)
        if operator:
            text += generate_latest(self.tenants)
        return text
