"""`/metrics` in the Prometheus format: requests by route and status, produce and fetch
by tenant and topic (operator only), storage timings, quota refusals, bounded labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.http.metrics import REQUEST_BUCKETS, Metrics
from gateway.http.settings import Settings
from storage.errors import DiskFull, PartitionFenced

KEY = "tg_metrics_test_key_0123456789abcdefgh"
PRODUCE = "/v1/topics/{topic}/records"
FETCH = "/v1/topics/{topic}/partitions/{partition}/records"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def operator_samples(client: httpx.AsyncClient) -> Samples:
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(reply.text)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, bootstrap_key=KEY, metrics_max_topics=2)  # type: ignore[arg-type]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as c,
    ):
        yield c


@pytest.mark.anyio
async def test_produce_and_fetch_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/topics", json={"name": "orders", "partitions": 1})
    for _ in range(3):
        reply = await client.post("/v1/topics/orders/records", json={"records": [{"value": 1}]})
        assert reply.status_code == 200
    await client.get("/v1/topics/orders/partitions/0/records?offset=0")
    await client.post("/v1/topics/missing/records", json={"records": [{"value": 1}]})
    await client.get("/no/such/path")
    found = await operator_samples(client)
    requests = "tidegate_http_requests_total"
    assert value(found, requests, method="POST", route=PRODUCE, status="200") == 3
    assert value(found, requests, method="POST", route=PRODUCE, status="404") == 1
    assert value(found, requests, method="GET", route=FETCH, status="200") == 1
    assert value(found, requests, method="POST", route="/v1/topics", status="201") == 1
    assert value(found, requests, method="GET", route="unmatched", status="404") == 1
    durations = "tidegate_http_request_duration_seconds_count"
    assert value(found, durations, method="POST", route=PRODUCE) == 4
    # No label carries a path, a key or an offset: only templates.
    routes = {dict(labels)["route"] for (_, labels) in found if "route" in dict(labels)}
    assert all(r == "unmatched" or (r.startswith("/") and "orders" not in r) for r in routes)
    assert value(found, "tidegate_produced_records_total") == 3
    assert value(found, "tidegate_problem_responses_total", type="not-found") == 1  # the path
    assert value(found, "tidegate_problem_responses_total", type="topic-not-found") == 1


@pytest.mark.anyio
async def test_records_and_bytes_by_tenant_and_topic_are_for_the_operator_only(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/topics", json={"name": "orders", "partitions": 1})
    body = b'{"records": [{"value": {"n": 1}}, {"value": {"n": 2}}]}'
    await client.post(
        "/v1/topics/orders/records", content=body, headers={"content-type": "application/json"}
    )
    fetched = await client.get("/v1/topics/orders/partitions/0/records?offset=0")
    assert len(fetched.json()["records"]) == 2
    found = await operator_samples(client)
    labels = {"tenant": "default", "topic": "orders"}
    assert value(found, "tidegate_topic_produced_records_total", **labels) == 2
    assert value(found, "tidegate_topic_produced_bytes_total", **labels) == len(body)
    assert value(found, "tidegate_topic_fetched_records_total", **labels) == 2
    assert value(found, "tidegate_topic_fetched_bytes_total", **labels) > 0
    assert value(found, "tidegate_tenant_requests_total", tenant="default") >= 3

    anonymous = await client.get("/metrics", headers={"Authorization": ""})
    assert anonymous.status_code == 401 or "tidegate_topic_" not in anonymous.text
    del client.headers["Authorization"]
    public = (await client.get("/metrics")).text
    assert "tidegate_http_requests_total" in public
    assert "tenant=" not in public
    assert "orders" not in public


@pytest.mark.anyio
async def test_topics_past_the_cap_are_counted_as_other(client: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c", "d"):  # the fixture caps topic series at 2
        await client.post("/v1/topics", json={"name": name, "partitions": 1})
        await client.post(f"/v1/topics/{name}/records", json={"records": [{"value": 1}]})
    found = await operator_samples(client)
    produced = "tidegate_topic_produced_records_total"
    topics = {dict(labels)["topic"]: v for (name, labels), v in found.items() if name == produced}
    assert topics == {"a": 1, "b": 1, "other": 2}


@pytest.mark.anyio
async def test_storage_timings_and_quota_refusals_are_exposed(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/topics", json={"name": "orders", "partitions": 1})
    await client.post("/v1/topics/orders/records", json={"records": [{"value": 1}]})
    tenant = await client.post("/v1/admin/tenants", json={"name": "capped"})
    assert tenant.status_code == 201
    quotas = await client.put("/v1/admin/tenants/capped/quotas", json={"requests_per_second": 0})
    assert quotas.status_code == 200
    minted = await client.post("/v1/admin/tenants/capped/keys", json={"scopes": ["topics:read"]})
    capped_key = minted.json()["key"]
    refused = await client.get("/v1/topics", headers={"Authorization": f"Bearer {capped_key}"})
    assert refused.status_code == 429
    found = await operator_samples(client)
    assert value(found, "tidegate_storage_append_seconds_count") >= 1
    syncs = sum(
        v for (name, _), v in found.items() if name == "tidegate_storage_fsync_seconds_count"
    )
    assert syncs >= 1  # the default durability is fsync
    assert value(found, "tidegate_quota_rejections_total", limit="requests_per_second") == 1
    assert (
        value(
            found,
            "tidegate_tenant_throttled_total",
            tenant="capped",
            limit="requests_per_second",
        )
        == 1
    )
    assert value(found, "tidegate_up") == 1
    assert value(found, "process_open_fds") > 0


def test_storage_errors_are_counted_by_error_class() -> None:
    metrics = Metrics()
    metrics.failed(DiskFull("no space"))
    metrics.failed(DiskFull("no space"))
    metrics.failed(PartitionFenced("t", 0, "fsync failed"))
    found = samples(metrics.render(operator=False).decode())
    assert value(found, "tidegate_storage_errors_total", error="DiskFull") == 2
    assert value(found, "tidegate_storage_errors_total", error="PartitionFenced") == 1


def test_the_hot_path_reuses_its_children() -> None:
    metrics = Metrics(max_topic_series=1)
    assert metrics.request_series("/x", "GET") is metrics.request_series("/x", "GET")
    first = metrics.topic("T1~a", "acme", "a")
    assert metrics.topic("T1~a", "acme", "a") is first
    other = metrics.topic("T1~b", "acme", "b")
    assert metrics.topic("T1~c", "acme", "c") is other  # past the cap: one series a tenant


durations = st.lists(
    st.sampled_from(REQUEST_BUCKETS) | st.floats(min_value=0, max_value=100, allow_nan=False),
    max_size=30,
)


@settings(max_examples=50, deadline=None)  # each example renders a whole exposition
@given(durations)
def test_the_request_histogram_is_what_prometheus_client_would_expose(seconds: list[float]) -> None:
    """The latency histogram is kept in plain numbers on the event loop; scraped, it
    reads as prometheus-client's own Histogram would for the same requests (a
    duration on a bound counts in that bound's bucket)."""
    metrics = Metrics()
    series = metrics.request_series("/x", "GET")
    registry = CollectorRegistry()
    reference = Histogram(
        "tidegate_http_request_duration_seconds",
        "reference",
        ["method", "route"],
        buckets=REQUEST_BUCKETS,
        registry=registry,
    ).labels("GET", "/x")
    for s in seconds:
        series.answered(200, s)
        reference.observe(s)
    ours = samples(metrics.render(operator=False).decode())
    theirs = samples(generate_latest(registry).decode())
    for (name, labels), expected in theirs.items():
        if name.startswith("tidegate_http_request_duration_seconds") and "_created" not in name:
            assert ours[(name, labels)] == pytest.approx(expected), (name, labels)
    assert value(ours, "tidegate_http_requests_total", method="GET", route="/x", status="200") == (
        len(seconds)
    )
