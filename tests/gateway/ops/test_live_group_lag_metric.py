"""`tidegate_group_lag_records`: what each consumer group has left to read, per tenant,
group and topic, computed at the operator's scrape from the group store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.http.metrics import OTHER_TOPIC, GroupLag, GroupLags, Metrics
from tests.gateway.conftest import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    server = GatewayProcess(tmp_path_factory.mktemp("group-lag") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def lag_samples(text: str) -> dict[tuple[str, str], float]:
    """(group, topic) -> lag, from a scrape."""
    for family in text_string_to_metric_families(text):
        if family.name == "tidegate_group_lag_records":
            return {(s.labels["group"], s.labels["topic"]): s.value for s in family.samples}
    return {}


def test_lag_follows_produce_and_commit_and_stays_off_the_public_scrape(
    gateway: GatewayProcess,
) -> None:
    with gateway.client() as api:
        assert api.post("/v1/topics", json={"name": "lagged", "partitions": 2}).status_code == 201
        records = [{"key": f"k{i}", "value": i} for i in range(6)]
        assert api.post("/v1/topics/lagged/records", json={"records": records}).status_code == 200
        joined = api.post("/v1/groups/billing/members", json={"topics": ["lagged"]}).json()
        api.post(
            "/v1/groups/late/members", json={"topics": ["lagged"], "auto_offset_reset": "latest"}
        )

        scraped = lag_samples(api.get("/metrics").text)
        assert scraped[("billing", "lagged")] == 6  # earliest, nothing committed
        assert scraped[("late", "lagged")] == 0  # latest: nothing left to read

        ends = {
            p["partition"]: p["end_offset"]
            for p in api.get("/v1/groups/billing").json()["partitions"]
        }
        commit = {
            "member_id": joined["member_id"],
            "generation": joined["generation"],
            "offsets": [{"topic": "lagged", "partition": 0, "offset": ends[0]}],
        }
        assert api.post("/v1/groups/billing/offsets", json=commit).status_code == 204
        assert lag_samples(api.get("/metrics").text)[("billing", "lagged")] == 6 - ends[0]
        api.post("/v1/topics/lagged/records", json={"records": [{"value": "more"}]})
        assert lag_samples(api.get("/metrics").text)[("billing", "lagged")] == 7 - ends[0]
    public = httpx.get(f"{gateway.url}/metrics", timeout=10.0)
    assert public.status_code == 200
    assert lag_samples(public.text) == {}  # tenant and group names are not public


def test_topics_past_the_topic_cap_are_summed_as_other() -> None:
    metrics = Metrics(max_topic_series=1)

    async def source() -> GroupLags:
        return GroupLags(
            [
                GroupLag("acme", "g", "a", "ns~a", 3),
                GroupLag("acme", "g", "b", "ns~b", 4),
                GroupLag("acme", "g", "c", "ns~c", 5),
            ],
            omitted=2,
        )

    metrics.watch_group_lag(source)
    asyncio.run(metrics.refresh_group_lag())
    text = metrics.render(operator=True).decode()
    assert lag_samples(text) == {("g", "a"): 3, ("g", OTHER_TOPIC): 9}
    assert "tidegate_group_lag_groups_omitted 2.0" in text
