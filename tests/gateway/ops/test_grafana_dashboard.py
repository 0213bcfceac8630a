"""docs/grafana/tidegate.json, and the alerts of docs/operations.md, query only metrics
that a live server's /metrics serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import REPO, GatewayProcess

DASHBOARD = REPO / "docs" / "grafana" / "tidegate.json"
METRIC = re.compile(r"\b((?:tidegate|process)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def expressions(node: Any) -> Iterator[str]:
    """Every PromQL text in the dashboard: panel targets and template queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def served_names(text: str) -> set[str]:
    """Every sample name a scrape can hold: the samples, and each family's by its type."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(family.name)
    return names


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = GatewayProcess(tmp_path_factory.mktemp("grafana") / "data").start()
    try:
        with server.client() as api:
            api.post("/v1/topics", json={"name": "dash", "partitions": 1})
            api.post("/v1/topics/dash/records", json={"records": [{"value": 1}]})
            api.get("/v1/topics/dash/partitions/0/records?offset=0")
            api.post("/v1/groups/dash-group/members", json={"topics": ["dash"]})
            api.post("/v1/admin/tenants", json={"name": "throttled"})
            api.put("/v1/admin/tenants/throttled/quotas", json={"requests_per_second": 0})
            key = api.post("/v1/admin/tenants/throttled/keys", json={"scopes": ["topics:read"]})
            api.get("/v1/topics", headers={"Authorization": f"Bearer {key.json()['key']}"})
            yield api.get("/metrics").text  # the operator's scrape, tenant series included
    finally:
        server.stop()


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Tidegate"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("requests/s", "latency", "quota rejections", "fsync", "per tenant"):
        assert topic in titles


def test_every_metric_the_dashboard_queries_is_served(scrape: str) -> None:
    queried = {
        m for expr in expressions(json.loads(DASHBOARD.read_text())) for m in METRIC.findall(expr)
    }
    assert len(queried) >= 15
    missing = sorted(queried - served_names(scrape))
    assert missing == [], f"the dashboard queries metrics /metrics does not serve: {missing}"


def test_every_metric_the_alerts_in_operations_md_use_is_served(scrape: str) -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    alerts = text[text.index("## What to alert on") :]
    alerts = alerts[: alerts.index("\n## ", 1)]
    used = set(METRIC.findall(alerts))
    assert len(used) >= 8
    missing = sorted(used - served_names(scrape))
    assert missing == [], f"docs/operations.md alerts on metrics /metrics does not serve: {missing}"
